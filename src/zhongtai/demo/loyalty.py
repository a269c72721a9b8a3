"""The demo chain's loyalty books: HQ's coupon campaigns and the coupons members hold and use,
points earned, spent, taken back and expired, and tiers — the rows the loyalty services would
have written over the members' lives and the order history."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from zhongtai.core.settings import Settings
from zhongtai.demo.catalog import Row
from zhongtai.demo.generator import DemoChain
from zhongtai.demo.members import DemoMembers
from zhongtai.demo.seeded import stream, uuid7_at
from zhongtai.demo.sites import TIMEZONE, StoreFormat
from zhongtai.loyalty import rules
from zhongtai.loyalty.coupon_rules import CouponKind, CouponOffer, CouponTerms, coupon_verdict
from zhongtai.loyalty.models import CouponAction, CouponStatus, EntryKind, SourceType
from zhongtai.loyalty.promotion_rules import OfferContext, OfferLine, Scope
from zhongtai.loyalty.scopes import scope_from_json, scope_to_json
from zhongtai.loyalty.tier_rules import (
    DEFAULT_TIERS,
    RANK,
    REVIEW_PERIOD,
    Tier,
    TierStanding,
    next_standing,
)
from zhongtai.orders.pricing_rules import BasketLine, Discount

ACTOR = "demo:loyalty"
ZONE = ZoneInfo(TIMEZONE)
#: Points every member got for signing up, booked once per member under this campaign.
SIGNUP_BONUS = 100
SIGNUP_CAMPAIGN = "signup-bonus"
#: What the points mall gives for points, dearest first.
POINTS_MALL = ((2000, "保温杯"), (1000, "¥10 购物卡"), (300, "环保购物袋"))
#: Each member looks at the points mall up to this many times in the history, and takes the
#: dearest gift she can afford this often.
MALL_VISITS = 2
MALL_TAKE = 0.4
#: The scheduled jobs (points expiry, tier review) run nightly at this local hour.
NIGHTLY = time(2, 0)
#: A member who holds a coupon that fits her basket remembers to use it this often, unless
#: it lapses within the hour.
COUPON_REMEMBERED = 0.7
LAPSING = timedelta(hours=1)
#: The spend from which a member of each tier would move up (none above the top tier).
UPGRADE_FROM = {
    tier: min((DEFAULT_TIERS.spend_fen[t] for t in Tier if RANK[t] > RANK[tier]), default=None)
    for tier in Tier
}


@dataclass(frozen=True)
class LoyaltyTerms:
    """The chain's points settings, as the live handlers read them."""

    points_per_yuan: int = 1
    valid_days: int = 365

    @classmethod
    def of(cls, settings: Settings) -> LoyaltyTerms:
        return cls(settings.points_per_yuan, settings.points_valid_days)


@dataclass(frozen=True)
class Campaign:
    """A coupon template HQ set up, with when (in days from the history's end) it was set up
    and its coupons hold: ``valid_days`` after each is issued, within the fixed dates if any.
    (Every demo template has ``valid_days``: the schema before fixed dates requires it, and
    ``seed-demo --reset`` migrates the loaded chain down through it.)"""

    code: str
    name: str
    terms: CouponTerms
    created_day: int
    valid_days: int | None = None
    valid_from_day: int | None = None
    valid_until_day: int | None = None
    apparel_only: bool = False
    stacks_with_promotions: bool = True
    claim_code: str | None = None
    total_limit: int | None = None


WELCOME = Campaign(
    "DEMO-WELCOME", "新人券 满39减10", CouponTerms(CouponKind.AMOUNT_OFF, 1000, 3900), -180, 30
)
MAN100 = Campaign(
    "DEMO-MAN100-20",
    "满100减20",
    CouponTerms(CouponKind.AMOUNT_OFF, 2000, 10_000),
    -22,
    valid_days=35,
    valid_from_day=-21,
    valid_until_day=14,
)
BIRTHDAY = Campaign(
    "DEMO-BIRTHDAY", "生日礼券 满99减30", CouponTerms(CouponKind.AMOUNT_OFF, 3000, 9900), -120, 30
)
APPAREL = Campaign(
    "DEMO-APPAREL-8",
    "服装 8 折（最高减 ¥50）",
    CouponTerms(CouponKind.PERCENT_OFF, 20, cap_fen=5000),
    -31,
    valid_days=45,
    apparel_only=True,
    stacks_with_promotions=False,
)
CLAIMED = Campaign(
    "DEMO-CLAIM-8",
    "扫码领券 满59减8",
    CouponTerms(CouponKind.AMOUNT_OFF, 800, 5900),
    -46,
    valid_days=30,
    valid_from_day=-45,
    valid_until_day=15,
    claim_code="ZHONGTAI8",
    total_limit=2000,
)
CAMPAIGNS = (WELCOME, MAN100, BIRTHDAY, APPAREL, CLAIMED)
#: Who got the campaigns' coupons: a share of the members, apparel lovers, WeChat users.
MAN100_REACH = 0.6
APPAREL_REACH = 0.7
CLAIMED_BY = 0.12


