"""Multi-buy promotions counted in units: buy N get M free (买二送一) and any N for one price
(任选3件99元), worked out on runs of units of one price rather than one item per unit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

#: Units of one price: (unit price in fen, how many).
UnitRun = tuple[int, int]


def unit_runs(units: Iterable[UnitRun]) -> list[UnitRun]:
    """The units as runs, dearest first (equal prices keep their order). Runs, not one item per
    unit: a line may be millions of units (grams of weighed goods)."""
    return sorted(units, key=lambda run: -run[0])


def _dearest(runs: Iterable[UnitRun], n: int) -> int:
    """What the first ``n`` units of ``runs`` cost together."""
    total = 0
    for price, count in runs:
        if n <= 0:
            break
        taken = min(count, n)
        total, n = total + taken * price, n - taken
    return total


def free_units_saving(runs: Sequence[UnitRun], buy: int, get: int) -> int | None:
    """Buy ``buy`` get ``get`` free over ``runs`` (dearest first): of every ``buy + get`` units
    the cheapest go free, and this is what they are worth; None when the units do not make up
    one group."""
    group = buy + get
    count = sum(n for _, n in runs)
    if group <= 0 or count < group:
        return None
    return _dearest(reversed(runs), count // group * get)


def bundle_saving(runs: Sequence[UnitRun], size: int, bundle_price_fen: int) -> int | None:
    """Any ``size`` units of ``runs`` (dearest first) for ``bundle_price_fen``: the dearest units
    make the bundles (the customer's best deal), and this is what they save, never less than
    nothing; None when the units do not make up one bundle."""
    count = sum(n for _, n in runs)
    if size <= 0 or count < size:
        return None
    bundles = count // size
    return max(0, _dearest(runs, bundles * size) - bundles * bundle_price_fen)
