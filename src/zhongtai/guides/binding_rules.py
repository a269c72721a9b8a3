"""Pure rules of which shopping guide a member is bound to when a guide touches her."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum


class BindingRule(StrEnum):
    #: The first guide keeps the member until she is unbound (guide left, manager, handover).
    FIRST_TOUCH = "first_touch"
    #: A newer touch by another guide takes the member over once the protection period is over.
    LAST_TOUCH = "last_touch"


class BindingSource(StrEnum):
    IN_STORE_SALE = "in_store_sale"  # the clerk entered the guide's id at the till
    SHARE_LINK = "share_link"  # the member opened a guide's tracked link
    WECOM = "wecom"  # the member added the guide as a WeCom contact
    MANAGER = "manager"  # a store manager reassigned the member
    HANDOVER = "handover"  # a leaving guide's members were handed to a colleague


#: Sources that are a decision of the store, not a touch competing for the member.
DIRECTED_SOURCES = frozenset({BindingSource.MANAGER, BindingSource.HANDOVER})


@dataclass(frozen=True)
class CurrentBinding:
    guide_id: uuid.UUID
    bound_at: datetime
    #: Until then, under LAST_TOUCH, another guide's touch does not take the member over.
    protected_until: datetime
    #: False once the guide has left: her members are free for the next guide who touches them.
    guide_active: bool


@dataclass(frozen=True)
class Touch:
    guide_id: uuid.UUID
    source: BindingSource
    at: datetime


class BindingVerdict(StrEnum):
    BIND = "bind"  # the member had no guide: the touching guide gets her
    KEEP = "keep"  # the touching guide is already hers: the binding stays, protection renewed
    REBIND = "rebind"  # another guide takes her over
    REFUSE = "refuse"  # another guide touched her, but the current guide stays


class BindingReason(StrEnum):
    """The stable codes a decision gives as its reason (logged, shown to guides, counted)."""

    UNBOUND = "unbound"
    SAME_GUIDE = "same_guide"
    OLDER_THAN_BINDING = "older_than_binding"
    MANAGER_OVERRIDE = "manager_override"
    HANDOVER = "handover"
    CURRENT_GUIDE_LEFT = "current_guide_left"
    FIRST_TOUCH_KEEPS = "first_touch_keeps"
    PROTECTED_UNTIL = "protected_until"
    PROTECTION_OVER = "protection_over"


@dataclass(frozen=True)
class BindingDecision:
    verdict: BindingVerdict
    #: A ``BindingReason`` value.
    reason: str
    #: The binding's protection end after the decision: set for BIND, REBIND and KEEP, None for
    #: REFUSE (the current binding is left as it is).
    protected_until: datetime | None


def _require_aware(name: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {moment.isoformat()}")


def decide_binding(
    current: CurrentBinding | None, touch: Touch, rule: BindingRule, protection: timedelta
) -> BindingDecision:
    """What a guide's touch does to a member's binding.

    In order: an unbound member is bound to the touching guide. A touch by her own guide keeps
    the binding and renews its protection to ``touch.at + protection`` (never shortening it),
    because a guide who keeps serving her customer should keep her. A touch older than the
    current binding never rebinds: events may arrive out of order, and the binding already
    reflects something newer. A manager's reassignment and a handover always rebind. A guide
    who has left never blocks. Otherwise FIRST_TOUCH keeps the current guide, and LAST_TOUCH
    lets the touching guide take over from the moment the protection ends.
    """
    _require_aware("touch.at", touch.at)
    if protection < timedelta(0):
        raise ValueError(f"protection must not be negative, got {protection}")
    if current is None:
        return BindingDecision(BindingVerdict.BIND, BindingReason.UNBOUND, touch.at + protection)
    _require_aware("current.bound_at", current.bound_at)
    _require_aware("current.protected_until", current.protected_until)

    renewed = touch.at + protection
    if touch.guide_id == current.guide_id:
        return BindingDecision(
            BindingVerdict.KEEP, BindingReason.SAME_GUIDE, max(current.protected_until, renewed)
        )
    if touch.at < current.bound_at:
        return BindingDecision(BindingVerdict.REFUSE, BindingReason.OLDER_THAN_BINDING, None)
    if touch.source is BindingSource.MANAGER:
        return BindingDecision(BindingVerdict.REBIND, BindingReason.MANAGER_OVERRIDE, renewed)
    if touch.source is BindingSource.HANDOVER:
        return BindingDecision(BindingVerdict.REBIND, BindingReason.HANDOVER, renewed)
    if not current.guide_active:
        return BindingDecision(BindingVerdict.REBIND, BindingReason.CURRENT_GUIDE_LEFT, renewed)
    if rule is BindingRule.FIRST_TOUCH:
        return BindingDecision(BindingVerdict.REFUSE, BindingReason.FIRST_TOUCH_KEEPS, None)
    if touch.at < current.protected_until:
        return BindingDecision(BindingVerdict.REFUSE, BindingReason.PROTECTED_UNTIL, None)
    return BindingDecision(BindingVerdict.REBIND, BindingReason.PROTECTION_OVER, renewed)


def binding_after(
    current: CurrentBinding | None, touch: Touch, decision: BindingDecision
) -> CurrentBinding | None:
    """The member's binding once ``decision`` (made by ``decide_binding`` for this touch) is
    applied. The touching guide is taken to be active: touches of guides who left are refused
    before they reach the rules."""
    if decision.verdict is BindingVerdict.REFUSE:
        return current
    if decision.protected_until is None:
        raise ValueError(f"a {decision.verdict} decision carries its protection end")
    if decision.verdict is BindingVerdict.KEEP:
        if current is None or current.guide_id != touch.guide_id:
            raise ValueError("only the member's own guide keeps her")
        return replace(current, protected_until=decision.protected_until)
    if (decision.verdict is BindingVerdict.BIND) != (current is None):
        raise ValueError("an unbound member is bound, a bound one is rebound")
    return CurrentBinding(
        guide_id=touch.guide_id,
        bound_at=touch.at,
        protected_until=decision.protected_until,
        guide_active=True,
    )