def nightly_run(moment: datetime) -> datetime:
    """The first nightly job run at or after ``moment``."""
    local = moment.astimezone(ZONE)
    run = datetime.combine(local.date(), NIGHTLY, tzinfo=ZONE)
    if run < local:
        run += timedelta(days=1)
    return run.astimezone(UTC)


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=ZONE).astimezone(UTC)


def _sku_lineages(chain: DemoChain) -> dict[uuid.UUID, tuple[uuid.UUID, ...]]:
    """Each SKU's category and its ancestors, nearest first, as coupon scopes read them."""
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


@dataclass(frozen=True)
class CouponChoice:
    """The coupon a member put on an order, and what it took off."""

    coupon_id: uuid.UUID
    member_id: uuid.UUID
    name: str
    discount: Discount
    why: str


@dataclass
class _Held:
    row: Row
    offer: CouponOffer
    restores: bool
    #: When it was not free: held by an order from .. until (None: for good).
    busy: list[tuple[datetime, datetime | None]] = field(default_factory=list)

    def free_at(self, at: datetime) -> bool:
        return all(not (start <= at and (end is None or at < end)) for start, end in self.busy)


class CouponCampaigns:
    """The campaigns' templates and the coupons issued to members, and each coupon's use by
    the history's orders (:meth:`choose` then :meth:`record`), as the coupon services keep them:
    one REDEEM per use, RESTORE when its order is cancelled or comes back in full."""

    def __init__(self, chain: DemoChain, members: DemoMembers, end: datetime) -> None:
        self.templates: list[Row] = []
        self.coupons: list[Row] = []
        self.uses: list[Row] = []
        self.end = end
        self.rng = stream(chain.seed, "coupons")
        self.lineages = _sku_lineages(chain)
        self.held: dict[uuid.UUID, list[_Held]] = defaultdict(list)
        self._by_code: dict[str, Row] = {}
        self._scopes: dict[str, Scope] = {}
        apparel = chain.catalog.category_ids.get("APPAREL")
        for campaign in CAMPAIGNS:
            self._template(campaign, apparel)
        self._issue(chain, members)

    # --- templates and issuing -------------------------------------------------------------------

    def _day(self, offset: int | None) -> datetime | None:
        return None if offset is None else self.end + timedelta(days=offset)

    def _template(self, campaign: Campaign, apparel: uuid.UUID | None) -> None:
        created = self.end + timedelta(days=campaign.created_day)
        categories = frozenset({apparel}) if campaign.apparel_only and apparel else frozenset()
        row: Row = {
            "id": uuid7_at(self.rng, created),
            "code": campaign.code,
            "name": campaign.name,
            "kind": campaign.terms.kind,
            "value": campaign.terms.value,
            "threshold_fen": campaign.terms.threshold_fen,
            "cap_fen": campaign.terms.cap_fen,
            "gift_sku_id": None,
            "scope": scope_to_json(Scope(category_ids=categories)),
            "valid_from": self._day(campaign.valid_from_day),
            "valid_until": self._day(campaign.valid_until_day),
            "valid_days": campaign.valid_days,
            "stacks_with_promotions": campaign.stacks_with_promotions,
            "stacks_with_coupons": False,
            "restore_on_full_return": True,
            "claim_code": campaign.claim_code,
            "total_limit": campaign.total_limit,
            "per_member_limit": 1,
            "issued": 0,
            "active": True,
            "created_at": created,
        }
        self.templates.append(row)
        self._by_code[campaign.code] = row
        # Read back as the checkout reads a template's scope.
        self._scopes[campaign.code] = scope_from_json(row["scope"])

    def _give(self, campaign: Campaign, member_id: uuid.UUID, at: datetime, via: str) -> None:
        """One coupon of the campaign, as ``issue_coupon`` gives it (its window from the
        template's validity), with its ISSUE in the coupon's history."""
        template = self._by_code[campaign.code]
        fixed_from, fixed_until = template["valid_from"], template["valid_until"]
        starts = max(at, fixed_from) if fixed_from else at
        ends = [e for e in (fixed_until,) if e is not None]
        if campaign.valid_days is not None:
            ends.append(at + timedelta(days=campaign.valid_days))
        expires = min(ends)
        if expires <= at or at < template["created_at"]:
            return
        template["issued"] += 1
        row: Row = {
            "id": uuid7_at(self.rng, at),
            "template_id": template["id"],
            "member_id": member_id,
            "status": CouponStatus.AVAILABLE,
            "issued_via": via,
            "issued_at": at,
            "starts_at": starts if starts > at else None,
            "expires_at": expires,
            "locked_by": None,
            "locked_until": None,
            "redeemed_at": None,
            "redeemed_source_type": None,
            "redeemed_source_id": None,
            "discount_fen": None,
        }
        self.coupons.append(row)
        self._use(row, CouponAction.ISSUE, via, at)
        offer = CouponOffer(
            coupon_id=str(row["id"]),
            name=template["name"],
            terms=campaign.terms,
            scope=self._scopes[campaign.code],
            starts_at=row["starts_at"],
            ends_at=expires,
            stacks_with_promotions=template["stacks_with_promotions"],
        )
        self.held[member_id].append(_Held(row, offer, template["restore_on_full_return"]))

    def _issue(self, chain: DemoChain, members: DemoMembers) -> None:
        rng, end = self.rng, self.end
        apparel_stores = {
            s["id"] for s in chain.stores if chain.formats.get(s["code"]) is StoreFormat.DEPARTMENT
        }
        man100_at = _local((end + timedelta(days=MAN100.valid_from_day or 0)).date(), time(10))
        apparel_at = _local((end + timedelta(days=APPAREL.created_day + 1)).date(), time(10))
        claim_from = self._by_code[CLAIMED.code]["valid_from"]
        claims: list[tuple[datetime, uuid.UUID]] = []
        for member in members.members:
            member_id, joined = member["id"], member["created_at"]
            self._give(WELCOME, member_id, joined, "signup")
            if joined < man100_at and rng.random() < MAN100_REACH:
                self._give(MAN100, member_id, man100_at, "campaign")
            for moment in self._birthday_issues(member["birthday"], joined):
                self._give(BIRTHDAY, member_id, moment, "campaign")
            likes_apparel = member["preferred_store_id"] in apparel_stores or bool(
                member["preferences"].get("top_size")
            )
            if likes_apparel and joined < apparel_at and rng.random() < APPAREL_REACH:
                self._give(APPAREL, member_id, apparel_at, "segment")
            on_wechat = members.unionid_since.get(member_id)
            if on_wechat is not None and rng.random() < CLAIMED_BY:
                since = max(claim_from, on_wechat)
                if since < end:
                    claims.append((since + (end - since) * rng.random(), member_id))
        # First come, first served: claims past the total limit are refused.
        for at, member_id in sorted(claims)[: CLAIMED.total_limit]:
            self._give(CLAIMED, member_id, at, "claim")

    def _birthday_issues(self, birthday: date | None, joined: datetime) -> Iterator[datetime]:
        """A week before each birthday since the birthday coupon was set up, at 09:00."""
        if birthday is None:
            return
        created = self.end + timedelta(days=BIRTHDAY.created_day)
        for year in range(created.year, self.end.year + 1):
            try:
                day = birthday.replace(year=year)
            except ValueError:  # born on 29 February: celebrated on 1 March
                day = date(year, 3, 1)
            moment = _local(day - timedelta(days=7), time(9))
            if created <= moment < self.end and joined <= moment:
                yield moment

    def _use(
        self,
        coupon: Row,
        action: CouponAction,
        reference: str | None,
        at: datetime,
        discount: int | None = None,
    ) -> None:
        self.uses.append(
            {
                "id": uuid7_at(self.rng, at),
                "coupon_id": coupon["id"],
                "action": action,
                "reference": reference,
                "discount_fen": discount,
                "occurred_at": at,
                "actor": ACTOR,
            }
        )

    # --- the history's orders use them -----------------------------------------------------------

    def choose(
        self,
        rng: random.Random,
        member_id: uuid.UUID,
        at: datetime,
        context: tuple[str, uuid.UUID],
        lines: Sequence[BasketLine],
        nets: Sequence[int],
    ) -> CouponChoice | None:
        """The coupon of hers that saves most on the basket (lines costing ``nets`` after the
        store's promotion) at ``at`` in this (channel, store), if she remembers to use it."""
        channel, store_id = context
        # Not one about to lapse: an online order is paid minutes later, and then redeems it.
        usable = [
            h
            for h in self.held.get(member_id, ())
            if h.row["issued_at"] <= at < h.row["expires_at"] - LAPSING and h.free_at(at)
        ]
        if not usable:
            return None
        offer_lines = [
            OfferLine(
                line.sku_id,
                self.lineages.get(line.sku_id, ()) if line.sku_id else (),
                line.unit_price,
                line.price_per,
                line.quantity,
            )
            for line in lines
        ]
        shopper = OfferContext(channel, store_id, at, Tier.STANDARD.value)
        best: tuple[int, CouponChoice] | None = None
        for held in usable:
            verdict = coupon_verdict(held.offer, offer_lines, nets, shopper)
            if verdict.discount is None:
                continue
            saving = verdict.discount.amount
            if best is None or saving > best[0]:
                why = verdict.explanation.sentence
                choice = CouponChoice(
                    held.row["id"], member_id, held.offer.name, verdict.discount, why
                )
                best = (saving, choice)
        if best is None or rng.random() >= COUPON_REMEMBERED:
            return None
        return best[1]

    def record(
        self,
        choice: CouponChoice,
        order_id: uuid.UUID,
        *,
        placed_at: datetime,
        paid_at: datetime | None,
        online: bool,
        freed_at: datetime | None = None,
        returned_in_full_at: datetime | None = None,
    ) -> None:
        """What the order did to the coupon: held by its checkout (online), redeemed when it
        was paid, released when it went unpaid (``freed_at``); given back when the paid order
        was cancelled (``freed_at``) or came back in full, while the coupon was still valid."""
        held = next(h for h in self.held[choice.member_id] if h.row["id"] == choice.coupon_id)
        row, reference = held.row, f"order:{order_id}"
        amount = choice.discount.amount
        if online:
            self._use(row, CouponAction.LOCK, reference, placed_at)
        if paid_at is None:
            self._use(row, CouponAction.RELEASE, reference, freed_at or placed_at)
            held.busy.append((placed_at, freed_at or placed_at))
            return
        self._use(row, CouponAction.REDEEM, reference, paid_at, amount)
        row.update(
            status=CouponStatus.REDEEMED,
            redeemed_at=paid_at,
            redeemed_source_type=SourceType.ORDER,
            redeemed_source_id=str(order_id),
            discount_fen=amount,
        )
        back = freed_at
        if back is None and returned_in_full_at is not None and held.restores:
            back = returned_in_full_at
        if back is not None and row["expires_at"] > back:
            self._use(row, CouponAction.RESTORE, str(order_id), back)
            row.update(
                status=CouponStatus.AVAILABLE,
                redeemed_at=None,
                redeemed_source_type=None,
                redeemed_source_id=None,
                discount_fen=None,
            )
            held.busy.append((placed_at, back))
        else:
            held.busy.append((placed_at, None))


