"""The demo chain's shopping guides (导购) at work: the guides, HQ's commission rules, their
customers (won at the till, by a share link or on WeCom), the links they shared, and what the
history's sales earned them — the rows the guides context's services would have written."""

from __future__ import annotations

import string
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from zhongtai.core.db import Base
from zhongtai.demo import rhythm
from zhongtai.demo.catalog import Row
from zhongtai.demo.generator import DemoChain
from zhongtai.demo.history_loader import DemoHistory, ReportFn, bulk_insert
from zhongtai.demo.seeded import SeededIds, stream, uuid7_at
from zhongtai.demo.sites import TIMEZONE
from zhongtai.guides.attribution_rules import (
    BoundGuide,
    GuideStanding,
    LineCredit,
    Sale,
    SaleLine,
    ShareTouch,
    attribute_sale,
)
from zhongtai.guides.binding_rules import (
    BindingSource,
    BindingVerdict,
    CurrentBinding,
    Touch,
    binding_after,
    decide_binding,
)
from zhongtai.guides.commission_rules import (
    CommissionBasis,
    CommissionLine,
    CommissionRule,
    choose_rule,
    commission_for_line,
    reversal_for_return,
)
from zhongtai.guides.ledger import describe_rule, first_of_month, yuan
from zhongtai.guides.models import (
    CommissionEntry,
    CommissionKind,
    CommissionRuleRecord,
    CommissionStatus,
    Guide,
    GuideBinding,
    GuideStatus,
    LineAttribution,
    MonthlyTarget,
    ShareLink,
    ShareVisit,
    WeComContact,
)
from zhongtai.guides.program import ProgramTerms
from zhongtai.members.models import ConsentChannel, ConsentRecord
from zhongtai.orders.codes import business_date
from zhongtai.orders.kinds import SalesChannel

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
BOUND_SHARE = 0.6
#: How a member first came to her guide.
FIRST_TOUCH = {
    BindingSource.IN_STORE_SALE: 40,
    BindingSource.WECOM: 35,
    BindingSource.SHARE_LINK: 25,
}
#: A share-link order of a bound member came through her own guide's link this often.
OWN_GUIDE_SHARES = 0.85
#: Before an app or mini-program order, a bound member had opened a guide's link this often
#: (an unbound one a third as often).
OPENED_A_LINK = 0.15
#: The clerk entered a bound member's guide at the till this often.
GUIDE_AT_TILL = 0.25
#: A member won another way also added her guide on WeCom this often.
ADDED_ON_WECOM = 0.3
#: WeCom contacts of each guide who are not (yet) known as members.
STRANGERS_ON_WECOM = (2, 6)
_ALPHANUMERIC = string.ascii_letters + string.digits


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


@dataclass(frozen=True)
class _Touch:
    at: datetime
    guide_id: uuid.UUID
    source: BindingSource
    ref: str


def _commission_rules(chain: DemoChain, at: datetime) -> list[Row]:
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


def _sku_lineages(chain: DemoChain) -> dict[uuid.UUID, tuple[uuid.UUID, ...]]:
    """Each SKU's category lineage, nearest first, as commission rules read it."""
    parents = {c["id"]: c["parent_id"] for c in chain.catalog.categories}
    products = {p["id"]: p["category_id"] for p in chain.catalog.products}
    lineages: dict[uuid.UUID, tuple[uuid.UUID, ...]] = {}
    for sku in chain.catalog.skus:
        lineage, at = [], products[sku["product_id"]]
        while at is not None:
            lineage.append(at)
            at = parents[at]
        lineages[sku["id"]] = tuple(lineage)
    return lineages


def _line_net(line: Row) -> int:
    # What the customer paid for the line, as the attribution service counts it.
    return max(0, int(line["net_amount"]) - int(line["short_refund"]))


def _items(line: Row) -> int:
    # Weighed goods (priced per 500 g) count as one item for per-item commission.
    return 1 if line["price_per"] > 1 else int(line["quantity"])


