"""The demo chain's members: customers of a home store, known by their phone and by the
touchpoints they use (WeChat, the app, a POS card), with profiles, consents and shopping habits.

Demo phones are one block numbered in order, ``1990`` and seven digits from 19900000001 up
(:func:`demo_phone`). Mainland China keeps no range of mobile numbers for fiction (as 555 is in
North America), so the demo takes a sequential block that is told apart at a glance; the demo
chain sends no SMS, and its members' consents are no permission to message anyone. Phones are
stored as the members service stores them, AES-GCM sealed with an HMAC lookup key
(:func:`seal_phones`), so ``POST /members/identify`` with a demo phone finds its member.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import accumulate

from zhongtai.demo.catalog import Row
from zhongtai.demo.generator import DEFAULT_MEMBERS, GIVEN_NAMES, SURNAMES, DemoChain
from zhongtai.demo.seeded import stream, uuid7_at
from zhongtai.demo.sites import StoreFormat
from zhongtai.loyalty.rules import allocate
from zhongtai.members.identity import identity_key
from zhongtai.members.models import ConsentChannel, IdentityKind, MemberStatus
from zhongtai.members.pii import PiiCipher

#: How big a store's membership is, relative to the others, by format.
STORE_WEIGHT: dict[StoreFormat, int] = {
    StoreFormat.SUPERMARKET: 150,
    StoreFormat.CONVENIENCE: 60,
    StoreFormat.DEPARTMENT: 120,
}
#: Members signed up over this span before the history ends (some during it).
SIGNUP_SPAN = timedelta(days=2 * 365)
#: The block every demo phone number is numbered in.
PHONE_BLOCK = "1990"
#: Where she signed up (weight).
REGISTERED_VIA: dict[str, int] = {"pos": 30, "app": 20, "mini_program": 38, "guide": 12}
_VIA, _VIA_CUMULATIVE = list(REGISTERED_VIA), list(accumulate(REGISTERED_VIA.values()))
#: The chance she gave her phone number where she signed up.
PHONE_GIVEN = {"pos": 0.95, "app": 1.0, "mini_program": 0.85, "guide": 0.9}
#: Later, she also used the touchpoints she did not sign up at, this often.
ALSO_ON_WECHAT = 0.35
ALSO_IN_THE_APP = 0.15
ALSO_A_POS_CARD = 0.12
#: Shares of members with a birthday on file, sizes, and tags.
BIRTHDAY_KNOWN = 0.55
SIZES_KNOWN = 0.25
TAGGED = 0.3
TAGS = ("宝妈", "健身", "宠物主人", "咖啡爱好者", "生鲜常客", "夜猫子", "上班族", "银发族", "学生")
TOP_SIZES = ("S", "M", "L", "XL")
#: Marketing consents given when she signed up (SMS with a phone, app push in the app), and
#: the share of those who withdrew later.
SMS_CONSENT = 0.45
APP_PUSH_CONSENT = 0.6
WITHDRAWN = 0.06
#: How often a member shops, relative to the others: a long tail of regulars (Pareto), the
#: keenest of whom shop a few times a week.
ACTIVITY_SHAPE = 1.4
ACTIVITY_CAP = 60.0


def identity_prefix(seed: int) -> str:
    """Every demo identity but phones starts with this: the loader checks for it before
    loading twice (a phone's lookup key is a keyed hash)."""
    return f"zt-demo-{seed}-"


def demo_phone(number: int) -> str:
    """The ``number``-th demo phone (from 1): 19900000001, 19900000002, …"""
    if not 0 < number < 10**7:
        raise ValueError(f"demo phones are numbered from 1 to 9,999,999, not {number}")
    return f"{PHONE_BLOCK}{number:07d}"


@dataclass(frozen=True)
class Shopper:
    """What the order history needs of a member: since when she shops, and how often."""

    registered_at: datetime
    activity: float


@dataclass
class DemoMembers:
    members: list[Row] = field(default_factory=list)
    #: Phones have no lookup key and ciphertext until :func:`seal_phones` fills them.
    identities: list[Row] = field(default_factory=list)
    consents: list[Row] = field(default_factory=list)
    #: The number of each phone identity, by the identity's id.
    phones: dict[uuid.UUID, str] = field(default_factory=dict)
    #: Member ids by the code of their home store, in the order they signed up.
    by_store: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    shoppers: dict[uuid.UUID, Shopper] = field(default_factory=dict)
    #: Since when each member with a WeChat unionid has it (WeCom finds a contact by it).
    unionid_since: dict[uuid.UUID, datetime] = field(default_factory=dict)


def members_per_store(chain: DemoChain, total: int) -> dict[str, int]:
    """``total`` members shared over the stores by their format's weight (exactly ``total``)."""
    weights = [
        STORE_WEIGHT[chain.formats.get(s["code"], StoreFormat.SUPERMARKET)] for s in chain.stores
    ]
    counts = allocate(total, weights) if total > 0 else [0] * len(weights)
    return {s["code"]: n for s, n in zip(chain.stores, counts, strict=True)}


def _later(rng: random.Random, after: datetime, until: datetime) -> datetime:
    """A moment between ``after`` and ``until`` (mostly soon after ``after``)."""
    span = max(0.0, (until - after).total_seconds())
    return after + timedelta(seconds=span * rng.random() ** 2)


def _birthday(rng: random.Random, today: date) -> date:
    year = today.year - rng.randint(18, 72)
    return date(year, 1, 1) + timedelta(days=rng.randrange(365))


def _profile(rng: random.Random, store_format: StoreFormat) -> tuple[dict[str, str], list[str]]:
    preferences: dict[str, str] = {}
    sized = SIZES_KNOWN * (2.5 if store_format is StoreFormat.DEPARTMENT else 1)
    if rng.random() < sized:
        preferences["top_size"] = rng.choice(TOP_SIZES)
        preferences["shoe_size"] = str(rng.randint(35, 44))
    if rng.random() < 0.05:
        preferences["diet"] = rng.choice(("不吃猪肉", "素食", "低糖"))
    tags = sorted(rng.sample(TAGS, rng.randint(1, 2))) if rng.random() < TAGGED else []
    return preferences, tags


class _Registrar:
    """Signs members up one after the other: numbers, identities and consents."""

    def __init__(self, chain: DemoChain, until: datetime) -> None:
        self.found = DemoMembers()
        self.prefix = identity_prefix(chain.seed)
        self.until = until
        self.number = 0
        self.phones = 0

    def _identity(
        self,
        rng: random.Random,
        member_id: uuid.UUID,
        kind: IdentityKind,
        key: str | None,
        at: datetime,
    ) -> uuid.UUID:
        identity_id = uuid7_at(rng, at)
        self.found.identities.append(
            {
                "id": identity_id,
                "member_id": member_id,
                "kind": kind,
                "lookup_key": key,
                "ciphertext": None,
                "created_at": at,
            }
        )
        return identity_id

    def _opaque(
        self, rng: random.Random, member_id: uuid.UUID, kind: IdentityKind, tag: str, at: datetime
    ) -> None:
        self._identity(rng, member_id, kind, f"{self.prefix}{tag}-{self.number:06d}", at)

    def _wechat(self, rng: random.Random, member_id: uuid.UUID, at: datetime) -> None:
        # The mini-program learns her openid, and the unionid that is the same in every app of
        # the chain's WeChat account (WeCom finds a guide's contact by it).
        self._opaque(rng, member_id, IdentityKind.WECHAT_OPENID, "wx", at)
        self._opaque(rng, member_id, IdentityKind.WECHAT_UNIONID, "union", at)
        self.found.unionid_since[member_id] = at

    def _consent(
        self,
        rng: random.Random,
        member_id: uuid.UUID,
        channel: ConsentChannel,
        at: datetime,
        source: str,
    ) -> None:
        self.found.consents.append(
            {
                "id": uuid7_at(rng, at),
                "member_id": member_id,
                "channel": channel,
                "granted": True,
                "recorded_at": at,
                "source": source,
                "actor": "demo:members",
            }
        )
        if rng.random() < WITHDRAWN:
            later = _later(rng, at, self.until)
            self.found.consents.append(
                {
                    "id": uuid7_at(rng, later),
                    "member_id": member_id,
                    "channel": channel,
                    "granted": False,
                    "recorded_at": later,
                    "source": source,
                    "actor": "demo:members",
                }
            )

    def sign_up(self, rng: random.Random, store: Row, store_format: StoreFormat) -> uuid.UUID:
        self.number += 1
        via = rng.choices(_VIA, cum_weights=_VIA_CUMULATIVE)[0]
        at = self.until - timedelta(seconds=rng.uniform(3600, SIGNUP_SPAN.total_seconds()))
        member_id = uuid7_at(rng, at)
        preferences, tags = _profile(rng, store_format)
        birthday = _birthday(rng, self.until.date()) if rng.random() < BIRTHDAY_KNOWN else None
        self.found.members.append(
            {
                "id": member_id,
                "status": MemberStatus.ACTIVE,
                "merged_into_id": None,
                "name": rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES),
                "birthday": birthday,
                "preferred_store_id": store["id"],
                "preferences": preferences,
                "tags": tags,
                "registered_via": via,
                "registered_store_id": store["id"],
                "erased_at": None,
                "created_at": at,
                "updated_at": at,
            }
        )
        if rng.random() < PHONE_GIVEN[via]:
            self.phones += 1
            phone_id = self._identity(rng, member_id, IdentityKind.PHONE, None, at)
            self.found.phones[phone_id] = demo_phone(self.phones)
            if rng.random() < SMS_CONSENT:
                self._consent(rng, member_id, ConsentChannel.SMS, at, via)
        in_app = via == "app" or rng.random() < ALSO_IN_THE_APP
        if via in ("mini_program", "guide"):
            self._wechat(rng, member_id, at)
        elif rng.random() < ALSO_ON_WECHAT:
            self._wechat(rng, member_id, _later(rng, at, self.until))
        if via == "pos" or rng.random() < ALSO_A_POS_CARD:
            when = at if via == "pos" else _later(rng, at, self.until)
            self._opaque(rng, member_id, IdentityKind.POS_CARD, "card", when)
        if in_app:
            when = at if via == "app" else _later(rng, at, self.until)
            self._opaque(rng, member_id, IdentityKind.APP_USER_ID, "app", when)
            if rng.random() < APP_PUSH_CONSENT:
                self._consent(rng, member_id, ConsentChannel.APP_PUSH, when, "app")
        self.found.shoppers[member_id] = Shopper(
            at, min(ACTIVITY_CAP, rng.paretovariate(ACTIVITY_SHAPE))
        )
        return member_id


def build_demo_members(
    chain: DemoChain, *, until: datetime, total: int = DEFAULT_MEMBERS
) -> DemoMembers:
    """``total`` members who signed up in the two years before ``until``, spread over the
    stores. Pure: phones are left to seal (see :func:`seal_phones`)."""
    registrar = _Registrar(chain, until)
    counts = members_per_store(chain, total)
    for store in chain.stores:
        code = store["code"]
        store_format = chain.formats.get(code, StoreFormat.SUPERMARKET)
        rng = stream(chain.seed, f"members:{code}")
        ids = [registrar.sign_up(rng, store, store_format) for _ in range(counts[code])]
        shoppers = registrar.found.shoppers
        registrar.found.by_store[code] = sorted(ids, key=lambda m: (shoppers[m].registered_at, m))
    return registrar.found


def seal_phones(members: DemoMembers, cipher: PiiCipher) -> None:
    """Give each phone identity the lookup key and sealed number the members service would."""
    by_id: Mapping[uuid.UUID, Row] = {row["id"]: row for row in members.identities}
    for identity_id, phone in members.phones.items():
        key = identity_key(cipher, IdentityKind.PHONE, phone)
        by_id[identity_id].update(lookup_key=key.lookup_key, ciphertext=key.ciphertext)