class OrderRows(Protocol):
    """The history's rows the points are booked from."""

    orders: list[Row]
    lines: list[Row]
    payments: list[Row]
    returns: list[Row]


@dataclass
class PointsBooks:
    """Every row of the points ledger and the tiers, ready for bulk insert."""

    accounts: list[Row] = field(default_factory=list)
    entries: list[Row] = field(default_factory=list)
    lots: list[Row] = field(default_factory=list)
    lot_uses: list[Row] = field(default_factory=list)
    tiers: list[Row] = field(default_factory=list)


class _Ledger:
    """One member's points and tier, kept as ``loyalty.ledger``, ``expiry`` and ``tiers`` keep
    them: lots spent nearest-expiry first, reversals taking held points first and leaving the
    rest as debt that new points pay off, tiers up at once and down only at review."""

    def __init__(self, books: PointsBooks, member_id: uuid.UUID, rng: random.Random) -> None:
        self.books, self.member_id, self.rng = books, member_id, rng
        self.balance = self.debt = 0
        self.lots: list[Row] = []
        self.sequence = 0
        self.spend: list[tuple[datetime, int]] = []
        self.tier: Row | None = None
        self.earned: dict[str, Row] = {}
        #: The amount returned so far of each earn entry's sale.
        self.returned: dict[uuid.UUID, int] = {}
        #: The nightly run that first sees each moment (lots' expiry, the tier's review).
        self.runs: dict[datetime, datetime] = {}
        self.last: datetime | None = None

    # --- the building blocks (accounts.py) -------------------------------------------------------

    def _book(
        self,
        kind: EntryKind,
        source: tuple[SourceType, str],
        at: datetime,
        points: int,
        debt_change: int = 0,
        *,
        amount_fen: int | None = None,
        related_entry_id: uuid.UUID | None = None,
        store_id: uuid.UUID | None = None,
        reason: str | None = None,
    ) -> Row:
        self.balance += points
        self.debt += debt_change
        entry: Row = {
            "id": uuid7_at(self.rng, at, self.sequence % 4096),
            "member_id": self.member_id,
            "kind": kind,
            "source_type": source[0],
            "source_id": source[1],
            "points": points,
            "debt_change": debt_change,
            "balance_after": self.balance,
            "debt_after": self.debt,
            "amount_fen": amount_fen,
            "related_entry_id": related_entry_id,
            "store_id": store_id,
            "reason": reason,
            "occurred_at": at,
            "actor": ACTOR,
        }
        self.sequence += 1
        self.last = at
        self.books.entries.append(entry)
        return entry

    def _spendable(self, at: datetime) -> list[rules.LotBalance]:
        return [
            rules.LotBalance(lot["id"], lot["remaining"], lot["expires_at"], lot["earned_at"])
            for lot in self.lots
            if lot["remaining"] > 0 and lot["expires_at"] > at
        ]

    def _take(self, entry: Row, plan: Sequence[tuple[uuid.UUID, int]]) -> None:
        lots = {lot["id"]: lot for lot in self.lots}
        for lot_id, points in plan:
            lots[lot_id]["remaining"] -= points
            self.books.lot_uses.append(
                {
                    "id": uuid7_at(self.rng, entry["occurred_at"]),
                    "entry_id": entry["id"],
                    "lot_id": lot_id,
                    "points": points,
                }
            )

    # --- what the services do (ledger.py, expiry.py, tiers.py) -----------------------------------

    def credit(
        self,
        source: tuple[SourceType, str],
        points: int,
        at: datetime,
        valid: timedelta,
        *,
        store_id: uuid.UUID,
        basis_fen: int | None = None,
    ) -> Row:
        """``earn_points``: a lot for the points, which pay off her debt first; then her tier
        is reviewed."""
        entry = self._book(
            EntryKind.EARN, source, at, points, amount_fen=basis_fen, store_id=store_id
        )
        if points > 0:
            lot: Row = {
                "id": uuid7_at(self.rng, at),
                "member_id": self.member_id,
                "entry_id": entry["id"],
                "source_type": source[0],
                "source_id": source[1],
                "amount": points,
                "remaining": points,
                "earned_at": at,
                "expires_at": at + valid,
            }
            self.lots.append(lot)
            self.books.lots.append(lot)
            paid = min(self.debt, points)
            if paid > 0:
                settle = self._book(EntryKind.SETTLE, source, at, -paid, -paid, store_id=store_id)
                self._take(settle, [(lot["id"], paid)])
        if basis_fen is not None:
            self.spend.append((at, basis_fen))
        self.review(at)
        return entry

    def expire_due(self, now: datetime) -> None:
        """``expire_due_lots``: each lot past its date loses what it has left."""
        for lot in sorted(self.lots, key=lambda x: (x["expires_at"], x["id"])):
            if lot["remaining"] > 0 and lot["expires_at"] <= now:
                source = (SourceType.LOT, str(lot["id"]))
                entry = self._book(EntryKind.EXPIRE, source, now, -lot["remaining"])
                self._take(entry, [(lot["id"], lot["remaining"])])

    def spendable_points(self, at: datetime) -> int:
        return sum(lot.remaining for lot in self._spendable(at))

    def redeem(
        self,
        source: tuple[SourceType, str],
        points: int,
        at: datetime,
        store_id: uuid.UUID,
        reason: str,
    ) -> None:
        """``redeem_points``: due lots expire first, then the nearest expiry pays."""
        self.expire_due(at)
        entry = self._book(EntryKind.REDEEM, source, at, -points, store_id=store_id, reason=reason)
        self._take(entry, rules.plan_spending(self._spendable(at), points))

    def reverse(
        self, source: tuple[SourceType, str], earn: Row, returned_fen: int, at: datetime
    ) -> None:
        """``reverse_points`` with ``clip``: in proportion to the refund, from the sale's own
        lot first, then nearest expiry; what was spent already becomes debt."""
        basis = earn["amount_fen"] or 0
        before = self.returned.get(earn["id"], 0)
        returned = max(0, min(returned_fen, basis - before))
        self.returned[earn["id"]] = before + returned
        due = rules.reversal_points(earn["points"], basis, before, returned)
        self.expire_due(at)
        lots = self._spendable(at)
        own = next((lot["id"] for lot in self.lots if lot["entry_id"] == earn["id"]), None)
        plan = rules.plan_spending([x for x in lots if x.lot_id == own], due)
        rest = [x for x in lots if x.lot_id != own]
        plan += rules.plan_spending(rest, due - sum(p for _, p in plan))
        taken = sum(p for _, p in plan)
        entry = self._book(
            EntryKind.REVERSE,
            source,
            at,
            -taken,
            due - taken,
            amount_fen=returned,
            related_entry_id=earn["id"],
        )
        self._take(entry, plan)
        self.spend.append((at, -returned))

    def review(self, at: datetime) -> None:
        """``review_tier``: her tier by the rolling year's spend, up at once, down at review."""
        spend = max(0, sum(fen for when, fen in self.spend if at - REVIEW_PERIOD < when <= at))
        row = self.tier
        current = (
            TierStanding(row["tier"], row["review_at"])
            if row
            else TierStanding(Tier.STANDARD, at + REVIEW_PERIOD)
        )
        upgrade = UPGRADE_FROM[current.tier]
        if at < current.review_at and (upgrade is None or spend < upgrade):
            standing = current  # what next_standing answers, without its cost on every signup
        else:
            standing = next_standing(current, spend, at)
        if row is None:
            self.tier = {
                "member_id": self.member_id,
                "tier": standing.tier,
                "since": at,
                "review_at": standing.review_at,
            }
            self.books.tiers.append(self.tier)
        elif standing != current:
            if standing.tier is not row["tier"]:
                row["since"] = at
            row.update(tier=standing.tier, review_at=standing.review_at)

    def _run_after(self, moment: datetime) -> datetime:
        if moment not in self.runs:
            self.runs[moment] = nightly_run(moment)
        return self.runs[moment]

    def run_jobs(self, until: datetime) -> None:
        """The nightly expiry and tier review, each run before ``until`` that had work."""
        while True:
            due = [self._run_after(x["expires_at"]) for x in self.lots if x["remaining"] > 0]
            expiry = min(due, default=None)
            review = self._run_after(self.tier["review_at"]) if self.tier else None
            runs = [r for r in (expiry, review) if r is not None and r < until]
            if not runs:
                return
            run = min(runs)
            if run == expiry:
                self.expire_due(run)
            if run == review:
                self.review(run)

    @property
    def multiplier(self) -> int:
        tier = self.tier["tier"] if self.tier else Tier.STANDARD
        return DEFAULT_TIERS.earn_multiplier_pct[tier]


