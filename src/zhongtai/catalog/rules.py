"""Pure catalog rules: barcodes, scale labels, the effective price, product shape, the tree."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from stdnum import ean

from zhongtai.catalog.models import ProductKind, SaleUnit, Symbology
from zhongtai.core.auth.roles import Channel

IN_STORE_PREFIX = "2"
#: The highest price a SKU or an override may carry: ten million yuan, far above any shelf
#: price and inside a 32-bit INTEGER column.
MAX_PRICE_FEN = 1_000_000_000
_DIGITS = re.compile(r"[0-9]+")


class InvalidBarcode(ValueError):
    """A code that is not a well-formed EAN-13 or EAN-8; the message says what is wrong."""


def validate_barcode(code: str) -> Symbology:
    """The symbology of a well-formed barcode, else :class:`InvalidBarcode` saying why.

    EAN-13 and EAN-8 with a correct check digit are accepted. An EAN-13 starting with ``2`` is
    in GS1's in-store range (restricted circulation): it is an ``internal`` code, printed by
    the store's own scales or label printers, and its check digit is verified all the same.
    """
    if not code:
        raise InvalidBarcode("is empty; expected the 8 or 13 digits of an EAN-8 or EAN-13")
    if not _DIGITS.fullmatch(code):
        raise InvalidBarcode(f"must contain digits 0-9 only; got {code!r}")
    if len(code) not in (8, 13):
        raise InvalidBarcode(
            f"must be 13 digits (EAN-13) or 8 digits (EAN-8) long; got {len(code)} digits"
        )
    expected = ean.calc_check_digit(code[:-1])
    if code[-1] != expected:
        kind = "EAN-13" if len(code) == 13 else "EAN-8"
        raise InvalidBarcode(
            f"has a wrong check digit for an {kind}: it ends in {code[-1]} but its other "
            f"digits give {expected}; re-scan or re-type the code"
        )
    if len(code) == 8:
        return Symbology.EAN8
    return Symbology.INTERNAL if code.startswith(IN_STORE_PREFIX) else Symbology.EAN13


@dataclass(frozen=True)
class ScaleLabel:
    """A weight-embedding in-store label decoded into its item template and the weight."""

    template: str
    grams: int


def read_scale_label(code: str) -> ScaleLabel | None:
    """Decode a scale label laid out ``2F PPPPP WWWWW C`` (flag, item, grams, check digit).

    The item is registered as its *template*: the same code with the weight digits zeroed and
    the check digit recomputed. Returns None for codes outside the in-store range, templates
    themselves and malformed codes.
    """
    if len(code) != 13 or not code.startswith(IN_STORE_PREFIX) or not _DIGITS.fullmatch(code):
        return None
    if ean.calc_check_digit(code[:-1]) != code[-1]:
        return None
    grams = int(code[7:12])
    if grams == 0:
        return None
    stem = code[:7] + "00000"
    return ScaleLabel(template=stem + ean.calc_check_digit(stem), grams=grams)


def price_for_quantity(unit_price: int, price_per: int, quantity: int) -> int:
    """Fen for ``quantity`` units at ``unit_price`` per ``price_per`` units, rounded half up."""
    if price_per <= 0 or quantity < 0 or unit_price < 0:
        raise ValueError("price_per must be positive; price and quantity not negative")
    return (2 * unit_price * quantity + price_per) // (2 * price_per)


class PriceScope(StrEnum):
    """What an override is limited to, from most to least specific; ``base`` is no override."""

    STORE_CHANNEL = "store_channel"
    STORE = "store"
    CHANNEL = "channel"
    CHAIN = "chain"
    BASE = "base"


_SPECIFICITY = {
    PriceScope.STORE_CHANNEL: 4,
    PriceScope.STORE: 3,
    PriceScope.CHANNEL: 2,
    PriceScope.CHAIN: 1,
    PriceScope.BASE: 0,
}


@dataclass(frozen=True)
class PriceCandidate:
    """The terms of one price override, as plain data."""

    id: uuid.UUID
    price: int
    store_id: uuid.UUID | None
    channel: Channel | None
    valid_from: datetime
    valid_to: datetime | None

    @property
    def scope(self) -> PriceScope:
        if self.store_id is not None:
            return PriceScope.STORE_CHANNEL if self.channel is not None else PriceScope.STORE
        return PriceScope.CHANNEL if self.channel is not None else PriceScope.CHAIN

    def valid_at(self, at: datetime) -> bool:
        """``valid_from`` is inclusive, ``valid_to`` exclusive; no ``valid_to``: open-ended."""
        return self.valid_from <= at and (self.valid_to is None or at < self.valid_to)

    def applies_to(self, *, store_id: uuid.UUID | None, channel: Channel | None) -> bool:
        return (self.store_id is None or self.store_id == store_id) and (
            self.channel is None or self.channel == channel
        )


@dataclass(frozen=True)
class EffectivePrice:
    """The price that applies, in fen per the SKU's ``price_per`` units, and where it came from."""

    amount: int
    override_id: uuid.UUID | None
    scope: PriceScope

    @property
    def source(self) -> str:
        return "base" if self.override_id is None else "override"


