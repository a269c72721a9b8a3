"""Re-spelling identities stored before every spelling was normalised (full-width digits).

Earlier versions stored an identity as typed when it held full-width characters, so
``138１２３４１２３４`` and ``13812341234`` could be two members. Lookups now normalise input
(NFKC), which leaves such rows unreachable. Phones are kept only as a keyed hash and
ciphertext, so no migration can fix them: this pass runs with the PII key, opens each
identity, and moves it to its one spelling.

Per identity whose stored spelling is not its normal one:

- ``respelled``: no identity holds the normal spelling yet; the row takes it.
- ``duplicate_removed``: the same member already holds the normal spelling; the stray row goes.
- ``collision``: another member holds the normal spelling. They are one person known twice;
  the pass changes nothing and names both, so staff merge them (``POST /members/merge``)
  and run it again.
- ``unreadable``: the stored value is no identity of its kind at all; left alone.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.core.audit import record_audit
from zhongtai.members import rules
from zhongtai.members.identity import IdentityKey, identity_key, identity_value
from zhongtai.members.models import IdentityKind, MemberIdentity
from zhongtai.members.pii import PiiCipher

#: Identities read per round trip while the pass streams the table.
_BATCH = 1_000


class Outcome(enum.StrEnum):
    RESPELLED = "respelled"
    DUPLICATE_REMOVED = "duplicate_removed"
    COLLISION = "collision"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Respelling:
    """One identity stored under a spelling lookups no longer reach, and what became of it."""

    identity_id: uuid.UUID
    member_id: uuid.UUID
    kind: IdentityKind
    #: The normal spelling, phones masked (``138****1234``); None when unreadable.
    shown: str | None
    outcome: Outcome
    #: For a collision, the member who holds the normal spelling.
    other_member_id: uuid.UUID | None = None


@dataclass(frozen=True)
class _Stray:
    row: MemberIdentity
    normal: str | None


def _strays(session: Session, cipher: PiiCipher) -> Iterator[_Stray]:
    rows = session.scalars(
        select(MemberIdentity).order_by(MemberIdentity.id).execution_options(yield_per=_BATCH)
    )
    for row in rows:
        value = identity_value(cipher, row)
        try:
            normal = rules.normalize_identity(row.kind, value)
        except rules.IdentityValueInvalid:
            yield _Stray(row, None)
            continue
        if normal != value:
            yield _Stray(row, normal)


def _shown(kind: IdentityKind, normal: str) -> str:
    return rules.shown_identity(kind, normal, may_see_pii=False)


def respell_identities(session: Session, cipher: PiiCipher, *, apply: bool) -> list[Respelling]:
    """Every identity stored under a spelling that is not its normal one, and its outcome.

    With ``apply`` the respellings and removals are made in the session's transaction
    (audited as ``member.identity_respelled``); without it nothing changes and the outcomes
    say what applying would do. Collisions and unreadable values are never changed.
    """
    strays = list(_strays(session, cipher))
    found: list[Respelling] = []
    claimed: dict[tuple[IdentityKind, str], uuid.UUID] = {}
    for stray in strays:
        row = stray.row
        if stray.normal is None:
            found.append(Respelling(row.id, row.member_id, row.kind, None, Outcome.UNREADABLE))
            continue
        key = identity_key(cipher, row.kind, stray.normal)
        holder = claimed.get((key.kind, key.lookup_key)) or session.scalar(
            select(MemberIdentity.member_id).where(
                MemberIdentity.kind == key.kind, MemberIdentity.lookup_key == key.lookup_key
            )
        )
        shown = _shown(row.kind, stray.normal)
        if holder is not None and holder != row.member_id:
            found.append(
                Respelling(row.id, row.member_id, row.kind, shown, Outcome.COLLISION, holder)
            )
            continue
        outcome = Outcome.DUPLICATE_REMOVED if holder is not None else Outcome.RESPELLED
        claimed[(key.kind, key.lookup_key)] = row.member_id
        found.append(Respelling(row.id, row.member_id, row.kind, shown, outcome))
        if apply:
            _apply(session, row, key, outcome)
    return found


def _apply(session: Session, row: MemberIdentity, key: IdentityKey, outcome: Outcome) -> None:
    record_audit(
        session,
        "member.identity_respelled",
        "member",
        row.member_id,
        {"identity_id": row.id, "kind": row.kind.value},
        {"outcome": outcome.value},
    )
    if outcome is Outcome.DUPLICATE_REMOVED:
        session.delete(row)
    else:
        row.lookup_key, row.ciphertext = key.lookup_key, key.ciphertext
    session.flush()
