"""Use cases of the phased rollout: pilot rules, and whether a feature is on for a store."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Category
from zhongtai.catalog.service import category_lineage
from zhongtai.core.audit import record_audit
from zhongtai.core.clock import utcnow
from zhongtai.core.db import conflict_insert
from zhongtai.core.errors import Conflict, InvalidInput, NotFound
from zhongtai.core.ids import new_id
from zhongtai.core.pagination import PageParams, paginate
from zhongtai.stores.models import (
    Capability,
    Location,
    LocationCapability,
    LocationKind,
    LocationStatus,
    PilotRule,
    PilotScope,
)
from zhongtai.stores.rules import (
    CHAIN_SCOPE_VALUE,
    FEATURE_PATTERN,
    Decision,
    PilotSwitch,
    pilot_decision,
    require_capability,
)

_CAPABILITIES = {c.value: c for c in Capability}


def check_feature(feature: str) -> None:
    if not FEATURE_PATTERN.match(feature):
        raise InvalidInput.field(
            "feature",
            "must be 2-64 characters of a-z, 0-9, '_' or '.', starting with a letter "
            "(e.g. delivery, guide_commission)",
        )


def _uuid_value(scope: PilotScope, value: str | None) -> uuid.UUID:
    try:
        return uuid.UUID(value or "")
    except ValueError:
        raise InvalidInput.field(
            "scope_value", f"must be a {scope.value} id for the {scope.value} scope"
        ) from None


def scope_value_for(session: Session, scope: PilotScope, value: str | None) -> str:
    """The stored form of a rule's scope value, after checking that its target exists."""
    if scope is PilotScope.CHAIN:
        if value not in (None, "", CHAIN_SCOPE_VALUE):
            raise InvalidInput.field("scope_value", "must be '*' or empty for the chain scope")
        return CHAIN_SCOPE_VALUE
    if scope is PilotScope.REGION:
        # A region rule switches the region's stores: one of only warehouses and DCs has none
        # for it to apply to. A closed store counts, so that a rule can await its reopening.
        if (
            not value
            or session.scalar(
                select(Location.id)
                .where(Location.region == value, Location.kind == LocationKind.STORE)
                .limit(1)
            )
            is None
        ):
            raise InvalidInput.field("scope_value", f"no store is in region {value!r}")
        return value
    target = _uuid_value(scope, value)
    if scope is PilotScope.CATEGORY:
        if session.scalar(select(Category.id).where(Category.id == target)) is None:
            raise InvalidInput.field("scope_value", f"no category {target}")
        return str(target)
    found = session.execute(
        select(Location.code, Location.kind).where(Location.id == target)
    ).one_or_none()
    if found is None:
        raise InvalidInput.field("scope_value", f"no store {target}")
    # Warehouses and DCs are never asked about pilot features (nor listed as pilot stores):
    # a rule naming one would be accepted and never apply.
    if found.kind is not LocationKind.STORE:
        raise InvalidInput.field(
            "scope_value", f"{found.code} is a {found.kind.value}, not a store"
        )
    return str(target)


def list_pilot_rules(
    session: Session,
    page: PageParams,
    *,
    feature: str | None = None,
    store_ids: Collection[uuid.UUID] | None = None,
) -> tuple[list[PilotRule], str | None]:
    """One page of pilot rules, by feature, then scope. ``store_ids`` (a store-bound caller's
    stores) leaves out the rules of other stores; chain, region and category rules stay."""
    stmt = select(PilotRule)
    if feature is not None:
        stmt = stmt.where(PilotRule.feature == feature)
    if store_ids is not None:
        stmt = stmt.where(
            or_(
                PilotRule.scope != PilotScope.STORE,
                PilotRule.scope_value.in_([str(store_id) for store_id in store_ids]),
            )
        )
    keys = [PilotRule.feature, PilotRule.scope_value, PilotRule.id]
    return paginate(session, stmt, keys, page)


def _facts(rule: PilotRule) -> dict[str, Any]:
    """What an audit entry keeps of a rule: what it switches, where, and why."""
    return {
        "feature": rule.feature,
        "scope": rule.scope,
        "scope_value": rule.scope_value,
        "enabled": rule.enabled,
        "note": rule.note,
    }


def _audit(
    session: Session,
    action: str,
    rule: PilotRule,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    # A store's rule is filed under the store, beside the store's other audited changes.
    store_id = uuid.UUID(rule.scope_value) if rule.scope is PilotScope.STORE else None
    record_audit(session, action, "pilot_rule", rule.id, before, after, store_id=store_id)


def _insert_unless_there(session: Session, values: dict[str, Any]) -> PilotRule | None:
    """INSERT the rule, or nothing when one of its feature, scope and value exists (once
    committed: PostgreSQL waits for another transaction inserting it)."""
    insert = conflict_insert(session)
    stmt = (
        insert(PilotRule)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=[PilotRule.feature, PilotRule.scope, PilotRule.scope_value]
        )
        .returning(PilotRule)
    )
    rule: PilotRule | None = session.scalars(
        stmt, execution_options={"populate_existing": True}
    ).one_or_none()
    return rule


