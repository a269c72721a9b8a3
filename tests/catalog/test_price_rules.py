"""The effective price: which override applies for a store, a channel and a moment."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from zhongtai.catalog.rules import PriceCandidate, PriceScope, effective_price
from zhongtai.core.auth.roles import Channel

STORE_A = uuid.UUID(int=0xA)
STORE_B = uuid.UUID(int=0xB)
T0 = datetime(2026, 6, 1, tzinfo=UTC)

moments = st.integers(-100, 100).map(lambda h: T0 + timedelta(hours=h))
stores = st.sampled_from([None, STORE_A, STORE_B])
channels = st.sampled_from([None, *Channel])


@st.composite
def candidates(draw: st.DrawFn) -> PriceCandidate:
    start = draw(moments)
    length = draw(st.none() | st.integers(1, 100))
    return PriceCandidate(
        id=draw(st.uuids()),
        price=draw(st.integers(0, 100_000)),
        store_id=draw(stores),
        channel=draw(channels),
        valid_from=start,
        valid_to=None if length is None else start + timedelta(hours=length),
    )


overrides_lists = st.lists(candidates(), max_size=12)


@given(overrides_lists, stores, channels, moments, st.integers(0, 100_000))
def test_the_price_is_the_base_price_or_one_of_the_overrides_that_apply(
    overrides: list[PriceCandidate],
    store: uuid.UUID | None,
    channel: Channel | None,
    at: datetime,
    base: int,
) -> None:
    chosen = effective_price(base, overrides, channel=channel, store_id=store, at=at)
    if chosen.override_id is None:
        assert chosen.amount == base
        assert chosen.scope is PriceScope.BASE
        assert not any(
            o.valid_at(at) and o.applies_to(store_id=store, channel=channel) for o in overrides
        )
    else:
        winner = next(o for o in overrides if o.id == chosen.override_id)
        assert chosen.amount == winner.price
        assert winner.valid_at(at)
        assert winner.store_id in (None, store)
        assert winner.channel in (None, channel)


@given(overrides_lists, stores, channels, moments)
def test_an_override_for_another_store_or_channel_never_applies(
    overrides: list[PriceCandidate],
    store: uuid.UUID | None,
    channel: Channel | None,
    at: datetime,
) -> None:
    foreign = [o for o in overrides if o.store_id not in (None, store)] + [
        o for o in overrides if o.channel not in (None, channel)
    ]
    chosen = effective_price(1, foreign, channel=channel, store_id=store, at=at)
    assert chosen.override_id is None


@given(overrides_lists, stores, channels, moments)
def test_an_expired_or_future_override_never_applies(
    overrides: list[PriceCandidate],
    store: uuid.UUID | None,
    channel: Channel | None,
    at: datetime,
) -> None:
    outside = [o for o in overrides if not o.valid_at(at)]
    chosen = effective_price(1, outside, channel=channel, store_id=store, at=at)
    assert chosen.override_id is None


@given(overrides_lists, stores, channels, moments)
def test_no_applicable_override_is_more_specific_or_newer_than_the_winner(
    overrides: list[PriceCandidate],
    store: uuid.UUID | None,
    channel: Channel | None,
    at: datetime,
) -> None:
    chosen = effective_price(1, overrides, channel=channel, store_id=store, at=at)
    rank = [
        PriceScope.BASE,
        PriceScope.CHAIN,
        PriceScope.CHANNEL,
        PriceScope.STORE,
        PriceScope.STORE_CHANNEL,
    ]
    applicable = [
        o for o in overrides if o.valid_at(at) and o.applies_to(store_id=store, channel=channel)
    ]
    for o in applicable:
        assert (rank.index(o.scope), o.valid_from) <= (
            rank.index(chosen.scope),
            next(w.valid_from for w in overrides if w.id == chosen.override_id),
        )


@given(st.permutations(range(5)))
def test_the_order_overrides_are_given_in_does_not_matter(order: list[int]) -> None:
    pool = [
        PriceCandidate(
            uuid.UUID(int=i + 1),
            100 + i,
            STORE_A if i % 2 else None,
            Channel.POS if i > 2 else None,
            T0 - timedelta(hours=i),
            None,
        )
        for i in range(5)
    ]
    shuffled = [pool[i] for i in order]
    assert effective_price(1, shuffled, channel=Channel.POS, store_id=STORE_A, at=T0) == (
        effective_price(1, pool, channel=Channel.POS, store_id=STORE_A, at=T0)
    )


def _override(
    price: int,
    store: uuid.UUID | None,
    channel: Channel | None,
    hours_ago: int = 1,
    until_hours: int | None = None,
) -> PriceCandidate:
    return PriceCandidate(
        id=uuid.uuid4(),
        price=price,
        store_id=store,
        channel=channel,
        valid_from=T0 - timedelta(hours=hours_ago),
        valid_to=None if until_hours is None else T0 + timedelta(hours=until_hours),
    )


def test_store_and_channel_beats_store_beats_channel_beats_chain_beats_base() -> None:
    chain = _override(900, None, None)
    channel = _override(800, None, Channel.POS)
    store = _override(700, STORE_A, None)
    both = _override(600, STORE_A, Channel.POS)
    offers = [chain, channel, store, both]
    expected = [
        (both, PriceScope.STORE_CHANNEL),
        (store, PriceScope.STORE),
        (channel, PriceScope.CHANNEL),
        (chain, PriceScope.CHAIN),
    ]
    for winner, scope in expected:
        chosen = effective_price(1000, offers, channel=Channel.POS, store_id=STORE_A, at=T0)
        assert (chosen.amount, chosen.override_id, chosen.scope) == (winner.price, winner.id, scope)
        offers.remove(winner)
    assert (
        effective_price(1000, offers, channel=Channel.POS, store_id=STORE_A, at=T0).amount == 1000
    )


def test_between_equally_specific_overrides_the_latest_start_wins() -> None:
    standing = _override(900, STORE_A, None, hours_ago=24 * 30)
    weekend_promotion = _override(750, STORE_A, None, hours_ago=2, until_hours=46)
    chosen = effective_price(
        1000, [weekend_promotion, standing], channel=None, store_id=STORE_A, at=T0
    )
    assert chosen.override_id == weekend_promotion.id
    after = effective_price(
        1000,
        [weekend_promotion, standing],
        channel=None,
        store_id=STORE_A,
        at=T0 + timedelta(hours=46),
    )
    assert after.override_id == standing.id


def test_valid_from_is_inclusive_and_valid_to_exclusive() -> None:
    window = PriceCandidate(uuid.uuid4(), 500, None, None, T0, T0 + timedelta(hours=1))
    assert effective_price(1000, [window], channel=None, store_id=None, at=T0).amount == 500
    end = T0 + timedelta(hours=1)
    assert effective_price(1000, [window], channel=None, store_id=None, at=end).amount == 1000
    before = T0 - timedelta(microseconds=1)
    assert effective_price(1000, [window], channel=None, store_id=None, at=before).amount == 1000


def test_without_a_store_only_overrides_for_every_store_apply() -> None:
    store_only = _override(700, STORE_A, None)
    assert effective_price(1000, [store_only], channel=None, store_id=None, at=T0).amount == 1000
