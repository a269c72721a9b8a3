"""One demo member's points as ``loyalty.ledger``, ``expiry`` and ``tiers`` keep them: entries,
lots spent nearest-expiry first, reversals that leave debt, and the nightly expiry and tier
review, so that ``zhongtai loyalty verify`` proves the seeded books clean."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from zhongtai.demo.catalog import Row
from zhongtai.demo.member_tiers import TierReview
from zhongtai.demo.seeded import uuid7_at
from zhongtai.demo.sites import TIMEZONE
from zhongtai.loyalty import rules
from zhongtai.loyalty.models import EntryKind, SourceType

#: The points entries' actor: the demo's loyalty books (as the coupon history's).
ACTOR = "demo:loyalty"
ZONE = ZoneInfo(TIMEZONE)
#: The scheduled jobs (points expiry, tier review) run nightly at this local hour.
NIGHTLY = time(2, 0)


def nightly_run(moment: datetime) -> datetime:
    """The first nightly job run at or after ``moment``."""
    local = moment.astimezone(ZONE)
    run = datetime.combine(local.date(), NIGHTLY, tzinfo=ZONE)
    if run < local:
        run += timedelta(days=1)
    return run.astimezone(UTC)


@dataclass
class PointsBooks:
    """Every row of the points ledger and the tiers, ready for bulk insert."""

    accounts: list[Row] = field(default_factory=list)
    entries: list[Row] = field(default_factory=list)
    lots: list[Row] = field(default_factory=list)
    lot_uses: list[Row] = field(default_factory=list)
    tiers: list[Row] = field(default_factory=list)


class PointsLedger:
    """One member's points and tier, kept as ``loyalty.ledger``, ``expiry`` and ``tiers`` keep
    them: lots spent nearest-expiry first, reversals taking held points first and leaving the
    rest as debt that new points pay off, tiers up at once and down only at review."""

    def __init__(self, books: PointsBooks, member_id: uuid.UUID, rng: random.Random) -> None:
        self.books, self.member_id, self.rng = books, member_id, rng
        self.balance = self.debt = 0
        self.lots: list[Row] = []
        self.sequence = 0
        self.tiers = TierReview(member_id, books.tiers)
        self.earned: dict[str, Row] = {}
        #: The amount returned so far of each earn entry's sale.
        self.returned: dict[uuid.UUID, int] = {}
        #: The nightly run that first sees each moment (lots' expiry, the tier's review).
        self.runs: dict[datetime, datetime] = {}
        self.last: datetime | None = None

    # --- the building blocks (accounts.py) -------------------------------------------------------

    def _book(
        self,
        kind: EntryKind,
        source: tuple[SourceType, str],
        at: datetime,
        points: int,
        debt_change: int = 0,
        *,
        amount_fen: int | None = None,
        related_entry_id: uuid.UUID | None = None,
        store_id: uuid.UUID | None = None,
        reason: str | None = None,
    ) -> Row:
        self.balance += points
        self.debt += debt_change
        entry: Row = {
            "id": uuid7_at(self.rng, at, self.sequence % 4096),
            "member_id": self.member_id,
            "kind": kind,
            "source_type": source[0],
            "source_id": source[1],
            "points": points,
            "debt_change": debt_change,
            "balance_after": self.balance,
            "debt_after": self.debt,
            "amount_fen": amount_fen,
            "related_entry_id": related_entry_id,
            "store_id": store_id,
            "reason": reason,
            "occurred_at": at,
            "actor": ACTOR,
        }
        self.sequence += 1
        self.last = at
        self.books.entries.append(entry)
        return entry

    def _spendable(self, at: datetime) -> list[rules.LotBalance]:
        return [
            rules.LotBalance(lot["id"], lot["remaining"], lot["expires_at"], lot["earned_at"])
            for lot in self.lots
            if lot["remaining"] > 0 and lot["expires_at"] > at
        ]

    def _take(self, entry: Row, plan: Sequence[tuple[uuid.UUID, int]]) -> None:
        lots = {lot["id"]: lot for lot in self.lots}
        for lot_id, points in plan:
            lots[lot_id]["remaining"] -= points
            self.books.lot_uses.append(
                {
                    "id": uuid7_at(self.rng, entry["occurred_at"]),
                    "entry_id": entry["id"],
                    "lot_id": lot_id,
                    "points": points,
                }
            )

    # --- what the services do (ledger.py, expiry.py, tiers.py) -----------------------------------

    def credit(
        self,
        source: tuple[SourceType, str],
        points: int,
        at: datetime,
        valid: timedelta,
        *,
        store_id: uuid.UUID,
        basis_fen: int | None = None,
    ) -> Row:
        """``earn_points``: a lot for the points, which pay off her debt first; then her tier
        is reviewed."""
        entry = self._book(
            EntryKind.EARN, source, at, points, amount_fen=basis_fen, store_id=store_id
        )
        if points > 0:
            lot: Row = {
                "id": uuid7_at(self.rng, at),
                "member_id": self.member_id,
                "entry_id": entry["id"],
                "source_type": source[0],
                "source_id": source[1],
                "amount": points,
                "remaining": points,
                "earned_at": at,
                "expires_at": at + valid,
            }
            self.lots.append(lot)
            self.books.lots.append(lot)
            paid = min(self.debt, points)
            if paid > 0:
                settle = self._book(EntryKind.SETTLE, source, at, -paid, -paid, store_id=store_id)
                self._take(settle, [(lot["id"], paid)])
        if basis_fen is not None:
            self.tiers.spent(at, basis_fen)
        self.tiers.review(at)
        return entry

    def expire_due(self, now: datetime) -> None:
        """``expire_due_lots``: each lot past its date loses what it has left."""
        for lot in sorted(self.lots, key=lambda x: (x["expires_at"], x["id"])):
            if lot["remaining"] > 0 and lot["expires_at"] <= now:
                source = (SourceType.LOT, str(lot["id"]))
                entry = self._book(EntryKind.EXPIRE, source, now, -lot["remaining"])
                self._take(entry, [(lot["id"], lot["remaining"])])

    def spendable_points(self, at: datetime) -> int:
        return sum(lot.remaining for lot in self._spendable(at))

    def redeem(
        self,
        source: tuple[SourceType, str],
        points: int,
        at: datetime,
        store_id: uuid.UUID,
        reason: str,
    ) -> None:
        """``redeem_points``: due lots expire first, then the nearest expiry pays."""
        self.expire_due(at)
        entry = self._book(EntryKind.REDEEM, source, at, -points, store_id=store_id, reason=reason)
        self._take(entry, rules.plan_spending(self._spendable(at), points))

    def reverse(
        self, source: tuple[SourceType, str], earn: Row, returned_fen: int, at: datetime
    ) -> None:
        """``reverse_points`` with ``clip``: in proportion to the refund, from the sale's own
        lot first, then nearest expiry; what was spent already becomes debt."""
        basis = earn["amount_fen"] or 0
        before = self.returned.get(earn["id"], 0)
        returned = max(0, min(returned_fen, basis - before))
        self.returned[earn["id"]] = before + returned
        due = rules.reversal_points(earn["points"], basis, before, returned)
        self.expire_due(at)
        lots = self._spendable(at)
        own = next((lot["id"] for lot in self.lots if lot["entry_id"] == earn["id"]), None)
        plan = rules.plan_spending([x for x in lots if x.lot_id == own], due)
        rest = [x for x in lots if x.lot_id != own]
        plan += rules.plan_spending(rest, due - sum(p for _, p in plan))
        taken = sum(p for _, p in plan)
        entry = self._book(
            EntryKind.REVERSE,
            source,
            at,
            -taken,
            due - taken,
            amount_fen=returned,
            related_entry_id=earn["id"],
        )
        self._take(entry, plan)
        self.tiers.spent(at, -returned)

    def _run_after(self, moment: datetime) -> datetime:
        if moment not in self.runs:
            self.runs[moment] = nightly_run(moment)
        return self.runs[moment]

    def run_jobs(self, until: datetime) -> None:
        """The nightly expiry and tier review, each run before ``until`` that had work."""
        while True:
            due = [self._run_after(x["expires_at"]) for x in self.lots if x["remaining"] > 0]
            expiry = min(due, default=None)
            review_at = self.tiers.review_at
            review = self._run_after(review_at) if review_at is not None else None
            runs = [r for r in (expiry, review) if r is not None and r < until]
            if not runs:
                return
            run = min(runs)
            if run == expiry:
                self.expire_due(run)
            if run == review:
                self.tiers.review(run)

    @property
    def multiplier(self) -> int:
        return self.tiers.multiplier