class _Books:
    """What the whole chain shares while each store's guides are written: rules, guides, the
    history's lines and returns, and the moment the ledger is looked at."""

    def __init__(
        self, chain: DemoChain, guides: Sequence[DemoGuide], history: DemoHistory, rules: list[Row]
    ) -> None:
        self.guides = {g.staff_id: g for g in guides}
        self.standings = {g.staff_id: GuideStanding(g.staff_id, g.store_id, True) for g in guides}
        self.rules = [
            CommissionRule(
                rule_id=r["id"],
                basis=r["basis"],
                rate_bp=r["rate_bp"],
                amount_per_item=r["amount_per_item"],
                category_id=r["category_id"],
                store_id=r["store_id"],
                guide_level=r["guide_level"],
                priority=r["priority"],
            )
            for r in rules
        ]
        self.rule_names = {r["id"]: r["name"] for r in rules}
        self.zones = {loc["id"]: loc["timezone"] for loc in chain.locations}
        self.lineages = _sku_lineages(chain)
        self.now = history.end
        self.lines: dict[uuid.UUID, list[Row]] = defaultdict(list)
        for line in history.orders.lines:
            self.lines[line["order_id"]].append(line)
        returns = {r["id"]: r for r in history.orders.returns}
        self.returned: dict[uuid.UUID, list[tuple[Row, int]]] = defaultdict(list)
        for line in history.orders.return_lines:
            came_back = (returns[line["return_id"]], line["refund"])
            self.returned[line["order_line_id"]].append(came_back)

    def month(self, at: datetime, store_id: uuid.UUID) -> date:
        return first_of_month(business_date(at, self.zones[store_id]))

    def status(self, payable_at: datetime) -> CommissionStatus:
        # The ledger matured everything whose return window closed before the history's end.
        return CommissionStatus.PAYABLE if payable_at <= self.now else CommissionStatus.PENDING


