"""Crediting sales to guides: when an order completes, each line is attributed by the rule
(selling guide, share link, bound guide) and the guide's commission is booked pending until
the return window closes; returns take it back in proportion (``guides.reversals``)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhongtai.catalog.categories import sku_category_lineages
from zhongtai.core.money import yuan
from zhongtai.core.outbox import record_event
from zhongtai.guides.attribution_rules import (
    BoundGuide,
    LineCredit,
    Sale,
    SaleLine,
    ShareTouch,
    attribute_sale,
)
from zhongtai.guides.binding import binding_at
from zhongtai.guides.commission_rules import (
    CommissionLine,
    CommissionRule,
    choose_rule,
    commission_for_line,
)
from zhongtai.guides.events import GuideSaleAttributed
from zhongtai.guides.ledger import book_entry, booking_month, describe_rule
from zhongtai.guides.models import (
    CommissionKind,
    CommissionRuleRecord,
    CommissionStatus,
    Guide,
    LineAttribution,
    ShareVisit,
)
from zhongtai.guides.program import program_terms
from zhongtai.guides.roster import standings
from zhongtai.orders.kinds import SalesChannel
from zhongtai.orders.models import Order, OrderLine


def _touches(
    session: Session, member_id: uuid.UUID, until: datetime, window: timedelta
) -> list[ShareTouch]:
    rows = session.execute(
        select(
            ShareVisit.link_id, ShareVisit.guide_id, ShareVisit.opened_at, ShareVisit.sku_id
        ).where(
            ShareVisit.member_id == member_id,
            ShareVisit.opened_at >= until - window,
            ShareVisit.opened_at <= until,
        )
    )
    return [ShareTouch(link, guide, at, sku) for link, guide, at, sku in rows]


def active_rules(session: Session) -> list[CommissionRule]:
    return [
        CommissionRule(
            rule_id=r.id,
            basis=r.basis,
            rate_bp=r.rate_bp,
            amount_per_item=r.amount_per_item,
            category_id=r.category_id,
            store_id=r.store_id,
            guide_level=r.guide_level,
            priority=r.priority,
        )
        for r in session.scalars(select(CommissionRuleRecord).where(CommissionRuleRecord.active))
    ]


def _line_net(line: OrderLine) -> int:
    return max(0, line.net_amount - line.short_refund)


def _items(line: OrderLine) -> int:
    """Items for per-item commission: those handed over — the units picked and the substitutes
    sent for missing ones, not units short-picked and refunded at the pack. Weighed goods
    (priced per kilo) count as one item."""
    if line.price_per > 1:
        return 1
    if line.picked_quantity is None:
        return line.quantity
    return line.picked_quantity + (line.substitute_quantity or 0)


def explain_order(session: Session, order: Order) -> list[LineCredit]:
    """What the rule says for each line of the order now (nothing is written)."""
    terms = program_terms(session)
    # Her guide when she ordered: a binding made after (a link opened while the parcel was on
    # its way) did not bring the sale, however long the order takes to complete.
    binding = binding_at(session, order.member_id, order.placed_at) if order.member_id else None
    sale = Sale(
        order_id=order.id,
        online=order.channel is not SalesChannel.POS,
        store_id=order.store_id,
        placed_at=order.placed_at,
        lines=tuple(SaleLine(line.id, line.sku_id) for line in order.lines),
        selling_guide_id=order.guide_id,
        bound_guide=BoundGuide(binding.guide_id, binding.id) if binding else None,
    )
    touches = (
        _touches(session, order.member_id, order.placed_at, terms.attribution.share_window)
        if order.member_id and sale.online
        else []
    )
    guide_ids = {t.guide_id for t in touches}
    if order.guide_id:
        guide_ids.add(order.guide_id)
    if binding:
        guide_ids.add(binding.guide_id)
    return attribute_sale(sale, touches, standings(session, guide_ids), terms.attribution)


def attribute_completed_order(
    session: Session, order: Order, *, at: datetime
) -> list[LineAttribution]:
    """Attribute the completed order's lines and book their commission (once: a line already
    attributed is left as it is, so a replayed event adds nothing)."""
    done = set(
        session.scalars(
            select(LineAttribution.order_line_id).where(LineAttribution.order_id == order.id)
        )
    )
    credits = [c for c in explain_order(session, order) if c.guide_id and c.line_id not in done]
    if not credits:
        return []
    terms = program_terms(session)
    lines = {line.id: line for line in order.lines}
    guides = {
        g.staff_id: g
        for g in session.scalars(
            select(Guide).where(Guide.staff_id.in_({c.guide_id for c in credits}))
        )
    }
    sku_ids = {sku for c in credits if (sku := lines[c.line_id].sku_id) is not None}
    lineages = sku_category_lineages(session, sku_ids)
    rules = active_rules(session)
    rule_names = {
        r.id: r.name
        for r in session.scalars(
            select(CommissionRuleRecord).where(
                CommissionRuleRecord.id.in_([r.rule_id for r in rules])
            )
        )
    }
    month = booking_month(session, at, order.store_id)
    payable_at = at + terms.return_window
    made: list[LineAttribution] = []
    per_guide: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0])
    for credit in credits:
        assert credit.guide_id is not None and credit.reason is not None
        line, guide = lines[credit.line_id], guides[credit.guide_id]
        net = _line_net(line)
        attribution = LineAttribution(
            order_line_id=line.id,
            order_id=order.id,
            guide_id=guide.staff_id,
            credited_store_id=guide.home_store_id,
            member_id=order.member_id,
            reason=credit.reason,
            reason_ref=credit.ref,
            explanation=credit.explanation[:300],
            sku_id=line.sku_id,
            net_amount=net,
            attributed_at=at,
        )
        session.add(attribution)
        session.flush()
        made.append(attribution)
        facts = CommissionLine(
            line_id=line.id,
            category_lineage=tuple(lineages.get(line.sku_id, ())) if line.sku_id else (),
            store_id=guide.home_store_id,
            guide_level=guide.level,
            net_amount=net,
            items=_items(line),
        )
        rule = choose_rule(rules, facts)
        amount = commission_for_line(rule, facts) if rule else 0
        per_guide[guide.staff_id][0] += net
        per_guide[guide.staff_id][1] += amount
        if amount <= 0 or rule is None:
            continue
        book_entry(
            session,
            guide=guide,
            kind=CommissionKind.EARNED,
            amount=amount,
            month=month,
            status=CommissionStatus.PENDING,
            payable_at=payable_at,
            source_ref=f"line:{line.id}",
            attribution_id=attribution.id,
            order_id=order.id,
            rule_id=rule.rule_id,
            reason=(
                f"Order {order.number}: {describe_rule(rule, rule_names.get(rule.rule_id))} "
                f"of {yuan(net)} ({credit.reason.value.replace('_', ' ')})"
            ),
            details={"reason": credit.reason.value, "ref": credit.ref, "net_amount": net},
        )
    reasons = {c.guide_id: c.reason for c in credits}
    for guide_id, (net, commission) in per_guide.items():
        reason = reasons[guide_id]
        assert reason is not None
        record_event(
            session,
            GuideSaleAttributed(
                order_id=order.id,
                guide_id=guide_id,
                store_id=guides[guide_id].home_store_id,
                reason=reason.value,
                net_amount=net,
                commission=commission,
            ),
            aggregate_type="guide",
            aggregate_id=guide_id,
            store_id=guides[guide_id].home_store_id,
            occurred_at=at,
        )
    return made
