"""Seams through which other contexts take part in a member's merge and data export.

A context that keeps data per member (points, coupons, guide bindings, orders) registers a
merge step — run inside the merge's own transaction, so a merge moves everything or nothing —
and an export section. Registering here keeps the dependency one-way: members imports no
other context, the others import members.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

#: (session, merged_id, survivor_id) -> a JSON-able summary of what moved (kept in the trace).
MergeStep = Callable[[Session, uuid.UUID, uuid.UUID], Any]
#: (session, member ids: the member and every member merged into her) -> JSON-able data.
ExportSection = Callable[[Session, list[uuid.UUID]], Any]

MERGE_STEPS: dict[str, MergeStep] = {}
EXPORT_SECTIONS: dict[str, ExportSection] = {}


def merge_step(name: str) -> Callable[[MergeStep], MergeStep]:
    def register(step: MergeStep) -> MergeStep:
        MERGE_STEPS[name] = step
        return step

    return register


def export_section(name: str) -> Callable[[ExportSection], ExportSection]:
    def register(section: ExportSection) -> ExportSection:
        EXPORT_SECTIONS[name] = section
        return section

    return register