def _sales(
    history: OrderRows,
) -> tuple[dict[uuid.UUID, list[Row]], dict[uuid.UUID, list[Row]], dict[uuid.UUID, list[Row]]]:
    lines: dict[uuid.UUID, list[Row]] = defaultdict(list)
    for line in history.lines:
        lines[line["order_id"]].append(line)
    paid: dict[uuid.UUID, list[Row]] = defaultdict(list)
    for payment in history.payments:
        paid[payment["order_id"]].append(payment)
    returns: dict[uuid.UUID, list[Row]] = defaultdict(list)
    for came_back in history.returns:
        returns[came_back["order_id"]].append(came_back)
    return lines, paid, returns


def build_points(
    chain: DemoChain,
    members: DemoMembers,
    history: OrderRows,
    *,
    start: datetime,
    end: datetime,
    terms: LoyaltyTerms,
) -> PointsBooks:
    """Every member's points and tier up to ``end``, event by event in time order: her signup
    bonus, the points her completed orders earned (1 point a yuan paid with money, times her
    tier's multiplier), taken back by returns, gifts from the points mall, and the nightly
    expiry and tier review. Pure."""
    books = PointsBooks()
    valid = timedelta(days=terms.valid_days)
    lines, paid, returns = _sales(history)
    orders: dict[uuid.UUID, list[Row]] = defaultdict(list)
    for order in history.orders:
        if order["member_id"] is not None and order["completed_at"] is not None:
            orders[order["member_id"]].append(order)
    by_store: dict[uuid.UUID, list[Row]] = defaultdict(list)
    for member in members.members:
        by_store[member["registered_store_id"]].append(member)
    for store in chain.stores:
        rng = stream(chain.seed, f"points:{store['code']}")
        for member in by_store[store["id"]]:
            ledger = _Ledger(books, member["id"], rng)
            events: list[tuple[datetime, int, Callable[[datetime], None]]] = []
            joined, home = member["created_at"], member["registered_store_id"]

            def signup(at: datetime, ledger: _Ledger = ledger, home: uuid.UUID = home) -> None:
                source = (SourceType.CAMPAIGN, SIGNUP_CAMPAIGN)
                ledger.credit(source, SIGNUP_BONUS, at, valid, store_id=home)

            events.append((joined, 0, signup))
            for order in orders.get(member["id"], ()):
                events.append(
                    (order["completed_at"], 1, _earning(ledger, order, lines, paid, terms, valid))
                )
                for came_back in returns.get(order["id"], ()):
                    events.append(
                        (came_back["occurred_at"], 2, _reversal(ledger, order, came_back))
                    )
            for _ in range(MALL_VISITS):
                since = max(start, joined)
                if since < end:
                    at = since + (end - since) * rng.random()
                    events.append((at, 3, _mall_visit(ledger, rng, home)))
            for at, _, happen in sorted(events, key=lambda e: (e[0], e[1])):
                ledger.run_jobs(at)
                happen(at)
            ledger.run_jobs(end)
            books.accounts.append(
                {
                    "member_id": member["id"],
                    "balance": ledger.balance,
                    "debt": ledger.debt,
                    "updated_at": ledger.last or joined,
                }
            )
    return books


