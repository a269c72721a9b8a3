"""Points for a sale: the earn rules applied to its lines and tenders, booked once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from zhongtai.loyalty import rules
from zhongtai.loyalty.accounts import Booked, Source
from zhongtai.loyalty.ledger import DEFAULT_VALIDITY, earn_points
from zhongtai.loyalty.tier_rules import DEFAULT_TIERS
from zhongtai.loyalty.tiers import current_tier


def earn_for_sale(
    session: Session,
    member_id: uuid.UUID,
    source: Source,
    lines: Sequence[rules.SaleLine],
    tenders: Sequence[rules.Tender],
    policy: rules.EarnPolicy,
    *,
    store_id: uuid.UUID | None = None,
    at: datetime | None = None,
    valid_for: timedelta = DEFAULT_VALIDITY,
) -> Booked:
    """Credit what the sale earns by the rules, her tier's multiplier included (a replayed
    sale changes nothing); a sale that lifts her spend over a threshold upgrades her at once."""
    multiplier = DEFAULT_TIERS.earn_multiplier_pct[current_tier(session, member_id)]
    policy = replace(policy, tier_multiplier_pct=multiplier)
    earning = rules.points_for_sale(lines, tenders, policy)
    return earn_points(
        session,
        member_id,
        source,
        earning.points,
        basis_fen=earning.basis_fen,
        store_id=store_id,
        at=at,
        valid_for=valid_for,
    )
