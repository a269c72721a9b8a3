"""Builders of test data through the services, so tests state only what matters to them."""

from __future__ import annotations

import functools
import itertools
import uuid
from datetime import timedelta

from sqlalchemy.orm import Session

from zhongtai.core.auth import credentials
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.models import StaffUser
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import CHAIN_WIDE_ROLES, Channel, Permission, Role
from zhongtai.stores.models import Location, LocationKind

TEST_SECRET = "test-secret-key-0123456789abcdef0123456789"

#: The app channel's API key with every permission: the caller of checkouts made in a service
#: call rather than over HTTP.
APP_CALLER = Principal(
    kind="api_key",
    id=uuid.UUID("01900000-0000-7000-8000-00000000a999"),
    name="app",
    permissions=frozenset(Permission),
    store_ids=None,
    channel=Channel.APP,
)
TEST_PASSWORD = "correct-horse-battery"


def clerk_of(store_id: uuid.UUID) -> Principal:
    """A store clerk signed in, with every permission but only her store: the caller of store
    work made in a service call rather than over HTTP."""
    return Principal(
        kind="staff",
        id=uuid.uuid4(),
        name="clerk",
        permissions=frozenset(Permission),
        store_ids=frozenset({store_id}),
        role=Role.STORE_STAFF,
    )


_seq = itertools.count(1)


@functools.cache
def password_hash(password: str = TEST_PASSWORD) -> str:
    """The password's argon2 hash, made once per test process and shared by every login given
    that password: a real hash (signing in verifies it as in production), without paying the
    deliberately slow hashing (0.1 s or more) for each staff user a test makes."""
    return credentials.hash_password(password)


class Factory:
    def __init__(self, session: Session) -> None:
        self.session = session

    def location(
        self,
        *,
        code: str | None = None,
        region: str = "黄浦区",
        kind: LocationKind = LocationKind.STORE,
        latitude: float = 31.2304,
        longitude: float = 121.4737,
        name: str | None = None,
    ) -> Location:
        n = next(_seq)
        loc = Location(
            code=code or f"S{n:04d}",
            name=name or f"测试门店 {n}",
            kind=kind,
            region=region,
            city="上海",
            address=f"测试路 {n} 号",
            latitude=latitude,
            longitude=longitude,
            timezone="Asia/Shanghai",
        )
        self.session.add(loc)
        self.session.flush()
        return loc

    def staff(
        self, role: Role, stores: list[Location] | None = None, username: str | None = None
    ) -> StaffUser:
        if stores is None and role not in CHAIN_WIDE_ROLES:
            stores = [self.location()]
        return auth.create_staff_user(
            self.session,
            username=username or f"{role.value}{next(_seq)}",
            display_name=f"{role.value} user",
            role=role,
            password=TEST_PASSWORD,
            store_ids=[s.id for s in stores or []],
            password_hash=password_hash(),
        )

    def staff_headers(self, role: Role, stores: list[Location] | None = None) -> dict[str, str]:
        user = self.staff(role, stores)
        issued = auth.open_session(
            self.session, user, secret=TEST_SECRET, ttl=timedelta(hours=1), client_ip="127.0.0.1"
        )
        self.session.commit()
        return {"Authorization": f"Bearer {issued.access_token}"}

    def api_key_headers(
        self,
        channel: Channel,
        *,
        store: Location | None = None,
        scopes: list[Permission] | None = None,
    ) -> dict[str, str]:
        if channel is Channel.POS and store is None:
            store = self.location()
        issued = auth.create_api_key(
            self.session,
            name=f"{channel.value} key",
            channel=channel,
            scopes=scopes,
            store_id=store.id if store else None,
            terminal_id=f"T{next(_seq)}" if channel is Channel.POS else None,
        )
        self.session.commit()
        return {"X-API-Key": issued.full_key}

    @staticmethod
    def new_id() -> uuid.UUID:
        return uuid.uuid4()