def _earning(
    ledger: _Ledger,
    order: Row,
    lines: Mapping[uuid.UUID, list[Row]],
    paid: Mapping[uuid.UUID, list[Row]],
    terms: LoyaltyTerms,
    valid: timedelta,
) -> Callable[[datetime], None]:
    def earn(at: datetime) -> None:
        """``earn_for_order``: the goods' nets less short picks, money tenders only."""
        sale = [rules.SaleLine(x["net_amount"] - x["short_refund"]) for x in lines[order["id"]]]
        tenders = [
            rules.Tender(rules.TenderKind(p["tender"].value), p["amount"])
            for p in paid.get(order["id"], ())
        ]
        policy = rules.EarnPolicy(terms.points_per_yuan, tier_multiplier_pct=ledger.multiplier)
        earning = rules.points_for_sale(sale, tenders, policy)
        ledger.earned[str(order["id"])] = ledger.credit(
            (SourceType.ORDER, str(order["id"])),
            earning.points,
            at,
            valid,
            store_id=order["store_id"],
            basis_fen=earning.basis_fen,
        )

    return earn


def _reversal(ledger: _Ledger, order: Row, came_back: Row) -> Callable[[datetime], None]:
    def reverse(at: datetime) -> None:
        """``reverse_for_return``: only what a credited order earned is taken back."""
        earn = ledger.earned.get(str(order["id"]))
        if earn is None or came_back["refund_total"] <= 0:
            return
        ledger.reverse(
            (SourceType.RETURN, str(came_back["id"])), earn, came_back["refund_total"], at
        )

    return reverse


def _mall_visit(
    ledger: _Ledger, rng: random.Random, store_id: uuid.UUID
) -> Callable[[datetime], None]:
    fancies = rng.random() < MALL_TAKE

    def visit(at: datetime) -> None:
        """She takes the dearest gift her points buy, if she fancies one."""
        points = ledger.spendable_points(at)
        gift = next(((p, name) for p, name in POINTS_MALL if p <= points), None)
        if gift is None or not fancies:
            return
        source = (SourceType.CAMPAIGN, f"points-mall:{uuid7_at(rng, at)}")
        ledger.redeem(source, gift[0], at, store_id, f"积分商城兑换：{gift[1]}")

    return visit
