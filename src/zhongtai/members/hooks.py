"""Seams through which other contexts take part in a member's merge, erasure, data export and
360 view.

A context that keeps data per member (points, coupons, guide bindings, orders) registers a
merge step — run inside the merge's own transaction, so a merge moves everything or nothing —
an erasure step if it holds personal data of hers (an order's contact and address, her
binding to a guide, a WeCom contact) — run inside the erasure's transaction, under her lock,
so she is forgotten everywhere or nowhere — an export section, and the section of her
overview (the member 360) it answers for.
Registering here keeps the dependency one-way: members imports no other context, the others
import members. A context is registered once its package is imported (each package's
``__init__`` imports its ``membership`` module; ``zhongtai.models`` imports every package).

A route whose answer holds her personal data (her name, her masked phone, an order's contact)
stores its Idempotency-Key replay as hers: ``replay_concerns(request, member_subject(id))``
(``zhongtai.core.http.routing``). Her erasure forgets those replays with the rest.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from zhongtai.core.idempotency import subject_of

#: (session, merged_id, survivor_id) -> a JSON-able summary of what moved (kept in the trace).
MergeStep = Callable[[Session, uuid.UUID, uuid.UUID], Any]
#: (session, member ids: the erased member first, then every member merged into her) -> a
#: JSON-able summary of what was forgotten (counts and row ids, never the data itself), kept
#: in the erasure's audit entry. Runs once per member: erasing her again runs no step.
EraseStep = Callable[[Session, list[uuid.UUID]], Any]
#: (session, member ids: the member and every member merged into her) -> JSON-able data.
ExportSection = Callable[[Session, list[uuid.UUID]], Any]
#: (session, member ids: the survivor first, then every member merged into her, now) ->
#: the section of her overview, validated against the section's model in members/schemas.py.
#: A section reads a bounded number of statements, whatever her history holds (no N+1).
OverviewSection = Callable[[Session, list[uuid.UUID], datetime], Any]

#: The kind of subject of the stored Idempotency-Key responses that concern a member.
MEMBER_SUBJECT = "member"


def member_subject(member_id: uuid.UUID) -> str:
    """Whom a stored Idempotency-Key response concerns, when it holds her data: her erasure
    (under this id, or the id of anyone merged into her) forgets it."""
    return subject_of(MEMBER_SUBJECT, member_id)


MERGE_STEPS: dict[str, MergeStep] = {}
ERASE_STEPS: dict[str, EraseStep] = {}
EXPORT_SECTIONS: dict[str, ExportSection] = {}
OVERVIEW_SECTIONS: dict[str, OverviewSection] = {}


def merge_step(name: str) -> Callable[[MergeStep], MergeStep]:
    def register(step: MergeStep) -> MergeStep:
        MERGE_STEPS[name] = step
        return step

    return register


def erase_step(name: str) -> Callable[[EraseStep], EraseStep]:
    """Register the context's part of a member's erasure under ``name``: it deletes or blanks
    the personal data the context holds of her, and keeps what the books need (amounts,
    dates, stores) under her pseudonymous id; or lets go of what was kept for her alone (the
    stock her open checkout quotes held). Steps run in the order of their names."""

    def register(step: EraseStep) -> EraseStep:
        ERASE_STEPS[name] = step
        return step

    return register


def export_section(name: str) -> Callable[[ExportSection], ExportSection]:
    def register(section: ExportSection) -> ExportSection:
        EXPORT_SECTIONS[name] = section
        return section

    return register


def overview_section(name: str) -> Callable[[OverviewSection], OverviewSection]:
    """Register the context's section of the member overview under ``name``: the name of the
    section's field in ``MemberOverviewOut``."""

    def register(section: OverviewSection) -> OverviewSection:
        OVERVIEW_SECTIONS[name] = section
        return section

    return register
