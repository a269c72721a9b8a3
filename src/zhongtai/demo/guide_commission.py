"""What the demo history's sales earned the shopping guides, as the attribution and commission
services would have written it: each completed order's lines credited to a guide (her link, her
name at the till, the member's bound guide), the commission HQ's rules give for them, and what
returns took back."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime

from zhongtai.core.money import yuan
from zhongtai.demo.catalog import Row, sku_lineages
from zhongtai.demo.generator import DemoChain
from zhongtai.demo.guide_roster import ACTOR, TERMS, DemoGuide, GuideWorld
from zhongtai.demo.history_loader import DemoHistory
from zhongtai.demo.seeded import uuid7_at
from zhongtai.guides.attribution_rules import (
    BoundGuide,
    GuideStanding,
    LineCredit,
    Sale,
    SaleLine,
    ShareTouch,
    attribute_sale,
)
from zhongtai.guides.commission_rules import (
    CommissionLine,
    CommissionRule,
    choose_rule,
    commission_for_line,
    reversal_for_return,
)
from zhongtai.guides.ledger import describe_rule, first_of_month
from zhongtai.guides.models import CommissionKind, CommissionStatus
from zhongtai.orders.codes import business_date
from zhongtai.orders.kinds import SalesChannel


def _line_net(line: Row) -> int:
    # What the customer paid for the line, as the attribution service counts it.
    return max(0, int(line["net_amount"]) - int(line["short_refund"]))


def _items(line: Row) -> int:
    # As the attribution service counts them: the items handed over (picked and substituted),
    # weighed goods (priced per 500 g) as one item.
    if line["price_per"] > 1:
        return 1
    if line["picked_quantity"] is None:
        return int(line["quantity"])
    return int(line["picked_quantity"]) + int(line["substitute_quantity"] or 0)


class GuideBooks:
    """What the whole chain shares while each store's guides are written: rules, guides, the
    history's lines and returns, and the moment the ledger is looked at."""

    def __init__(
        self, chain: DemoChain, guides: Sequence[DemoGuide], history: DemoHistory, rules: list[Row]
    ) -> None:
        self.guides = {g.staff_id: g for g in guides}
        self.standings = {g.staff_id: GuideStanding(g.staff_id, g.store_id, True) for g in guides}
        self.rules = [
            CommissionRule(
                rule_id=r["id"],
                basis=r["basis"],
                rate_bp=r["rate_bp"],
                amount_per_item=r["amount_per_item"],
                category_id=r["category_id"],
                store_id=r["store_id"],
                guide_level=r["guide_level"],
                priority=r["priority"],
            )
            for r in rules
        ]
        self.rule_names = {r["id"]: r["name"] for r in rules}
        self.zones = {loc["id"]: loc["timezone"] for loc in chain.locations}
        self.lineages = sku_lineages(chain.catalog)
        self.now = history.end
        self.lines: dict[uuid.UUID, list[Row]] = defaultdict(list)
        for line in history.orders.lines:
            self.lines[line["order_id"]].append(line)
        returns = {r["id"]: r for r in history.orders.returns}
        self.returned: dict[uuid.UUID, list[tuple[Row, int]]] = defaultdict(list)
        for line in history.orders.return_lines:
            came_back = (returns[line["return_id"]], line["refund"])
            self.returned[line["order_line_id"]].append(came_back)

    def month(self, at: datetime, store_id: uuid.UUID) -> date:
        return first_of_month(business_date(at, self.zones[store_id]))

    def status(self, payable_at: datetime) -> CommissionStatus:
        # The ledger matured everything whose return window closed before the history's end.
        return CommissionStatus.PAYABLE if payable_at <= self.now else CommissionStatus.PENDING


