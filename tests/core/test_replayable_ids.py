"""Ids a retried step must send a provider again: the same from the same inputs, UUIDv7-shaped,
and sorted by their sequence."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from zhongtai.core.ids import replayable_id

PLACED = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
ORDER = uuid.UUID("01a21da0-e19a-703e-ac94-ad01707d6e5e")


def test_the_same_inputs_make_the_same_id_and_any_other_input_another() -> None:
    made = replayable_id(PLACED, 0, "payment", ORDER, "bank_card", 1000)
    assert made == replayable_id(PLACED, 0, "payment", ORDER, "bank_card", 1000)
    others = {
        replayable_id(PLACED, 1, "payment", ORDER, "bank_card", 1000),
        replayable_id(PLACED, 0, "payment", ORDER, "bank_card", 999),
        replayable_id(PLACED, 0, "payment", ORDER, "alipay", 1000),
        replayable_id(PLACED, 0, "payment", uuid.uuid4(), "bank_card", 1000),
    }
    assert made not in others and len(others) == 4


def test_it_is_a_uuid7_whose_time_is_the_moment_plus_the_sequence_in_milliseconds() -> None:
    made = replayable_id(PLACED, 5, "refund")
    assert (made.version, made.variant) == (7, uuid.RFC_4122)
    assert made.int >> 80 == int(PLACED.timestamp() * 1000) + 5


def test_ids_of_one_parent_sort_by_their_sequence() -> None:
    made = [replayable_id(PLACED, n, "refund", ORDER, 100 * (9 - n)) for n in range(10)]
    assert sorted(made) == made
