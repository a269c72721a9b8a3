"""The guide a sale names, checked before she is credited with it: orders asks the chain's
roster through a seam the guides context fills (guides reads orders for attribution and
commission, so orders does not import it: the dependency stays one-way)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, TypeVar

from sqlalchemy.orm import Session

from zhongtai.core.errors import InvalidInput


class RosterEntry(Protocol):
    """What a sale reads of the guide it names: her store, and whether she is still a guide."""

    @property
    def home_store_id(self) -> uuid.UUID: ...

    @property
    def active(self) -> bool: ...


#: (session, guide ids) -> the entry of each id that is a guide (others are missing), read in
#: one statement whatever their number, none for no ids.
GuideRoster = Callable[[Session, Iterable[uuid.UUID]], Mapping[uuid.UUID, RosterEntry]]
_Roster = TypeVar("_Roster", bound=GuideRoster)
_GUIDE_ROSTER: dict[str, GuideRoster] = {}


def guide_roster(roster: _Roster) -> _Roster:
    """Register the chain's roster of guides (the guides context's ``roster.standings``).

    The guides context reads orders (attribution, commission), so orders asks it through this
    seam instead of importing it: the dependency stays one-way. Importing ``zhongtai.guides``
    registers it, as the app and the CLI do.
    """
    _GUIDE_ROSTER["guides"] = roster
    return roster


def guide_roster_entries(
    session: Session, guide_ids: Iterable[uuid.UUID]
) -> Mapping[uuid.UUID, RosterEntry]:
    """The roster's entries of these ids (one statement; none for no ids)."""
    roster = _GUIDE_ROSTER.get("guides")
    if roster is None:  # a sale naming a guide must not be credited unchecked
        raise RuntimeError("no guide roster is registered: import zhongtai.guides first")
    return roster(session, guide_ids)


def check_selling_guide(
    guide_id: uuid.UUID, entry: RosterEntry | None, *, store_id: uuid.UUID | None = None
) -> None:
    """422 on ``guide_id`` unless the guide a sale names may be credited with it: a guide of the
    chain who has not left and, with ``store_id`` (a till sale), a guide of that store. Online,
    a guide sells for her customers whichever store fulfils the order."""
    if entry is None:
        raise InvalidInput.field("guide_id", f"{guide_id} is not a guide of the chain")
    if not entry.active:
        raise InvalidInput.field(
            "guide_id", f"guide {guide_id} has left and is credited with no more sales"
        )
    if store_id is not None and entry.home_store_id != store_id:
        raise InvalidInput.field(
            "guide_id",
            f"guide {guide_id} is a guide of another store; a till credits its own store's",
        )