class _StoreGuides:
    """One store's guides and customers; its own random stream keeps other stores unchanged."""

    def __init__(
        self,
        world: GuideWorld,
        books: _Books,
        chain: DemoChain,
        store: Row,
        guides: Sequence[DemoGuide],
        since: datetime,
        unionid_since: Mapping[uuid.UUID, datetime],
    ) -> None:
        self.world, self.books, self.store, self.guides = world, books, store, guides
        #: WeCom finds a contact's member by her WeChat unionid: only these can be met there.
        self.unionid_since = unionid_since
        self.rng = stream(chain.seed, f"guides:{store['code']}")
        self.since = since
        self.pull = {g: PULL[g.level] for g in guides}
        self.touches: dict[uuid.UUID, list[_Touch]] = defaultdict(list)
        self.opened: dict[uuid.UUID, list[ShareTouch]] = defaultdict(list)
        self.timelines: dict[uuid.UUID, list[Row]] = {}
        self.links: dict[tuple[uuid.UUID, uuid.UUID | None], list[Row]] = defaultdict(list)
        self.consented: set[uuid.UUID] = set()
        self.skus: list[uuid.UUID] = []

    # --- who a guide is to a member -------------------------------------------------------------

    def _any_guide(self) -> DemoGuide:
        return rhythm.pick(self.rng, self.pull)

    def _before(self, moment: datetime, earliest: datetime, most: timedelta) -> datetime:
        """A moment up to ``most`` before ``moment`` (at least an hour), not before ``earliest``."""
        at = moment - timedelta(seconds=self.rng.uniform(3600, most.total_seconds()))
        return max(at, min(earliest, moment - timedelta(minutes=5)))

    def _on_wechat(self, member_id: uuid.UUID, at: datetime) -> bool:
        """Whether the chain knew her WeChat unionid at ``at`` (a WeCom contact finds her)."""
        since = self.unionid_since.get(member_id)
        return since is not None and since <= at

    def _link(self, guide: DemoGuide, sku_id: uuid.UUID | None, opened_at: datetime) -> Row:
        """A link of the guide's for this SKU that works at ``opened_at``: one she made earlier if
        she has it (a link goes to many customers), else a new one made shortly before."""
        for made in reversed(self.links[(guide.staff_id, sku_id)]):
            if made["created_at"] <= opened_at < made["expires_at"]:
                return made
        created = max(
            opened_at - timedelta(minutes=self.rng.uniform(5, 3 * 24 * 60)),
            min(self.since, opened_at),
        )
        link: Row = {
            "id": uuid7_at(self.rng, created),
            "guide_id": guide.staff_id,
            "store_id": guide.store_id,
            "sku_id": sku_id,
            "coupon_template_id": None,
            "created_at": created,
            "expires_at": created + timedelta(days=TERMS.share_link_days),
            "opened_count": 0,
        }
        self.links[(guide.staff_id, sku_id)].append(link)
        self.world.links.append(link)
        return link

    def _open(
        self,
        guide: DemoGuide,
        member_id: uuid.UUID,
        sku_id: uuid.UUID | None,
        at: datetime,
        channel: str,
    ) -> None:
        """The member opened the guide's link: a visit, and a touch that may bind her."""
        link = self._link(guide, sku_id, at)
        link["opened_count"] += 1
        self.world.visits.append(
            {
                "id": uuid7_at(self.rng, at),
                "link_id": link["id"],
                "guide_id": guide.staff_id,
                "member_id": member_id,
                "sku_id": sku_id,
                "opened_at": at,
                "channel": channel,
            }
        )
        self.opened[member_id].append(ShareTouch(link["id"], guide.staff_id, at, sku_id))
        self.touches[member_id].append(
            _Touch(at, guide.staff_id, BindingSource.SHARE_LINK, str(link["id"]))
        )

    def _add_on_wecom(self, guide: DemoGuide, member_id: uuid.UUID | None, at: datetime) -> None:
        external = "wm" + "".join(self.rng.choices(_ALPHANUMERIC, k=30))
        self.world.contacts.append(
            {
                "id": uuid7_at(self.rng, at),
                "guide_id": guide.staff_id,
                "external_userid": external,
                "member_id": member_id,
                "added_at": at,
                "removed_at": None,
                "removed_by": None,
                "state": f"store:{self.store['code']}",
            }
        )
        if member_id is None:
            return
        if member_id not in self.consented:
            # Adding her guide on WeCom is how she agrees to hear from her there.
            self.consented.add(member_id)
            self.world.consents.append(
                {
                    "id": uuid7_at(self.rng, at),
                    "member_id": member_id,
                    "channel": ConsentChannel.WECOM,
                    "granted": True,
                    "recorded_at": at,
                    "source": "guide",
                    "actor": ACTOR,
                }
            )
        self.touches[member_id].append(_Touch(at, guide.staff_id, BindingSource.WECOM, external))

    def _name_at_till(self, order: Row, guide: DemoGuide) -> None:
        order["guide_id"] = guide.staff_id
        at, ref = order["placed_at"], str(order["id"])
        self.touches[order["member_id"]].append(
            _Touch(at, guide.staff_id, BindingSource.IN_STORE_SALE, ref)
        )

    def _shared_order(self, order: Row, guide: DemoGuide, earliest: datetime) -> None:
        """A share-link order: the guide's link, opened by the member shortly before she ordered
        (a guest's opening is not recorded: only members' visits are)."""
        order["guide_id"] = guide.staff_id
        lines = self.books.lines[order["id"]]
        sku_id = self.rng.choice(lines)["sku_id"] if self.rng.random() < 0.8 else None
        opened = order["placed_at"] - timedelta(minutes=self.rng.uniform(3, 36 * 60))
        if order["member_id"] is None:
            self._link(guide, sku_id, opened)
            return
        opened = max(opened, min(earliest, order["placed_at"] - timedelta(minutes=3)))
        self._open(guide, order["member_id"], sku_id, opened, self._opened_in())

    def _won_by_link(self, guide: DemoGuide, member_id: uuid.UUID, at: datetime) -> None:
        """She opened a link of the guide's (mostly for a product) and became hers."""
        sku_id = self.rng.choice(self.skus) if self.skus and self.rng.random() < 0.7 else None
        self._open(guide, member_id, sku_id, at, self._opened_in())

    def _opened_in(self) -> str:
        return "mini_program" if self.rng.random() < 0.7 else "app"

    # --- the members' stories -------------------------------------------------------------------

    def follow(
        self, member_id: uuid.UUID, registered: datetime, orders: list[Row], *, bound: bool
    ) -> None:
        """Her touches with the store's guides: how she was won (if she is among the bound),
        then what her orders brought — share links, her guide named at the till, WeCom."""
        rng = self.rng
        earliest = max(registered + timedelta(hours=1), self.since + timedelta(days=1))
        guide: DemoGuide | None = None
        won_at: datetime | None = None
        if bound:
            guide, source = self._any_guide(), rhythm.pick(rng, FIRST_TOUCH)
            first = orders[0]["placed_at"]
            till = next((o for o in orders if o["channel"] is SalesChannel.POS), None)
            if source is BindingSource.IN_STORE_SALE and till is not None:
                self._name_at_till(till, guide)
                won_at = till["placed_at"]
            elif source is BindingSource.SHARE_LINK:
                won_at = self._before(first, earliest, timedelta(days=45))
                self._won_by_link(guide, member_id, won_at)
            else:  # on WeCom (so is a member meant to be won at a till who never used one)
                won_at = self._before(first, earliest, timedelta(days=60))
                if self._on_wechat(member_id, won_at):
                    source = BindingSource.WECOM
                    self._add_on_wecom(guide, member_id, won_at)
                else:  # not on WeChat with the chain yet: her guide's link won her instead
                    source = BindingSource.SHARE_LINK
                    self._won_by_link(guide, member_id, won_at)
            if source is not BindingSource.WECOM and rng.random() < ADDED_ON_WECOM:
                later = won_at + (self.books.now - won_at) * rng.random()
                if self._on_wechat(member_id, later):
                    self._add_on_wecom(guide, member_id, later)
        for order in orders:
            mine = guide if won_at is not None and order["placed_at"] > won_at else None
            channel = order["channel"]
            if channel is SalesChannel.GUIDE_SHARE:
                sharer = mine if mine and rng.random() < OWN_GUIDE_SHARES else self._any_guide()
                self._shared_order(order, sharer, earliest)
                if guide is None:
                    guide, won_at = sharer, order["placed_at"]
            elif channel in (SalesChannel.APP, SalesChannel.MINI_PROGRAM):
                if rng.random() >= (OPENED_A_LINK if mine else OPENED_A_LINK / 3):
                    continue
                sharer = mine if mine and rng.random() < 0.8 else self._any_guide()
                lines = self.books.lines[order["id"]]
                sku_id = rng.choice(lines)["sku_id"] if rng.random() < 0.6 else None
                at = self._before(order["placed_at"], earliest, timedelta(days=5))
                self._open(sharer, member_id, sku_id, at, channel.value)
                if guide is None:
                    guide, won_at = sharer, order["placed_at"]
            elif (
                channel is SalesChannel.POS
                and mine is not None
                and order["guide_id"] is None
                and rng.random() < GUIDE_AT_TILL
            ):
                self._name_at_till(order, mine)

    def shared_anonymously(self, order: Row) -> None:
        self._shared_order(order, self._any_guide(), self.since)

    def strangers_on_wecom(self) -> None:
        span = (self.books.now - self.since).total_seconds()
        for guide in self.guides:
            for _ in range(self.rng.randint(*STRANGERS_ON_WECOM)):
                at = self.since + timedelta(seconds=self.rng.uniform(0, span))
                self._add_on_wecom(guide, None, at)

    def bind(self, member_id: uuid.UUID) -> None:
        """Her touches in the order they happened, through the binding rule: her bindings."""
        current: CurrentBinding | None = None
        timeline: list[Row] = []
        for touch in sorted(self.touches[member_id], key=lambda t: t.at):
            fact = Touch(guide_id=touch.guide_id, source=touch.source, at=touch.at)
            decision = decide_binding(current, fact, TERMS.binding_rule, TERMS.protection)
            if decision.verdict is BindingVerdict.KEEP:
                timeline[-1]["protected_until"] = decision.protected_until
            elif decision.verdict is not BindingVerdict.REFUSE:
                if timeline:
                    timeline[-1]["ended_at"] = max(touch.at, timeline[-1]["bound_at"])
                    timeline[-1]["end_reason"] = "rebound"
                timeline.append(
                    {
                        "id": uuid7_at(self.rng, touch.at),
                        "member_id": member_id,
                        "guide_id": touch.guide_id,
                        "source": touch.source,
                        "source_ref": touch.ref,
                        "bound_at": touch.at,
                        "protected_until": decision.protected_until,
                        "ended_at": None,
                        "end_reason": None,
                        "actor": ACTOR,
                    }
                )
            current = binding_after(current, fact, decision)
        self.timelines[member_id] = timeline
        self.world.bindings += timeline

    # --- sales and commission -------------------------------------------------------------------

    def _binding_at(self, member_id: uuid.UUID | None, at: datetime) -> Row | None:
        """Her binding when the order completed (the moment the service attributed it)."""
        for row in reversed(self.timelines.get(member_id, []) if member_id else []):
            if row["bound_at"] <= at and (row["ended_at"] is None or at < row["ended_at"]):
                return row
        return None

    def attribute(self, order: Row) -> None:
        """What the attribution service wrote when the order completed, and its returns."""
        completed = order["completed_at"]
        member_id = order["member_id"]
        online = order["channel"] is not SalesChannel.POS
        binding = self._binding_at(member_id, completed)
        lines = {line["id"]: line for line in self.books.lines[order["id"]]}
        sale = Sale(
            order_id=order["id"],
            online=online,
            store_id=order["store_id"],
            placed_at=order["placed_at"],
            lines=tuple(SaleLine(line["id"], line["sku_id"]) for line in lines.values()),
            selling_guide_id=order["guide_id"],
            bound_guide=BoundGuide(binding["guide_id"], binding["id"]) if binding else None,
        )
        touches = self.opened.get(member_id, []) if member_id and online else []
        for credit in attribute_sale(sale, touches, self.books.standings, TERMS.attribution):
            if credit.guide_id is not None:
                self._credit(order, lines[credit.line_id], credit)

    def _credit(self, order: Row, line: Row, credit: LineCredit) -> None:
        assert credit.guide_id is not None and credit.reason is not None
        books, at = self.books, order["completed_at"]
        guide = books.guides[credit.guide_id]
        net = _line_net(line)
        attribution: Row = {
            "id": uuid7_at(self.rng, at),
            "order_line_id": line["id"],
            "order_id": order["id"],
            "guide_id": guide.staff_id,
            "credited_store_id": guide.store_id,
            "member_id": order["member_id"],
            "reason": credit.reason,
            "reason_ref": credit.ref,
            "explanation": credit.explanation[:300],
            "sku_id": line["sku_id"],
            "net_amount": net,
            "refunded_amount": 0,
            "attributed_at": at,
        }
        self.world.attributions.append(attribution)
        facts = CommissionLine(
            line_id=line["id"],
            category_lineage=books.lineages.get(line["sku_id"], ()),
            store_id=guide.store_id,
            guide_level=guide.level,
            net_amount=net,
            items=_items(line),
        )
        rule = choose_rule(books.rules, facts)
        amount = commission_for_line(rule, facts) if rule else 0
        earned: Row | None = None
        if rule is not None and amount > 0:
            payable_at = at + TERMS.return_window
            described = describe_rule(rule, books.rule_names.get(rule.rule_id))
            reason = credit.reason.value.replace("_", " ")
            earned = self._entry(
                guide,
                kind=CommissionKind.EARNED,
                amount=amount,
                month=books.month(at, order["store_id"]),
                payable_at=payable_at,
                source_ref=f"line:{line['id']}",
                attribution=attribution,
                rule_id=rule.rule_id,
                reason=f"Order {order['number']}: {described} of {yuan(net)} ({reason})",
                details={"reason": credit.reason.value, "ref": credit.ref, "net_amount": net},
                at=at,
            )
        for order_return, refund in sorted(
            books.returned.get(line["id"], []), key=lambda r: r[0]["occurred_at"]
        ):
            self._reverse(guide, attribution, earned, order_return, refund)

    def _reverse(
        self,
        guide: DemoGuide,
        attribution: Row,
        earned: Row | None,
        order_return: Row,
        refund: int,
    ) -> None:
        """What the reversal service wrote for a return of the line (see reverse_for_return)."""
        refund = min(refund, attribution["net_amount"] - attribution["refunded_amount"])
        if refund <= 0:
            return
        before = attribution["refunded_amount"]
        attribution["refunded_amount"] = before + refund
        if earned is None:
            return
        taken = reversal_for_return(earned["amount"], attribution["net_amount"], before, refund)
        if taken <= 0:
            return
        at = order_return["occurred_at"]
        # Still pending when the goods came back: the reversal nets out before it is paid.
        pending = at < earned["payable_at"]
        self._entry(
            guide,
            kind=CommissionKind.REVERSED,
            amount=-taken,
            month=earned["month"] if pending else self.books.month(at, guide.store_id),
            payable_at=earned["payable_at"] if pending else at,
            source_ref=f"return:{order_return['id']}:{attribution['order_line_id']}",
            attribution=attribution,
            rule_id=earned["rule_id"],
            reason=f"Return {order_return['reference']}: {yuan(refund)} refunded, "
            f"{yuan(taken)} of commission taken back",
            details={
                "refund": refund,
                "refunded_before": before,
                "return_id": str(order_return["id"]),
            },
            at=at,
        )

    def _entry(
        self,
        guide: DemoGuide,
        *,
        kind: CommissionKind,
        amount: int,
        month: date,
        payable_at: datetime,
        source_ref: str,
        attribution: Row,
        rule_id: uuid.UUID,
        reason: str,
        details: dict[str, object],
        at: datetime,
    ) -> Row:
        entry: Row = {
            "id": uuid7_at(self.rng, at),
            "guide_id": guide.staff_id,
            "store_id": guide.store_id,
            "month": month,
            "kind": kind,
            "amount": amount,
            "status": self.books.status(payable_at),
            "payable_at": payable_at,
            "source_ref": source_ref[:128],
            "attribution_id": attribution["id"],
            "order_id": attribution["order_id"],
            "rule_id": rule_id,
            "reason": reason[:300],
            "details": details,
            "created_at": at,
            "actor": ACTOR,
        }
        self.world.commission.append(entry)
        return entry


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


