"""The coupons HQ's campaigns gave the demo chain's members, and their use by the history's
orders: the templates, coupons and coupon history the coupon services would have written, one
REDEEM per use and RESTORE when its order is cancelled or comes back in full."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from zhongtai.demo.catalog import Row, sku_lineages
from zhongtai.demo.coupon_campaigns import (
    APPAREL,
    APPAREL_REACH,
    BIRTHDAY,
    CAMPAIGNS,
    CLAIMED,
    CLAIMED_BY,
    MAN100,
    MAN100_REACH,
    WELCOME,
    Campaign,
)
from zhongtai.demo.generator import DemoChain
from zhongtai.demo.members import DemoMembers
from zhongtai.demo.seeded import stream, uuid7_at
from zhongtai.demo.sites import TIMEZONE, StoreFormat
from zhongtai.loyalty.coupon_rules import CouponOffer, coupon_verdict
from zhongtai.loyalty.models import CouponAction, CouponStatus, SourceType
from zhongtai.loyalty.promotion_rules import OfferContext, OfferLine, Scope
from zhongtai.loyalty.scopes import scope_from_json, scope_to_json
from zhongtai.loyalty.tier_rules import Tier
from zhongtai.orders.pricing_rules import BasketLine, Discount

#: The coupon history's actor: the demo's loyalty books (as the points ledger's entries).
ACTOR = "demo:loyalty"
ZONE = ZoneInfo(TIMEZONE)
#: A member who holds a coupon that fits her basket remembers to use it this often, unless
#: it lapses within the hour.
COUPON_REMEMBERED = 0.7
LAPSING = timedelta(hours=1)


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=ZONE).astimezone(UTC)


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
        self.lineages = sku_lineages(chain.catalog)
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
            self._use(row, CouponAction.RESTORE, reference, back)
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
