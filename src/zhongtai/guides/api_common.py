"""What the guides' HTTP endpoints share: the month in a path, the caller as a guide, and
turning statements into response bodies."""

from __future__ import annotations

import re
import uuid
from datetime import date

from sqlalchemy.orm import Session

from zhongtai.core.auth.principal import Principal
from zhongtai.core.errors import Forbidden, InvalidInput
from zhongtai.guides.models import Guide
from zhongtai.guides.roster import get_guide
from zhongtai.guides.schemas import (
    EntryOut,
    PerformanceOut,
    StatementOut,
    StatementRowOut,
    TotalsOut,
)
from zhongtai.guides.statements import GuideStatement, StatementRow, Totals
from zhongtai.guides.workbench import Performance

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def parse_month(value: str, field: str = "month") -> date:
    """``2026-11`` → 2026-11-01."""
    match = _MONTH.match(value)
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise InvalidInput.field(field, "a month as YYYY-MM, e.g. 2026-11")
    return date(int(match.group(1)), int(match.group(2)), 1)


def caller_as_guide(session: Session, principal: Principal) -> Guide:
    """The calling staff user's guide record (the guide's own endpoints)."""
    if principal.kind != "staff":
        raise Forbidden("Only a guide signed in as herself has a workbench.")
    guide = session.get(Guide, principal.id)
    if guide is None:
        raise Forbidden(
            "You are not enrolled as a guide; ask your store manager.", staff_id=str(principal.id)
        )
    return guide


def managed_guide(session: Session, principal: Principal, guide_id: uuid.UUID) -> Guide:
    """A guide of one of the caller's stores."""
    guide = get_guide(session, guide_id)
    principal.ensure_store(guide.home_store_id)
    return guide


def totals_out(t: Totals) -> TotalsOut:
    return TotalsOut(
        earned=t.earned,
        reversed=t.reversed,
        adjustments=t.adjustments,
        target_bonus=t.target_bonus,
        pending=t.pending,
        payable=t.payable,
        total=t.total,
    )


def statement_out(s: GuideStatement) -> StatementOut:
    return StatementOut(
        guide_id=s.guide_id,
        guide_name=s.guide_name,
        store_id=s.store_id,
        month=s.month,
        closed=s.closed,
        attributed_sales=s.attributed_sales,
        totals=totals_out(s.totals),
        entries=[EntryOut.model_validate(e) for e in s.entries],
    )


def row_out(r: StatementRow) -> StatementRowOut:
    return StatementRowOut(
        guide_id=r.guide_id,
        guide_name=r.guide_name,
        username=r.username,
        store_id=r.store_id,
        attributed_sales=r.attributed_sales,
        totals=totals_out(r.totals),
    )


def performance_out(p: Performance) -> PerformanceOut:
    return PerformanceOut(**{**p.__dict__, "commission": totals_out(p.commission)})
