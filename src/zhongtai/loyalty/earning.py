"""Points for a sale: HQ's earn rules and her tier applied to its lines and tenders, booked
once with the multipliers it earned at."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from zhongtai.catalog.categories import category_lineages
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import InvalidInput
from zhongtai.loyalty import rules
from zhongtai.loyalty.accounts import Booked, Source, lock_account
from zhongtai.loyalty.earn_rules import multipliers_for_sale
from zhongtai.loyalty.ledger import DEFAULT_VALIDITY, MAX_ADJUST_POINTS, earn_points
from zhongtai.loyalty.multiplier_rules import applied_multipliers, category_rates, winning_campaign
from zhongtai.loyalty.tier_rules import DEFAULT_TIERS
from zhongtai.loyalty.tiers import current_tier


def earn_for_sale(
    session: Session,
    member_id: uuid.UUID,
    source: Source,
    lines: Sequence[rules.SaleLine],
    tenders: Sequence[rules.Tender],
    *,
    points_per_yuan: int,
    channel: str | None = None,
    store_id: uuid.UUID | None = None,
    bought_at: datetime | None = None,
    at: datetime | None = None,
    valid_for: timedelta = DEFAULT_VALIDITY,
    pending_until: datetime | None = None,
    reported: bool = False,
) -> Booked:
    """Credit what the sale earns: the base rate, each line's nearest category rule, the
    winning campaign and her tier's multiplier, recorded on the entry (a replayed sale changes
    nothing); a sale that lifts her spend over a threshold upgrades her at once. With
    ``pending_until`` the points wait until then (the sale's return window). A sale a
    touchpoint ``reported`` beyond ``rules.MAX_SALE_FEN`` or ``MAX_ADJUST_POINTS`` is 422.

    Campaigns are matched to where and when she bought: ``channel`` (None when the touchpoint
    does not say: only campaigns open to every channel), ``store_id``, and ``bought_at`` (an
    online order: when it was placed; default ``at``, when the points are booked).
    """
    at = at or utcnow()
    bought_at = bought_at or at
    # Her lock first: the tier read is the survivor's (after a merge) and cannot move under us.
    member = lock_account(session, member_id)
    tier = current_tier(session, member)
    tier_pct = DEFAULT_TIERS.earn_multiplier_pct[tier]
    live = multipliers_for_sale(session, {c for line in lines for c in line.lineage}, bought_at)
    categories = category_rates(live.categories)
    campaign = winning_campaign(
        live.campaigns, bought_at, channel, None if store_id is None else str(store_id)
    )
    policy = rules.EarnPolicy(
        points_per_yuan=points_per_yuan,
        category_multiplier_pct={c: rule.multiplier_pct for c, rule in categories.items()},
        tier_multiplier_pct=tier_pct,
        campaign_multiplier_pct=rules.PCT if campaign is None else campaign.multiplier_pct,
    )
    earning = rules.points_for_sale(lines, tenders, policy)
    if reported and (earning.basis_fen > rules.MAX_SALE_FEN or earning.points > MAX_ADJUST_POINTS):
        # A touchpoint's figures far beyond any sale (and what the ledger's columns hold):
        # refused, not a 500.
        raise InvalidInput.field(
            "lines",
            f"a sale of at most {rules.MAX_SALE_FEN} fen, "
            f"earning at most {MAX_ADJUST_POINTS} points",
        )
    return earn_points(
        session,
        member,
        source,
        earning.points,
        basis_fen=earning.basis_fen,
        store_id=store_id,
        at=at,
        valid_for=valid_for,
        pending_until=pending_until,
        multipliers=applied_multipliers(
            lines,
            earning,
            points_per_yuan=points_per_yuan,
            tier=tier.value,
            tier_multiplier_pct=tier_pct,
            categories=categories,
            campaign=campaign,
        ),
    )


def earn_for_reported_sale(
    session: Session,
    member_id: uuid.UUID,
    source: Source,
    lines: Sequence[tuple[int, uuid.UUID | None]],
    tenders: Sequence[rules.Tender],
    *,
    points_per_yuan: int,
    channel: str | None = None,
    store_id: uuid.UUID | None = None,
    valid_for: timedelta = DEFAULT_VALIDITY,
    pending_for: timedelta = timedelta(0),
) -> Booked:
    """A sale a touchpoint reports as (net fen, category id) lines, booked now: each category's
    lineage is looked up for the category rules (an unknown category is 422), and with
    ``pending_for`` the points wait that long (the return window)."""
    wanted = {category for _, category in lines if category is not None}
    lineages = category_lineages(session, wanted)
    unknown = sorted(str(c) for c in wanted - set(lineages))
    if unknown:
        raise InvalidInput.field("lines.category_id", f"no category {unknown[0]}")
    sale_lines = []
    for net_fen, category in lines:
        lineage = [str(c) for c in lineages[category]] if category is not None else []
        sale_lines.append(
            rules.SaleLine(net_fen, lineage[0] if lineage else None, tuple(lineage[1:]))
        )
    now = utcnow()
    return earn_for_sale(
        session,
        member_id,
        source,
        sale_lines,
        tenders,
        points_per_yuan=points_per_yuan,
        channel=channel,
        store_id=store_id,
        at=now,
        valid_for=valid_for,
        pending_until=now + pending_for if pending_for > timedelta(0) else None,
        reported=True,
    )