def effective_price(
    base_price: int,
    overrides: Iterable[PriceCandidate],
    *,
    channel: Channel | None,
    store_id: uuid.UUID | None,
    at: datetime,
) -> EffectivePrice:
    """The price of a SKU for a channel in a store at a moment.

    An override counts only if it is valid at ``at`` (``valid_from <= at < valid_to``) and
    its store and channel are each either unset or the ones asked for: an override of another
    store or channel never applies, and with no store (or channel) asked, only overrides
    without a store (or channel) do. Among those that count, the most specific wins:
    store+channel > store only > channel only > chain-wide (neither set) > the base price.
    Ties are broken by the latest ``valid_from`` (a promotion laid over a standing price wins
    while it lasts), then by the greatest id (UUIDv7: the one created last).
    """
    applicable = [
        o for o in overrides if o.valid_at(at) and o.applies_to(store_id=store_id, channel=channel)
    ]
    if not applicable:
        return EffectivePrice(amount=base_price, override_id=None, scope=PriceScope.BASE)
    best = max(applicable, key=lambda o: (_SPECIFICITY[o.scope], o.valid_from, o.id))
    return EffectivePrice(amount=best.price, override_id=best.id, scope=best.scope)


class OverrideStatus(StrEnum):
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    ENDED = "ended"


def override_status(
    valid_from: datetime, valid_to: datetime | None, at: datetime
) -> OverrideStatus:
    if at < valid_from:
        return OverrideStatus.SCHEDULED
    if valid_to is not None and valid_to <= at:
        return OverrideStatus.ENDED
    return OverrideStatus.ACTIVE


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a submitted product or SKU: where, and what is expected."""

    field: str
    message: str


@dataclass(frozen=True)
class SkuShape:
    """What the product rules need to know of a SKU."""

    code: str
    price_per: int | None
    size: str | None = None
    colour: str | None = None
    barcodes: tuple[str, ...] = ()


def _at(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def product_problems(kind: ProductKind, shelf_life_days: int | None) -> list[Problem]:
    """Fresh goods must say how many days they keep."""
    if kind is ProductKind.FRESH and shelf_life_days is None:
        return [Problem("shelf_life_days", "is required for fresh products (kind=fresh)")]
    return []


def sku_problems(kind: ProductKind, unit: SaleUnit, sku: SkuShape, path: str = "") -> list[Problem]:
    """A SKU's price unit fits the product's sale unit, apparel names its variant, codes scan."""
    found: list[Problem] = []
    if unit is SaleUnit.PIECE and sku.price_per not in (None, 1):
        found.append(Problem(_at(path, "price_per"), "must be 1 for goods sold by the piece"))
    if unit is SaleUnit.GRAM and sku.price_per is None:
        found.append(
            Problem(
                _at(path, "price_per"),
                "is required for weighed goods: the grams the price is for, e.g. 500 (one jin)",
            )
        )
    if kind is ProductKind.APPAREL:
        for name, value in (("size", sku.size), ("colour", sku.colour)):
            if not value:
                found.append(Problem(_at(path, name), "is required for apparel variants"))
    for j, code in enumerate(sku.barcodes):
        try:
            validate_barcode(code)
        except InvalidBarcode as bad:
            found.append(Problem(_at(path, f"barcodes.{j}"), str(bad)))
    return found


def new_product_problems(
    kind: ProductKind,
    unit: SaleUnit,
    shelf_life_days: int | None,
    skus: Sequence[SkuShape],
) -> list[Problem]:
    """Everything wrong with a new product and its SKUs, duplicates within the request too."""
    found = product_problems(kind, shelf_life_days)
    if not skus:
        found.append(Problem("skus", "must list at least one SKU"))
    seen_codes: set[str] = set()
    seen_barcodes: set[str] = set()
    seen_variants: set[tuple[str | None, str | None]] = set()
    for i, sku in enumerate(skus):
        path = f"skus.{i}"
        found.extend(sku_problems(kind, unit, sku, path))
        if sku.code in seen_codes:
            found.append(Problem(f"{path}.code", f"SKU code {sku.code!r} is listed twice"))
        seen_codes.add(sku.code)
        for j, code in enumerate(sku.barcodes):
            if code in seen_barcodes:
                found.append(Problem(f"{path}.barcodes.{j}", f"barcode {code} is listed twice"))
            seen_barcodes.add(code)
        if sku.size is not None and sku.colour is not None:
            variant = (sku.size, sku.colour)
            if variant in seen_variants:
                found.append(Problem(path, f"variant {sku.size!r}/{sku.colour!r} is listed twice"))
            seen_variants.add(variant)
    return found


@dataclass
class CategoryNode:
    """A category with its children, for showing the tree."""

    id: uuid.UUID
    code: str
    name: str
    parent_id: uuid.UUID | None
    depth: int = 0
    children: list[CategoryNode] = field(default_factory=list)


def build_category_tree(categories: Iterable[CategoryNode]) -> list[CategoryNode]:
    """Roots with their descendants nested, siblings ordered by code, depths filled in.

    A node whose parent is missing from ``categories`` is shown as a root.
    """
    nodes = {c.id: c for c in categories}
    roots: list[CategoryNode] = []
    for node in nodes.values():
        node.children = []
    for node in sorted(nodes.values(), key=lambda n: n.code):
        parent = nodes.get(node.parent_id) if node.parent_id is not None else None
        (parent.children if parent is not None else roots).append(node)
    stack = [(root, 0) for root in roots]
    while stack:
        node, depth = stack.pop()
        node.depth = depth
        stack.extend((child, depth + 1) for child in node.children)
    return roots


def flatten_category_tree(roots: Sequence[CategoryNode]) -> list[CategoryNode]:
    """The nodes of a tree in display order: each parent followed by its subtree."""
    ordered: list[CategoryNode] = []
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        ordered.append(node)
        stack.extend(reversed(node.children))
    return ordered
