"""The chain's guide programme: binding rule, protection, attribution switches, return window and
target tiers — defaults until HQ changes them, every change audited."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from zhongtai.core import context
from zhongtai.core.audit import record_audit
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import InvalidInput
from zhongtai.guides.attribution_rules import AttributionPolicy
from zhongtai.guides.binding_rules import BindingRule
from zhongtai.guides.commission_rules import DEFAULT_TARGET_TIERS, TargetTier
from zhongtai.guides.models import GuideProgram

PROGRAM_ROW = 1


@dataclass(frozen=True)
class ProgramTerms:
    binding_rule: BindingRule = BindingRule.LAST_TOUCH
    #: A new binding is protected this long from other guides' touches (last-touch rule).
    protection_days: int = 30
    #: An online order placed this long after opening a share link credits the link's guide.
    share_window_days: int = 7
    #: A share link works this long after it was made.
    share_link_days: int = 30
    bound_guide_earns_online: bool = True
    bound_guide_earns_other_stores: bool = False
    #: Commission stays pending this long after the sale (the no-questions return period).
    return_window_days: int = 7
    target_tiers: tuple[TargetTier, ...] = field(default=DEFAULT_TARGET_TIERS)

    @property
    def protection(self) -> timedelta:
        return timedelta(days=self.protection_days)

    @property
    def return_window(self) -> timedelta:
        return timedelta(days=self.return_window_days)

    @property
    def attribution(self) -> AttributionPolicy:
        return AttributionPolicy(
            share_window=timedelta(days=self.share_window_days),
            bound_guide_earns_online=self.bound_guide_earns_online,
            bound_guide_earns_other_stores=self.bound_guide_earns_other_stores,
        )

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["target_tiers"] = [asdict(t) for t in self.target_tiers]
        return values


def _terms(row: GuideProgram) -> ProgramTerms:
    return ProgramTerms(
        binding_rule=row.binding_rule,
        protection_days=row.protection_days,
        share_window_days=row.share_window_days,
        share_link_days=row.share_link_days,
        bound_guide_earns_online=row.bound_guide_earns_online,
        bound_guide_earns_other_stores=row.bound_guide_earns_other_stores,
        return_window_days=row.return_window_days,
        target_tiers=tuple(TargetTier(**t) for t in row.target_tiers),
    )


def program_terms(session: Session) -> ProgramTerms:
    row = session.get(GuideProgram, PROGRAM_ROW)
    return ProgramTerms() if row is None else _terms(row)


_LIMITS = {
    "protection_days": (0, 365),
    "share_window_days": (0, 90),
    "share_link_days": (1, 365),
    "return_window_days": (0, 90),
}


def change_program(session: Session, **changes: Any) -> ProgramTerms:
    """Apply HQ's changes (only the given fields) and audit before/after."""
    for name, (low, high) in _LIMITS.items():
        value = changes.get(name)
        if value is not None and not low <= value <= high:
            raise InvalidInput.field(name, f"must be between {low} and {high} days")
    if "target_tiers" in changes:
        tiers = tuple(changes["target_tiers"])
        attained = [t.attainment_pct for t in tiers]
        if not tiers or attained != sorted(set(attained)) or attained[0] != 0:
            raise InvalidInput.field(
                "target_tiers",
                "tiers need strictly increasing attainment_pct starting at 0",
            )
        if any(t.multiplier_pct < 0 for t in tiers):
            raise InvalidInput.field("target_tiers", "multiplier_pct must not be negative")
        changes["target_tiers"] = tiers
    before = program_terms(session)
    after = replace(before, **{k: v for k, v in changes.items() if v is not None})
    row = session.get(GuideProgram, PROGRAM_ROW, with_for_update=True)
    if row is None:
        row = GuideProgram(id=PROGRAM_ROW)
        session.add(row)
    values = after.as_dict()
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    row.updated_by = context.actor.get()
    session.flush()
    record_audit(
        session,
        "guide_program.changed",
        "guide_program",
        str(PROGRAM_ROW),
        before.as_dict(),
        values,
    )
    return after