def _targets(
    world: GuideWorld, guides: Sequence[DemoGuide], history: DemoHistory, seed: int
) -> None:
    """This month's target of each guide: her usual month of attributed sales, stretched."""
    rng = stream(seed, "guide-targets")
    days = max(1, round((history.end - history.start).total_seconds() / 86400))
    sold: dict[uuid.UUID, int] = defaultdict(int)
    for row in world.attributions:
        sold[row["guide_id"]] += row["net_amount"] - row["refunded_amount"]
    month = first_of_month(history.today)
    set_at = datetime.combine(month, time(9), tzinfo=ZoneInfo(TIMEZONE)).astimezone(UTC)
    for guide in guides:
        usual = sold[guide.staff_id] * 30 // days
        target = max(100_000, round(usual * rng.uniform(0.9, 1.3) / 10_000) * 10_000)
        world.targets.append(
            {
                "guide_id": guide.staff_id,
                "month": month,
                "target_amount": target,
                "set_at": min(set_at, history.end),
                "set_by": ACTOR,
            }
        )


def build_guide_world(
    chain: DemoChain,
    guides: Mapping[str, Sequence[uuid.UUID]],
    history: DemoHistory,
) -> GuideWorld:
    """The guides' world over the history, from the staff ids of each store's guides. Pure but
    for one thing: it names the guide on the history's orders that credit one (share-link
    orders, spread over the store's guides, and till sales where the clerk entered her), so
    build it before the history is written."""
    world = GuideWorld()
    roster = demo_guides(chain, guides)
    if not roster:
        return world
    since = history.start - PROGRAMME_LEAD
    world.guides = [
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
    world.rules = _commission_rules(chain, since)
    books = _Books(chain, roster, history, world.rules)
    registered = {m["id"]: m["created_at"] for m in history.members.members}
    by_member: dict[uuid.UUID, list[Row]] = defaultdict(list)
    anonymous_shares: dict[uuid.UUID, list[Row]] = defaultdict(list)
    completed: dict[uuid.UUID, list[Row]] = defaultdict(list)
    for order in sorted(history.orders.orders, key=lambda o: (o["placed_at"], o["id"])):
        if order["member_id"] is not None:
            by_member[order["member_id"]].append(order)
        elif order["channel"] is SalesChannel.GUIDE_SHARE:
            anonymous_shares[order["store_id"]].append(order)
        if order["completed_at"] is not None:
            completed[order["store_id"]].append(order)
    for store in chain.stores:
        mine = [g for g in roster if g.store_id == store["id"]]
        if not mine:
            continue
        writer = _StoreGuides(
            world, books, chain, store, mine, since, history.members.unionid_since
        )
        writer.skus = list(
            dict.fromkeys(
                line["sku_id"] for o in completed[store["id"]] for line in books.lines[o["id"]]
            )
        )
        members = [m for m in history.members.by_store.get(store["code"], []) if by_member[m]]
        busiest = sorted(members, key=lambda m: (-len(by_member[m]), m))
        bound = set(busiest[: round(len(busiest) * BOUND_SHARE)])
        for member_id in members:
            orders = by_member[member_id]
            writer.follow(member_id, registered[member_id], orders, bound=member_id in bound)
        for order in anonymous_shares[store["id"]]:
            writer.shared_anonymously(order)
        writer.strangers_on_wecom()
        for member_id in members:
            writer.bind(member_id)
        for order in completed[store["id"]]:
            writer.attribute(order)
    _targets(world, roster, history, chain.seed)
    return world


def load_guide_world(session: Session, world: GuideWorld, report: ReportFn) -> dict[str, int]:
    """Writes the guides' world in bulk, in the caller's transaction, after the history it
    credits; what was written, by table. Like the history, it writes no events."""
    tables: list[tuple[type[Base], list[Row], str]] = [
        (Guide, world.guides, "guides"),
        (CommissionRuleRecord, world.rules, "commission rules"),
        (ShareLink, world.links, "share links"),
        (ShareVisit, world.visits, "share visits"),
        (GuideBinding, world.bindings, "guide customers"),
        (WeComContact, world.contacts, "WeCom contacts"),
        (ConsentRecord, world.consents, "WeCom consents"),
        (LineAttribution, world.attributions, "attributed lines"),
        (CommissionEntry, world.commission, "commission ledger"),
        (MonthlyTarget, world.targets, "monthly targets"),
    ]
    for model, rows, step in tables:
        bulk_insert(session, model, rows, step, report)
    return {step: len(rows) for _, rows, step in tables}