class StoreCommission:
    """One store's attributed sales and commission, drawn from the store's guides' stream
    (``rng``) after its customers' stories: their bindings (``timelines``) and the links they
    opened (``opened``) say who is credited."""

    def __init__(
        self,
        world: GuideWorld,
        books: GuideBooks,
        rng: random.Random,
        timelines: Mapping[uuid.UUID, list[Row]],
        opened: Mapping[uuid.UUID, list[ShareTouch]],
    ) -> None:
        self.world, self.books, self.rng = world, books, rng
        self.timelines = timelines
        self.opened = opened

    def _binding_at(self, member_id: uuid.UUID | None, at: datetime) -> Row | None:
        """Her binding at ``at`` (the service credits her guide when she ordered)."""
        for row in reversed(self.timelines.get(member_id, []) if member_id else []):
            if row["bound_at"] <= at and (row["ended_at"] is None or at < row["ended_at"]):
                return row
        return None

    def attribute(self, order: Row) -> None:
        """What the attribution service wrote when the order completed, and its returns."""
        member_id = order["member_id"]
        online = order["channel"] is not SalesChannel.POS
        binding = self._binding_at(member_id, order["placed_at"])
        lines = {line["id"]: line for line in self.books.lines[order["id"]]}
        sale = Sale(
            order_id=order["id"],
            online=online,
            store_id=order["store_id"],
            placed_at=order["placed_at"],
            lines=tuple(SaleLine(line["id"], line["sku_id"]) for line in lines.values()),
            selling_guide_id=order["guide_id"],
            bound_guide=BoundGuide(binding["guide_id"], binding["id"]) if binding else None,
        )
        touches = self.opened.get(member_id, []) if member_id and online else []
        for credit in attribute_sale(sale, touches, self.books.standings, TERMS.attribution):
            if credit.guide_id is not None:
                self._credit(order, lines[credit.line_id], credit)

    def _credit(self, order: Row, line: Row, credit: LineCredit) -> None:
        assert credit.guide_id is not None and credit.reason is not None
        books, at = self.books, order["completed_at"]
        guide = books.guides[credit.guide_id]
        net = _line_net(line)
        attribution: Row = {
            "id": uuid7_at(self.rng, at),
            "order_line_id": line["id"],
            "order_id": order["id"],
            "guide_id": guide.staff_id,
            "credited_store_id": guide.store_id,
            "member_id": order["member_id"],
            "reason": credit.reason,
            "reason_ref": credit.ref,
            "explanation": credit.explanation[:300],
            "sku_id": line["sku_id"],
            "net_amount": net,
            "refunded_amount": 0,
            "attributed_at": at,
        }
        self.world.attributions.append(attribution)
        facts = CommissionLine(
            line_id=line["id"],
            category_lineage=books.lineages.get(line["sku_id"], ()),
            store_id=guide.store_id,
            guide_level=guide.level,
            net_amount=net,
            items=_items(line),
        )
        rule = choose_rule(books.rules, facts)
        amount = commission_for_line(rule, facts) if rule else 0
        earned: Row | None = None
        if rule is not None and amount > 0:
            payable_at = at + TERMS.return_window
            described = describe_rule(rule, books.rule_names.get(rule.rule_id))
            reason = credit.reason.value.replace("_", " ")
            earned = self._entry(
                guide,
                kind=CommissionKind.EARNED,
                amount=amount,
                month=books.month(at, order["store_id"]),
                payable_at=payable_at,
                source_ref=f"line:{line['id']}",
                attribution=attribution,
                rule_id=rule.rule_id,
                reason=f"Order {order['number']}: {described} of {yuan(net)} ({reason})",
                details={"reason": credit.reason.value, "ref": credit.ref, "net_amount": net},
                at=at,
            )
        for order_return, refund in sorted(
            books.returned.get(line["id"], []), key=lambda r: r[0]["occurred_at"]
        ):
            self._reverse(guide, attribution, earned, order_return, refund)

    def _reverse(
        self,
        guide: DemoGuide,
        attribution: Row,
        earned: Row | None,
        order_return: Row,
        refund: int,
    ) -> None:
        """What the reversal service wrote for a return of the line (see reverse_for_return)."""
        refund = min(refund, attribution["net_amount"] - attribution["refunded_amount"])
        if refund <= 0:
            return
        before = attribution["refunded_amount"]
        attribution["refunded_amount"] = before + refund
        if earned is None:
            return
        taken = reversal_for_return(earned["amount"], attribution["net_amount"], before, refund)
        if taken <= 0:
            return
        at = order_return["occurred_at"]
        # Still pending when the goods came back: the reversal nets out before it is paid.
        pending = at < earned["payable_at"]
        self._entry(
            guide,
            kind=CommissionKind.REVERSED,
            amount=-taken,
            month=earned["month"] if pending else self.books.month(at, guide.store_id),
            payable_at=earned["payable_at"] if pending else at,
            source_ref=f"return:{order_return['id']}:{attribution['order_line_id']}",
            attribution=attribution,
            rule_id=earned["rule_id"],
            reason=f"Return {order_return['reference']}: {yuan(refund)} refunded, "
            f"{yuan(taken)} of commission taken back",
            details={
                "refund": refund,
                "refunded_before": before,
                "return_id": str(order_return["id"]),
            },
            at=at,
        )

    def _entry(
        self,
        guide: DemoGuide,
        *,
        kind: CommissionKind,
        amount: int,
        month: date,
        payable_at: datetime,
        source_ref: str,
        attribution: Row,
        rule_id: uuid.UUID,
        reason: str,
        details: dict[str, object],
        at: datetime,
    ) -> Row:
        entry: Row = {
            "id": uuid7_at(self.rng, at),
            "guide_id": guide.staff_id,
            "store_id": guide.store_id,
            "month": month,
            "kind": kind,
            "amount": amount,
            "status": self.books.status(payable_at),
            "payable_at": payable_at,
            "source_ref": source_ref[:128],
            "attribution_id": attribution["id"],
            "order_id": attribution["order_id"],
            "rule_id": rule_id,
            "reason": reason[:300],
            "details": details,
            "created_at": at,
            "actor": ACTOR,
        }
        self.world.commission.append(entry)
        return entry
