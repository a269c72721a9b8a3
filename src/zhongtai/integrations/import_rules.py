"""Pure rules of back-office imports: read a CSV or JSON batch into numbered rows, and check each
row of a product master, price list or stock snapshot, naming the field and what it expects."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

MAX_ROWS = 50_000


class ImportKind(StrEnum):
    PRODUCTS = "products"  # product master: one row per SKU
    PRICES = "prices"  # price overrides per SKU, store and/or channel, with a window
    STOCK = "stock"  # stock snapshot: on-hand per location and SKU (a WMS count)


class BatchUnreadable(ValueError):
    """The batch as a whole cannot be read (not CSV/JSON, too big, no header)."""


@dataclass(frozen=True)
class RawRow:
    """A row as read, with the line it came from (CSV: the file's line; JSON: item number)."""

    line: int
    values: Mapping[str, Any]


@dataclass(frozen=True)
class RowProblem:
    field: str
    message: str


def fingerprint(content: bytes) -> str:
    """What a batch id is bound to: the same id with other content is refused."""
    return hashlib.sha256(content).hexdigest()


def read_batch(content: bytes, content_type: str) -> list[RawRow]:
    """Rows of a CSV (header line first; UTF-8, a BOM is fine) or JSON batch (a list of objects,
    or ``{"rows": [...]}``)."""
    if "json" in content_type:
        try:
            data = json.loads(content)
        except ValueError as error:
            raise BatchUnreadable(f"not JSON: {error}") from None
        items = data.get("rows") if isinstance(data, dict) else data
        if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
            raise BatchUnreadable('JSON batches are a list of objects, or {"rows": [...]}')
        rows = [RawRow(i + 1, item) for i, item in enumerate(items)]
    else:
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BatchUnreadable("CSV batches are UTF-8") from None
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            raise BatchUnreadable("the CSV has no header line")
        rows = [
            RawRow(reader.line_num, {k.strip(): (v or "").strip() for k, v in row.items() if k})
            for row in reader
        ]
    if len(rows) > MAX_ROWS:
        raise BatchUnreadable(f"at most {MAX_ROWS} rows per batch; split it")
    return rows


class _Row:
    """Reads typed fields off a raw row, collecting every problem instead of stopping."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values
        self.problems: list[RowProblem] = []

    def _raw(self, name: str) -> Any:
        value = self.values.get(name)
        return None if value is None or value == "" else value

    def text(self, name: str, *, required: bool = True, max_length: int = 200) -> str | None:
        value = self._raw(name)
        if value is None:
            if required:
                self.problems.append(RowProblem(name, "is required"))
            return None
        text = str(value).strip()
        if len(text) > max_length:
            self.problems.append(RowProblem(name, f"at most {max_length} characters"))
            return None
        return text

    def integer(self, name: str, *, required: bool = True, minimum: int | None = 0) -> int | None:
        value = self._raw(name)
        if value is None:
            if required:
                self.problems.append(RowProblem(name, "is required"))
            return None
        try:
            number = int(str(value).strip())
        except ValueError:
            self.problems.append(RowProblem(name, f"must be a whole number, not {value!r}"))
            return None
        if minimum is not None and number < minimum:
            self.problems.append(RowProblem(name, f"must be {minimum} or more"))
            return None
        return number

    def choice(
        self, name: str, allowed: Sequence[str], *, default: str | None = None
    ) -> str | None:
        value = self._raw(name)
        if value is None:
            if default is None:
                self.problems.append(RowProblem(name, f"is required: one of {', '.join(allowed)}"))
            return default
        text = str(value).strip().lower()
        if text not in allowed:
            self.problems.append(RowProblem(name, f"must be one of {', '.join(allowed)}"))
            return None
        return text

    def day(self, name: str) -> date | None:
        value = self._raw(name)
        if value is None:
            return None
        try:
            return date.fromisoformat(str(value).strip())
        except ValueError:
            self.problems.append(RowProblem(name, "must be a date like 2026-11-26"))
            return None

    def moment(self, name: str) -> datetime | None:
        value = self._raw(name)
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            self.problems.append(RowProblem(name, "must be a time like 2026-11-26T08:00:00+08:00"))
            return None
        if moment.tzinfo is None:
            self.problems.append(RowProblem(name, "must include a UTC offset"))
            return None
        return moment


@dataclass(frozen=True)
class ProductRow:
    product_code: str
    product_name: str
    category_code: str
    kind: str
    unit: str
    sku_code: str
    sku_name: str
    base_price: int
    price_per: int | None
    size: str | None
    colour: str | None
    barcode: str | None
    brand: str | None
    shelf_life_days: int | None


@dataclass(frozen=True)
class PriceRow:
    sku_code: str
    price: int
    store_code: str | None
    channel: str | None
    valid_from: datetime | None
    valid_to: datetime | None


@dataclass(frozen=True)
class StockRow:
    location_code: str
    sku_code: str
    on_hand: int


PRODUCT_KINDS = ("standard", "fresh", "apparel")
SALE_UNITS = ("piece", "gram")
CHANNELS = ("pos", "app", "mini_program", "marketplace")


def check_product_row(values: Mapping[str, Any]) -> ProductRow | list[RowProblem]:
    row = _Row(values)
    fields = {
        "product_code": row.text("product_code", max_length=64),
        "product_name": row.text("product_name"),
        "category_code": row.text("category_code", max_length=32),
        "kind": row.choice("kind", PRODUCT_KINDS, default="standard"),
        "unit": row.choice("unit", SALE_UNITS, default="piece"),
        "sku_code": row.text("sku_code", max_length=64),
        "sku_name": row.text("sku_name"),
        "base_price": row.integer("base_price"),
        "price_per": row.integer("price_per", required=False, minimum=1),
        "size": row.text("size", required=False, max_length=32),
        "colour": row.text("colour", required=False, max_length=32),
        "barcode": row.text("barcode", required=False, max_length=32),
        "brand": row.text("brand", required=False, max_length=100),
        "shelf_life_days": row.integer("shelf_life_days", required=False, minimum=1),
    }
    if row.problems:
        return row.problems
    return ProductRow(**fields)  # type: ignore[arg-type]


def check_price_row(values: Mapping[str, Any]) -> PriceRow | list[RowProblem]:
    row = _Row(values)
    sku_code = row.text("sku_code", max_length=64)
    price = row.integer("price")
    store_code = row.text("store_code", required=False, max_length=32)
    channel = row.choice("channel", CHANNELS, default="") or None
    valid_from = row.moment("valid_from")
    valid_to = row.moment("valid_to")
    if valid_from and valid_to and valid_to <= valid_from:
        row.problems.append(RowProblem("valid_to", "must be after valid_from"))
    if row.problems or sku_code is None or price is None:
        return row.problems
    return PriceRow(sku_code, price, store_code, channel, valid_from, valid_to)


def check_stock_row(values: Mapping[str, Any]) -> StockRow | list[RowProblem]:
    row = _Row(values)
    location_code = row.text("location_code", max_length=32)
    sku_code = row.text("sku_code", max_length=64)
    on_hand = row.integer("on_hand")
    if row.problems or location_code is None or sku_code is None or on_hand is None:
        return row.problems
    return StockRow(location_code, sku_code, on_hand)
