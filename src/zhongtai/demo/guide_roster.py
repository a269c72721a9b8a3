"""The demo chain's shopping-guide programme as HQ set it up: the guides of each store and their
levels, HQ's commission rules, the programme's terms, and the rows of the guides' world that the
guides context's services would have written, ready for bulk insert."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from zhongtai.demo.catalog import Row
from zhongtai.demo.generator import DemoChain
from zhongtai.demo.seeded import SeededIds
from zhongtai.guides.commission_rules import CommissionBasis
from zhongtai.guides.models import GuideStatus
from zhongtai.guides.program import ProgramTerms

ACTOR = "demo:guides"
#: The chain runs its guide programme on the defaults (no HQ change is recorded).
TERMS = ProgramTerms()
#: Guides were enrolled and the commission rules set this long before the history begins.
PROGRAMME_LEAD = timedelta(days=120)
#: The levels of a store's guides (guide … guide5), rotated from store to store.
LEVELS = ("senior", "junior", "star", "junior", "senior")
#: How many customers a guide of each level tends to win, relative to her colleagues.
PULL = {"junior": 2, "senior": 3, "star": 5}
#: The part of a store's buying members, the most active first, who have a guide of their own.


@dataclass(frozen=True)
class RuleSpec:
    name: str
    basis: CommissionBasis
    rate_bp: int = 0
    amount_per_item: int = 0
    #: The code of the demo category it is limited to.
    category: str | None = None
    guide_level: str | None = None


#: HQ's commission rules: 2 % on everything, more on apparel and personal care, little on fresh
#: food (thin margins), a fixed amount per bag of rice or can of oil, and more for star guides.
COMMISSION_RULES = (
    RuleSpec("全场 2%", CommissionBasis.PERCENT, rate_bp=200),
    RuleSpec("服装 5%", CommissionBasis.PERCENT, rate_bp=500, category="APPAREL"),
    RuleSpec("个护 4%", CommissionBasis.PERCENT, rate_bp=400, category="DAILY-CARE"),
    RuleSpec("生鲜 0.5%", CommissionBasis.PERCENT, rate_bp=50, category="FRESH"),
    RuleSpec("粮油 每件 ¥1", CommissionBasis.PER_ITEM, amount_per_item=100, category="GROCERY-OIL"),
    RuleSpec("金牌导购 3%", CommissionBasis.PERCENT, rate_bp=300, guide_level="star"),
)


@dataclass(frozen=True)
class DemoGuide:
    staff_id: uuid.UUID
    store_id: uuid.UUID
    level: str
    wecom_userid: str


@dataclass
class GuideWorld:
    """Every row of the guides' world, per table, ready for bulk insert."""

    guides: list[Row] = field(default_factory=list)
    rules: list[Row] = field(default_factory=list)
    links: list[Row] = field(default_factory=list)
    bindings: list[Row] = field(default_factory=list)
    contacts: list[Row] = field(default_factory=list)
    consents: list[Row] = field(default_factory=list)
    visits: list[Row] = field(default_factory=list)
    attributions: list[Row] = field(default_factory=list)
    commission: list[Row] = field(default_factory=list)
    targets: list[Row] = field(default_factory=list)


def commission_rules(chain: DemoChain, at: datetime) -> list[Row]:
    new_id = SeededIds(chain.seed, "guide-commission-rules")
    categories = chain.catalog.category_ids
    return [
        {
            "id": new_id(),
            "name": spec.name,
            "basis": spec.basis,
            "rate_bp": spec.rate_bp,
            "amount_per_item": spec.amount_per_item,
            "category_id": categories[spec.category] if spec.category else None,
            "store_id": None,
            "guide_level": spec.guide_level,
            "priority": 0,
            "active": True,
            "created_at": at,
            "created_by": ACTOR,
        }
        for spec in COMMISSION_RULES
    ]


def demo_guides(chain: DemoChain, guides: Mapping[str, Sequence[uuid.UUID]]) -> list[DemoGuide]:
    """The chain's guides with their stores and levels: each store mixes the levels, and the
    first guide's level changes from store to store."""
    found: list[DemoGuide] = []
    for index, store in enumerate(chain.stores):
        for n, staff_id in enumerate(guides.get(store["code"], ())):
            level = LEVELS[(n + index) % len(LEVELS)]
            wecom = f"zt-{store['code'].lower()}-guide{n + 1}"
            found.append(DemoGuide(staff_id, store["id"], level, wecom))
    return found


def guide_rows(roster: Sequence[DemoGuide], since: datetime) -> list[Row]:
    """The guides' own rows: every one active, enrolled at ``since``."""
    return [
        {
            "staff_id": g.staff_id,
            "home_store_id": g.store_id,
            "level": g.level,
            "status": GuideStatus.ACTIVE,
            "wecom_userid": g.wecom_userid,
            "left_at": None,
            "successor_id": None,
            "created_at": since,
            "updated_at": since,
        }
        for g in roster
    ]
