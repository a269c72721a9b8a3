"""The event catalogue page is generated from the declared types; the committed copy is current."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhongtai.integrations.catalogue import render_catalogue
from zhongtai.integrations.handlers import on_event

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_event_catalogue_is_current() -> None:
    committed = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    assert committed == render_catalogue(), "docs/events.md is stale: run `zhongtai events-doc`"


def test_the_catalogue_lists_every_declared_type_with_its_fields() -> None:
    from zhongtai.core.outbox import EVENT_TYPES

    text = render_catalogue()
    public = [name for name in EVENT_TYPES if not name.startswith("test.")]
    assert public, "no event type is declared"
    for name in public:
        assert f"## `{name}` (version {EVENT_TYPES[name].version})" in text
    assert "test.shelf_counted" not in text


def test_a_handler_for_an_undeclared_event_type_is_refused() -> None:
    with pytest.raises(ValueError):
        on_event("nothing.happened")(lambda event, session: None)
