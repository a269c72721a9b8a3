"""Pure rule of a gift (满额赠) when goods of its order come back.

A gift coupon gives its gift because the lines it covers cost at least its threshold. When a
return leaves the customer less than that of those lines and she keeps the gift, the gift's
worth (its catalog price on the order, for the gift units she keeps) is withheld from the
refund, never more than the return refunds; a later return takes the rest of what is owed. A
gift that comes back, now or before, is owed nothing, and what was withheld for it is given
back. Everything is counted cumulatively against what was withheld so far, so nothing is
taken twice and a retried return (which answers the first) changes nothing.

What the customer keeps of a line is judged by what she brought back: units the store never
handed over (short picks) still count as kept, unless the substitute sent for them comes
back. Each line counts at what it cost when the coupon judged the basket (after promotions
and the coupons before it), so keeping everything always keeps the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from zhongtai.core.money import yuan


@dataclass(frozen=True)
class Units:
    """What became of a line's units: ``quantity`` ordered (grams for weighed goods),
    ``short`` never handed over, ``returned`` of its own units back; ``substitute_sent``
    units of a substitute in place of the short ones, ``substitute_returned`` of them back."""

    quantity: int
    returned: int = 0
    short: int = 0
    substitute_sent: int = 0
    substitute_returned: int = 0

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError("a line has units")
        if not 0 <= self.short <= self.quantity:
            raise ValueError("short units are some of the line's")
        if not 0 <= self.returned <= self.quantity - self.short:
            raise ValueError("only handed-over units come back")
        if not 0 <= self.substitute_returned <= self.substitute_sent:
            raise ValueError("only substitute units sent come back")

    def _substitute_back(self) -> Fraction:
        """The share of the short units whose substitute came back."""
        if not self.substitute_sent:
            return Fraction(0)
        return Fraction(self.short * self.substitute_returned, self.substitute_sent)

    @property
    def brought_back(self) -> Fraction:
        """The share of the line the customer brought back (own units and substitute)."""
        return (self.returned + self._substitute_back()) / self.quantity

    @property
    def held(self) -> Fraction:
        """The share of the line the customer holds: handed over (or its substitute) and not
        brought back. A unit never handed over nor replaced is not held."""
        replaced = self.short if self.substitute_sent else 0
        kept = self.quantity - self.short - self.returned + replaced - self._substitute_back()
        return kept / self.quantity


@dataclass(frozen=True)
class CountedLine:
    """A line that counted toward the gift's threshold: ``counted`` fen when the coupon judged
    the basket."""

    counted: int
    units: Units


@dataclass(frozen=True)
class GiftState:
    """A gift as it stands after a return: the coupon's ``threshold`` (fen), the lines that
    counted toward it, the gift line's units and ``worth`` (its catalog price on the order,
    all of it taken off by the coupon)."""

    threshold: int
    counted: tuple[CountedLine, ...]
    gift: Units
    worth: int


@dataclass(frozen=True)
class GiftVerdict:
    """What a return does about one gift: ``withheld`` from its refund, or ``given_back`` (one
    of them 0, or both)."""

    threshold: int
    #: What the lines that earned the gift are worth to the threshold now, rounded down.
    kept: int
    below: bool
    #: The gift's worth owed now (the units she keeps), counting what was withheld before.
    owed: int
    withheld: int = 0
    given_back: int = 0

    @property
    def amount(self) -> int:
        """Signed: taken from the refund (positive) or added to it (negative)."""
        return self.withheld - self.given_back


def kept_value(counted: Sequence[CountedLine]) -> Fraction:
    """What the customer keeps of the lines that earned the gift, at what they counted."""
    return sum((x.counted * (1 - x.units.brought_back) for x in counted), Fraction(0))


def gift_owed(state: GiftState) -> int:
    """The gift's worth she owes back: nothing while the kept lines reach the threshold, else
    the worth of the gift units she holds (rounded down; all of them: the whole worth)."""
    if kept_value(state.counted) >= state.threshold:
        return 0
    return int(state.worth * state.gift.held)


def judge_gift(state: GiftState, *, withheld_before: int, refund: int) -> GiftVerdict:
    """One gift after a return: withhold what is owed beyond what was withheld before, at most
    ``refund`` (what the return still refunds), or give back what was withheld beyond what is
    owed now."""
    if withheld_before < 0 or refund < 0:
        raise ValueError("amounts are never negative")
    kept = kept_value(state.counted)
    owed = gift_owed(state)
    verdict = GiftVerdict(state.threshold, int(kept), kept < state.threshold, owed)
    if owed > withheld_before:
        return _with(verdict, withheld=min(owed - withheld_before, refund))
    if owed < withheld_before:
        return _with(verdict, given_back=withheld_before - owed)
    return verdict


def _with(verdict: GiftVerdict, *, withheld: int = 0, given_back: int = 0) -> GiftVerdict:
    return GiftVerdict(
        verdict.threshold, verdict.kept, verdict.below, verdict.owed, withheld, given_back
    )


def explain(verdict: GiftVerdict, *, coupon: str, gift: str) -> str:
    """Why the refund changed, in a sentence naming the coupon and the gift."""
    kept, threshold = yuan(verdict.kept), yuan(verdict.threshold)
    if verdict.withheld:
        taken = (
            f"its worth, {yuan(verdict.withheld)},"
            if verdict.withheld == verdict.owed
            else f"{yuan(verdict.withheld)} of its worth ({yuan(verdict.owed)})"
        )
        return (
            f"{coupon}: the goods kept ({kept}) no longer reach its threshold ({threshold}) "
            f"and the gift {gift} was not returned, so {taken} is taken from this refund"
        )
    return (
        f"{coupon}: the gift {gift} came back, so the {yuan(verdict.given_back)} "
        "withheld for it from an earlier refund is given back"
    )
