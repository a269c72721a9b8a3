"""Use cases of identity and access: staff accounts, logins, channel keys, and who a caller is."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Uuid, column, select, table
from sqlalchemy.orm import Session, sessionmaker

from zhongtai.core.audit import record_audit
from zhongtai.core.auth import credentials, throttle
from zhongtai.core.auth.models import ApiKey, AuthSession, StaffStore, StaffUser
from zhongtai.core.auth.principal import TERMINAL_ID, TERMINAL_ID_RULE, Principal
from zhongtai.core.auth.roles import (
    CHAIN_WIDE_ROLES,
    CHANNEL_ALLOWED_SCOPES,
    CHANNEL_DEFAULT_SCOPES,
    ROLE_PERMISSIONS,
    Channel,
    Permission,
    Role,
)
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import AlreadyExists, DomainError, InvalidInput, NotFound, Unauthenticated
from zhongtai.core.settings import Settings

MIN_PASSWORD_LENGTH = 10
_locations = table("locations", column("id", Uuid))


def _check_stores_exist(session: Session, store_ids: Iterable[uuid.UUID], field: str) -> None:
    wanted = set(store_ids)
    if not wanted:
        return
    found = set(session.scalars(select(_locations.c.id).where(_locations.c.id.in_(wanted))))
    missing = wanted - found
    if missing:
        raise InvalidInput.field(field, f"unknown store id(s): {', '.join(map(str, missing))}")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput.field("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")


def create_staff_user(
    session: Session,
    *,
    username: str,
    display_name: str,
    role: Role,
    password: str,
    store_ids: Iterable[uuid.UUID] = (),
    password_hash: str | None = None,
) -> StaffUser:
    """A staff login. A bulk loader giving many logins the same password passes its hash, made
    once with ``credentials.hash_password(password)``, instead of hashing it for each login
    (a deliberately slow hash: 0.1 s or more)."""
    stores = list(dict.fromkeys(store_ids))
    _check_password(password)
    if role not in CHAIN_WIDE_ROLES and not stores:
        raise InvalidInput.field("store_ids", f"a {role.value} must be assigned to a store")
    _check_stores_exist(session, stores, "store_ids")
    if session.scalar(select(StaffUser.id).where(StaffUser.username == username)):
        raise AlreadyExists(f"A staff user named {username!r} already exists.")
    user = StaffUser(
        username=username,
        display_name=display_name,
        role=role,
        password_hash=password_hash or credentials.hash_password(password),
    )
    user.stores = [StaffStore(store_id=s) for s in stores]
    session.add(user)
    session.flush()
    record_audit(session, "staff.created", "staff", user.id, None, _staff_access(user))
    return user


def _staff_access(user: StaffUser) -> dict[str, object]:
    """What a staff account may reach: the fields whose changes are audited."""
    return {
        "username": user.username,
        "role": user.role,
        "is_active": user.is_active,
        "store_ids": sorted(str(s.store_id) for s in user.stores),
    }


def get_staff_user(session: Session, user_id: uuid.UUID) -> StaffUser:
    user = session.get(StaffUser, user_id)
    if user is None:
        raise NotFound(f"No staff user {user_id}.")
    return user


def update_staff_user(
    session: Session,
    user: StaffUser,
    *,
    role: Role | None = None,
    display_name: str | None = None,
    is_active: bool | None = None,
    store_ids: list[uuid.UUID] | None = None,
    password: str | None = None,
) -> StaffUser:
    before = _staff_access(user)
    if role is not None:
        user.role = role
    if display_name is not None:
        user.display_name = display_name
    if store_ids is not None:
        _check_stores_exist(session, store_ids, "store_ids")
        user.stores = [StaffStore(store_id=s) for s in dict.fromkeys(store_ids)]
    if user.role not in CHAIN_WIDE_ROLES and not user.stores:
        raise InvalidInput.field("store_ids", f"a {user.role.value} must be assigned to a store")
    if password is not None:
        _check_password(password)
        user.password_hash = credentials.hash_password(password)
    if is_active is False or password is not None or role is not None:
        _revoke_all_sessions(session, user.id)
    if is_active is not None:
        user.is_active = is_active
    session.flush()
    after = _staff_access(user)
    if after != before:
        changed = [k for k in after if after[k] != before[k]]
        record_audit(
            session,
            "staff.access_changed",
            "staff",
            user.id,
            {k: before[k] for k in changed},
            {k: after[k] for k in changed},
        )
    return user


def _revoke_all_sessions(session: Session, user_id: uuid.UUID) -> None:
    now = utcnow()
    for auth_session in session.scalars(
        select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    ):
        auth_session.revoked_at = now


def check_password(session: Session, username: str, password: str) -> StaffUser | None:
    """The active user with this username and password, else None (in constant-ish time)."""
    user = session.scalar(select(StaffUser).where(StaffUser.username == username))
    ok = credentials.verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        return None
    return user


LOGIN = "login"


class WrongCredentials(Unauthenticated):
    """No active staff user has this username and password. Said alike for an unknown
    username, a wrong password and an inactive user, so that usernames cannot be told."""


#: The refusals whose try :func:`log_in` counted in the caller's transaction, which also holds
#: the locks of the username and the address: the caller commits that transaction with the
#: answer. Rolled back, the try would go uncounted; committed after the locks were let go, a
#: try racing this one would be judged by a count without it.
COUNTED_REFUSALS: tuple[type[DomainError], ...] = (WrongCredentials,)


def log_in(
    session: Session,
    username: str,
    password: str,
    *,
    reader: sessionmaker[Session],
    client_ip: str,
    settings: Settings,
) -> StaffUser:
    """The active user with this username and password, judged against the throttle: after
    ``login_max_failures`` failures for the username within the window, or four times that
    from the address, every try answers 429 (:class:`TooManyAttempts`), the right password too.

    In two steps, so that no transaction is open while the slow password hash is computed
    (see :mod:`zhongtai.core.auth.throttle`):

    1. in a ``reader`` session, closed before the hash: a first look at the count (a locked
       username costs no hash) and the stored hash, checked against the password. An unknown
       username is checked against a stand-in hash, at the same cost.
    2. in ``session``, the caller's writer transaction, which must not have begun: the try is
       judged under the locks of the username and the address (:func:`throttle.hold_tries`; on
       SQLite the write lock its first statement takes), by the count read under them and the
       user as she stands then: a password changed meanwhile, or a user deactivated, refuses
       the try. A wrong try is counted there (see :data:`COUNTED_REFUSALS`): tries racing it
       queue on the locks and each sees the ones before it, so no more than the limit is ever
       judged.
    """

    def ensure_not_throttled(in_session: Session) -> None:
        throttle.ensure_not_throttled(
            in_session,
            kind=LOGIN,
            subject=username,
            client_ip=client_ip,
            max_per_subject=settings.login_max_failures,
            max_per_ip=settings.login_max_failures * 4,
            window=timedelta(seconds=settings.login_failure_window_seconds),
        )

    with reader() as look:
        ensure_not_throttled(look)
        checked = look.scalar(select(StaffUser.password_hash).where(StaffUser.username == username))
    right = credentials.verify_password(checked, password)
    throttle.hold_tries(session, kind=LOGIN, subject=username, client_ip=client_ip)
    ensure_not_throttled(session)
    user = session.scalar(select(StaffUser).where(StaffUser.username == username))
    if not right or user is None or not user.is_active or user.password_hash != checked:
        throttle.count_failure(
            session,
            kind=LOGIN,
            subject=username,
            client_ip=client_ip,
            reason="bad_credentials_or_inactive",
        )
        raise WrongCredentials("Unknown username or wrong password.")
    return user


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    session: AuthSession


def open_session(
    session: Session, user: StaffUser, *, secret: str, ttl: timedelta, client_ip: str | None
) -> IssuedToken:
    now = utcnow()
    auth_session = AuthSession(user_id=user.id, expires_at=now + ttl, client_ip=client_ip)
    session.add(auth_session)
    session.flush()
    token = credentials.issue_access_token(
        secret, user.id, auth_session.id, now, auth_session.expires_at
    )
    return IssuedToken(access_token=token, session=auth_session)


def revoke_session(session: Session, session_id: uuid.UUID) -> None:
    auth_session = session.get(AuthSession, session_id)
    if auth_session is not None and auth_session.revoked_at is None:
        auth_session.revoked_at = utcnow()
        session.flush()


def staff_principal(user: StaffUser, session_id: uuid.UUID | None = None) -> Principal:
    return Principal(
        kind="staff",
        id=user.id,
        name=user.username,
        role=user.role,
        permissions=ROLE_PERMISSIONS[user.role],
        store_ids=None if user.role in CHAIN_WIDE_ROLES else frozenset(user.store_ids),
        session_id=session_id,
    )


def principal_for_token(session: Session, secret: str, token: str) -> Principal | None:
    claims = credentials.read_access_token(secret, token)
    if claims is None:
        return None
    row = session.execute(
        select(AuthSession, StaffUser)
        .join(StaffUser, StaffUser.id == AuthSession.user_id)
        .where(AuthSession.id == claims.session_id, AuthSession.user_id == claims.user_id)
    ).first()
    if row is None:
        return None
    auth_session, user = row
    if auth_session.revoked_at is not None or auth_session.expires_at <= utcnow():
        return None
    if not user.is_active:
        return None
    return staff_principal(user, auth_session.id)


@dataclass(frozen=True)
class IssuedApiKey:
    key: ApiKey
    full_key: str


def create_api_key(
    session: Session,
    *,
    name: str,
    channel: Channel,
    scopes: Iterable[Permission] | None = None,
    store_id: uuid.UUID | None = None,
    terminal_id: str | None = None,
    created_by: uuid.UUID | None = None,
    material: credentials.ApiKeyMaterial | None = None,
) -> IssuedApiKey:
    """Create a key; the full key is in the result and nowhere else, ever."""
    wanted = frozenset(scopes) if scopes is not None else CHANNEL_DEFAULT_SCOPES[channel]
    beyond = wanted - CHANNEL_ALLOWED_SCOPES[channel]
    if beyond:
        raise InvalidInput.field(
            "scopes", f"a {channel.value} key may not hold {sorted(p.value for p in beyond)}"
        )
    if channel is Channel.POS and (store_id is None or not terminal_id):
        raise InvalidInput(
            "A POS key is bound to one store and one terminal.",
            errors=[
                {"field": f, "message": "required for a pos key"}
                for f, v in (("store_id", store_id), ("terminal_id", terminal_id))
                if not v
            ],
        )
    if terminal_id is not None and not TERMINAL_ID.fullmatch(terminal_id):
        raise InvalidInput.field("terminal_id", TERMINAL_ID_RULE)
    if store_id is not None:
        _check_stores_exist(session, [store_id], "store_id")
    material = material or credentials.new_api_key_material()
    key = ApiKey(
        prefix=material.prefix,
        secret_hash=material.secret_hash,
        name=name,
        channel=channel,
        scopes=sorted(p.value for p in wanted),
        store_id=store_id,
        terminal_id=terminal_id,
        created_by=created_by,
    )
    session.add(key)
    session.flush()
    record_audit(
        session, "api_key.created", "api_key", key.id, None, _key_access(key), store_id=store_id
    )
    return IssuedApiKey(key=key, full_key=material.full_key)


def _key_access(key: ApiKey) -> dict[str, object]:
    """What a key may reach (never its secret)."""
    return {
        "name": key.name,
        "prefix": key.prefix,
        "channel": key.channel,
        "scopes": list(key.scopes),
        "store_id": key.store_id,
        "terminal_id": key.terminal_id,
        "revoked_at": key.revoked_at,
    }


def revoke_api_key(session: Session, key_id: uuid.UUID) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key {key_id}.")
    if key.revoked_at is None:
        before = _key_access(key)
        key.revoked_at = utcnow()
        session.flush()
        record_audit(
            session,
            "api_key.revoked",
            "api_key",
            key.id,
            before,
            _key_access(key),
            store_id=key.store_id,
        )
    return key


def api_key_principal(key: ApiKey) -> Principal:
    return Principal(
        kind="api_key",
        id=key.id,
        name=key.name,
        channel=key.channel,
        permissions=frozenset(Permission(s) for s in key.scopes),
        store_ids=frozenset({key.store_id}) if key.store_id else None,
        terminal_id=key.terminal_id,
    )


def principal_for_api_key(session: Session, value: str) -> Principal | None:
    material = credentials.split_api_key(value)
    if material is None:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == material.prefix))
    matches = credentials.api_key_matches(key.secret_hash if key else None, material.secret)
    if key is None or not matches or key.revoked_at is not None:
        return None
    return api_key_principal(key)