def upsert_pilot_rule(
    session: Session,
    *,
    feature: str,
    scope: PilotScope,
    scope_value: str | None,
    enabled: bool,
    note: str | None = None,
) -> PilotRule:
    """Create or change the rule of (feature, scope, scope value), auditing the change.

    An existing rule is read locked: clients putting it at once change it one after another,
    and each audit entry's "before" is what that change replaced. A PUT that changes nothing
    writes nothing (no audit entry, the same ``updated_at``).
    """
    check_feature(feature)
    value = scope_value_for(session, scope, scope_value)
    same_rule = select(PilotRule).where(
        PilotRule.feature == feature, PilotRule.scope == scope, PilotRule.scope_value == value
    )
    # Each turn of the loop follows another client's committed change: the insert lost to
    # one creating the rule, or the locked read found it deleted meanwhile.
    for _ in range(3):
        rule = session.scalars(
            same_rule.with_for_update(), execution_options={"populate_existing": True}
        ).one_or_none()
        if rule is not None:
            if (rule.enabled, rule.note) == (enabled, note):
                return rule
            before = _facts(rule)
            rule.enabled, rule.note, rule.updated_at = enabled, note, utcnow()
            session.flush()
            _audit(session, "pilot_rule.changed", rule, before, _facts(rule))
            return rule
        now = utcnow()
        created = _insert_unless_there(
            session,
            {
                "id": new_id(),
                "feature": feature,
                "scope": scope,
                "scope_value": value,
                "enabled": enabled,
                "note": note,
                "created_at": now,
                "updated_at": now,
            },
        )
        if created is not None:
            _audit(session, "pilot_rule.created", created, None, _facts(created))
            return created
    raise Conflict(
        f"The {feature} rule for {scope.value} {value} kept changing under this request; "
        "send it again."
    )


def delete_pilot_rule(session: Session, rule_id: uuid.UUID) -> None:
    """Delete a rule, auditing what it was.

    One DELETE judged by the row it returns: of clients deleting the same rule at once, the
    others wait for the one whose statement removed it, then find nothing and answer 404.
    """
    rule = session.scalars(
        delete(PilotRule)
        .where(PilotRule.id == rule_id)
        .returning(PilotRule)
        .execution_options(synchronize_session="fetch")
    ).one_or_none()
    if rule is None:
        raise NotFound(f"No pilot rule {rule_id}.")
    _audit(session, "pilot_rule.deleted", rule, _facts(rule), None)


def _switches(session: Session, feature: str) -> list[PilotSwitch]:
    rows = session.execute(
        select(PilotRule.scope, PilotRule.scope_value, PilotRule.enabled).where(
            PilotRule.feature == feature
        )
    )
    return [PilotSwitch(feature, scope, value, enabled) for scope, value, enabled in rows]


def is_enabled(
    session: Session, feature: str, store_id: uuid.UUID, category_id: uuid.UUID | None = None
) -> Decision:
    """Whether a feature is on for a store (and a category), and which rule decided.

    A capability (pickup, delivery, ...) also needs the store to physically offer it. A
    warehouse or DC is no store: nothing is on there, as :func:`stores_with` says too.
    """
    lineage = category_lineage(session, category_id) if category_id is not None else []
    capability = _CAPABILITIES.get(feature)
    stmt = select(Location.region, Location.status, Location.kind).where(Location.id == store_id)
    if capability is not None:
        stmt = stmt.add_columns(LocationCapability.location_id).outerjoin(
            LocationCapability,
            and_(
                LocationCapability.location_id == Location.id,
                LocationCapability.capability == capability,
            ),
        )
    found = session.execute(stmt).first()
    if found is None:
        raise NotFound(f"No location {store_id}.", location_id=str(store_id))
    row: tuple[Any, ...] = tuple(found)
    region, status, kind = row[0], row[1], row[2]
    if kind is not LocationKind.STORE:
        return Decision(False, f"location {store_id} is a {kind.value}, not a store")
    if status is not LocationStatus.ACTIVE:
        return Decision(False, f"location {store_id} is closed")
    decision = pilot_decision(
        _switches(session, feature),
        feature=feature,
        store_id=store_id,
        region=region,
        category_lineage=lineage,
    )
    if capability is None:
        return decision
    return require_capability(decision, feature=feature, has_capability=row[3] is not None)


def stores_with(
    session: Session,
    feature: str,
    category_id: uuid.UUID | None = None,
    *,
    within: Collection[uuid.UUID] | None = None,
) -> list[uuid.UUID]:
    """The active stores where a feature is on (for the category, when given), by code.
    Warehouses and DCs are not stores: pilot features are never on there.

    ``within`` limits the answer to some locations (a caller's stores).
    """
    lineage = category_lineage(session, category_id) if category_id is not None else []
    switches = _switches(session, feature)
    capability = _CAPABILITIES.get(feature)
    stmt = select(Location.id, Location.region).where(
        Location.kind == LocationKind.STORE, Location.status == LocationStatus.ACTIVE
    )
    if within is not None:
        stmt = stmt.where(Location.id.in_(within))
    if capability is not None:
        stmt = stmt.where(
            Location.id.in_(
                select(LocationCapability.location_id).where(
                    LocationCapability.capability == capability
                )
            )
        )
    return [
        location_id
        for location_id, region in session.execute(stmt.order_by(Location.code))
        if pilot_decision(
            switches,
            feature=feature,
            store_id=location_id,
            region=region,
            category_lineage=lineage,
        ).enabled
    ]
