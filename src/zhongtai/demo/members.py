"""The demo chain's members: customers registered at a home store, each known by one identity."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from zhongtai.demo.catalog import Row
from zhongtai.demo.generator import GIVEN_NAMES, SURNAMES, DemoChain
from zhongtai.demo.seeded import stream, uuid7_at
from zhongtai.demo.sites import StoreFormat
from zhongtai.members.models import IdentityKind, MemberStatus

#: Members registered at each store, by format.
MEMBERS_PER_STORE: dict[StoreFormat, int] = {
    StoreFormat.SUPERMARKET: 150,
    StoreFormat.CONVENIENCE: 60,
    StoreFormat.DEPARTMENT: 120,
}
#: Where she signed up, and the identity that touchpoint knows her by.
REGISTERED_VIA: tuple[tuple[str, IdentityKind, str], ...] = (
    ("pos", IdentityKind.POS_CARD, "card"),
    ("app", IdentityKind.APP_USER_ID, "app"),
    ("mini_program", IdentityKind.WECHAT_OPENID, "wx"),
    ("guide", IdentityKind.WECHAT_OPENID, "wx"),
)


def identity_prefix(seed: int) -> str:
    """Every demo identity starts with this: the loader checks for it before loading twice."""
    return f"zt-demo-{seed}-"


@dataclass
class DemoMembers:
    members: list[Row] = field(default_factory=list)
    identities: list[Row] = field(default_factory=list)
    #: Member ids by the code of their home store, for the order history.
    by_store: dict[str, list[uuid.UUID]] = field(default_factory=dict)


def build_demo_members(chain: DemoChain, *, registered_before: datetime) -> DemoMembers:
    """Members who signed up in the two years before ``registered_before``, spread over stores."""
    found = DemoMembers()
    prefix = identity_prefix(chain.seed)
    number = 0
    for store in chain.stores:
        code = store["code"]
        rng = stream(chain.seed, f"members:{code}")
        ids: list[uuid.UUID] = []
        for _ in range(MEMBERS_PER_STORE[chain.formats.get(code, StoreFormat.SUPERMARKET)]):
            number += 1
            via, kind, tag = REGISTERED_VIA[rng.randrange(len(REGISTERED_VIA))]
            at = registered_before - timedelta(minutes=rng.randint(60, 2 * 365 * 24 * 60))
            member_id = uuid7_at(rng, at)
            found.members.append(
                {
                    "id": member_id,
                    "status": MemberStatus.ACTIVE,
                    "merged_into_id": None,
                    "name": rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES),
                    "birthday": None,
                    "preferred_store_id": store["id"],
                    "preferences": {},
                    "tags": [],
                    "registered_via": via,
                    "registered_store_id": store["id"],
                    "erased_at": None,
                    "created_at": at,
                    "updated_at": at,
                }
            )
            found.identities.append(
                {
                    "id": uuid7_at(rng, at),
                    "member_id": member_id,
                    "kind": kind,
                    "lookup_key": f"{prefix}{tag}-{number:06d}",
                    "ciphertext": None,
                    "created_at": at,
                }
            )
            ids.append(member_id)
        found.by_store[code] = ids
    return found
