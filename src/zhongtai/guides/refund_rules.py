"""Pure rule of what a return refunded of each order line, as commission sees it.

Commission is earned per line (a percent of the line's net paid amount, or an amount per item
capped at it, by the rule for the line's category, store and guide level) and taken back per
line in proportion to what of the line was refunded (``commission_rules.reversal_for_return``).
What a line refunded is the money that actually went back to the customer for it:

- the line's refund in the return (its own units and its substitute's, summed);
- less its share of what the return **withheld** for a gift (满额赠) the customer keeps while
  the goods she keeps no longer reach the coupon's threshold: she paid that for the gift, the
  chain kept it, so the guide keeps the commission on it. The orders context takes it from the
  return's refund as a whole, so it is spread over the return's lines in proportion to their
  refunds (largest remainder, ties to the smaller line id), gift after gift in the order they
  were judged, each line's share never more than what the line still refunds;
- plus its share of what a later return **gives back** for that gift (the gift came back): the
  money withheld goes back to the lines it was withheld from, in proportion to what is still
  withheld for the gift on each (largest remainder), so giving back everything restores every
  line exactly.

So a line's refunds for commission never go down from one return to the next, never exceed
what its units refunded, and once every unit and every gift has come back they are those
refunds: the cumulative reversal never takes back more than was earned, nor less once all of it
came back. The returns are replayed from the first each time, so the same history always gives
the same slice (a redelivered event books the same amounts, and the ledger's unique source
keeps it once).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ReturnedMoney:
    """One return as the orders context recorded it: what each line's units refunded, and each
    gift it settled, in the order judged: ``(gift line id, amount)``, the amount withheld from
    the refund (positive) or given back with it (negative)."""

    refunds: Mapping[uuid.UUID, int]
    gifts: Sequence[tuple[uuid.UUID, int]] = ()

    def __post_init__(self) -> None:
        if any(refund < 0 for refund in self.refunds.values()):
            raise ValueError("a line's refund is never negative")


@dataclass(frozen=True)
class LineRefund:
    """What a return refunded of one line: its units' ``refund``, less the part of it
    ``withheld`` for gifts kept, plus what was ``given_back`` for gifts returned."""

    refund: int = 0
    withheld: int = 0
    given_back: int = 0

    @property
    def net(self) -> int:
        """The money that went back to the customer for the line."""
        return self.refund - self.withheld + self.given_back


def spread(amount: int, weights: Mapping[uuid.UUID, int]) -> dict[uuid.UUID, int]:
    """``amount`` over the keys in proportion to their weights, by largest remainder (ties to
    the smaller key); none where the weight is 0, and each share at most its weight, which
    takes ``0 <= amount <= sum(weights)``."""
    total = sum(weights.values())
    if amount < 0 or any(w < 0 for w in weights.values()) or amount > total:
        raise ValueError(f"cannot spread {amount} over weights summing to {total}")
    if amount == 0:
        return {}
    shares = {key: amount * w // total for key, w in weights.items() if w}
    left = amount - sum(shares.values())
    by_remainder = sorted(shares, key=lambda key: (-(amount * weights[key] % total), key))
    for key in by_remainder[:left]:
        shares[key] += 1
    return {key: share for key, share in shares.items() if share}


@dataclass
class _Replay:
    #: What is still withheld for each gift, per line it was taken from.
    withheld: dict[uuid.UUID, dict[uuid.UUID, int]] = field(default_factory=dict)

    def settle(self, money: ReturnedMoney) -> dict[uuid.UUID, LineRefund]:
        refund = {line: r for line, r in money.refunds.items()}
        withheld: dict[uuid.UUID, int] = {}
        given_back: dict[uuid.UUID, int] = {}
        for gift, amount in money.gifts:
            held = self.withheld.setdefault(gift, {})
            if amount > 0:
                room = {line: r - withheld.get(line, 0) for line, r in refund.items()}
                # The orders context never withholds more than the return refunds.
                shares = spread(min(amount, sum(room.values())), room)
                for line, share in shares.items():
                    withheld[line] = withheld.get(line, 0) + share
                    held[line] = held.get(line, 0) + share
            elif amount < 0:
                # Given back at most what was withheld for the gift before (so it always is,
                # as the orders context counts it).
                shares = spread(min(-amount, sum(held.values())), held)
                for line, share in shares.items():
                    given_back[line] = given_back.get(line, 0) + share
                    held[line] -= share
        return {
            line: LineRefund(refund.get(line, 0), withheld.get(line, 0), given_back.get(line, 0))
            for line in sorted({*refund, *given_back})
        }


def line_refunds(returns: Sequence[ReturnedMoney]) -> list[dict[uuid.UUID, LineRefund]]:
    """What each return of an order refunded of each line, the returns in the order they were
    taken: every line the return refunded or gave a gift's worth back to."""
    replay = _Replay()
    return [replay.settle(money) for money in returns]
