"""Tiers: by rolling 12-month spend, up at once, down only at the review date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.members.conftest import MakeMember
from zhongtai.core.outbox import OutboxEvent
from zhongtai.loyalty import rules
from zhongtai.loyalty import service as loyalty
from zhongtai.loyalty.models import SourceType
from zhongtai.loyalty.tier_rules import RANK, Tier, TierStanding, next_standing, tier_for_spend
from zhongtai.loyalty.tiers import current_tier, review_due_tiers

T0 = datetime(2026, 1, 1, tzinfo=UTC)
standings = st.builds(
    TierStanding,
    st.sampled_from(list(Tier)),
    st.integers(-400, 400).map(lambda d: T0 + timedelta(days=d)),
)
spends = st.integers(min_value=0, max_value=10_000_000)


def test_spend_thresholds_give_the_four_tiers() -> None:
    assert [tier_for_spend(f) for f in (0, 199_999, 200_000, 800_000, 3_000_000)] == [
        Tier.STANDARD,
        Tier.STANDARD,
        Tier.SILVER,
        Tier.GOLD,
        Tier.BLACK,
    ]


@given(standings, spends)
def test_a_member_never_moves_down_before_her_review_date(
    current: TierStanding, spend: int
) -> None:
    at = T0
    moved = next_standing(current, spend, at)
    if at < current.review_at:
        assert RANK[moved.tier] >= RANK[current.tier]
    else:
        assert moved.tier is tier_for_spend(spend)
    if moved != current:
        assert moved.review_at == at + timedelta(days=365)


@given(standings, spends)
def test_a_spend_that_earns_a_higher_tier_upgrades_at_once(
    current: TierStanding, spend: int
) -> None:
    moved = next_standing(current, spend, T0)
    assert RANK[moved.tier] >= RANK[tier_for_spend(spend)]


def _sale(session: Session, member_id, n: str, fen: int, at: datetime):  # type: ignore[no-untyped-def]
    return loyalty.earn_for_sale(
        session,
        member_id,
        loyalty.Source(SourceType.POS_SALE, n),
        [rules.SaleLine(fen)],
        [],
        points_per_yuan=1,
        at=at,
    )


def test_a_sale_over_the_threshold_upgrades_at_once_and_the_next_sale_earns_more(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    now = datetime.now(UTC)
    first = _sale(session, member.id, "T-1", 200_000, now)
    assert first.entry.points == 2_000
    assert current_tier(session, member.id) is Tier.SILVER
    second = _sale(session, member.id, "T-2", 10_000, now)
    assert second.entry.points == 120  # silver earns ×1.2
    # The first sale replayed after the upgrade is still the same sale: nothing changes.
    assert _sale(session, member.id, "T-1", 200_000, now).replayed
    changed = session.scalar(
        select(func.count()).where(
            OutboxEvent.type == "tier.changed", OutboxEvent.aggregate_id == str(member.id)
        )
    )
    assert changed == 1


def test_a_quiet_year_brings_her_down_at_the_review_date_not_before(
    session: Session, make_member: MakeMember
) -> None:
    member = make_member()
    start = datetime.now(UTC) - timedelta(days=400)
    _sale(session, member.id, "Q-1", 900_000, start)
    assert current_tier(session, member.id) is Tier.GOLD
    assert review_due_tiers(session, start + timedelta(days=300)) == 0
    assert current_tier(session, member.id) is Tier.GOLD
    assert review_due_tiers(session, start + timedelta(days=366)) >= 1
    assert current_tier(session, member.id) is Tier.STANDARD
