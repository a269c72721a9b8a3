"""Pure rules of back-office imports: read a CSV or JSON batch into numbered rows, and check each
row of a product master, price list or stock snapshot, naming the field and what it expects."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from zhongtai.catalog.rules import MAX_PRICE_FEN
from zhongtai.core.moments import calendar_moment
from zhongtai.core.text import has_control_characters

MAX_ROWS = 50_000
#: The most units one count may set, as the inventory API's quantities (far above any shelf).
MAX_ON_HAND = 10_000_000
#: Units a price is for, and a shelf life, at most: the catalog API's bounds.
MAX_PRICE_PER = 100_000
MAX_SHELF_LIFE_DAYS = 36_500
#: A whole number as ERP and WMS files write one: ASCII digits, perhaps signed. Not Python's
#: ``int()`` reading, which also takes ``1_000`` and full-width or other scripts' digits (and
#: refuses more than 4300 of them with an error of its own).
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,4000}", re.ASCII)


class ImportKind(StrEnum):
    PRODUCTS = "products"  # product master: one row per SKU
    PRICES = "prices"  # price overrides per SKU, store and/or channel, with a window
    STOCK = "stock"  # stock snapshot: on-hand per location and SKU (a WMS count)


class BatchUnreadable(ValueError):
    """The batch as a whole cannot be read (not CSV/JSON, too big, no header)."""


@dataclass(frozen=True)
class RowProblem:
    field: str
    message: str


@dataclass(frozen=True)
class RawRow:
    """A row as read, with the line it came from (CSV: the file's line; JSON: item number).

    ``problems`` are what reading found wrong with the row as a whole (values the header does
    not name): such a row is rejected whatever its values say.
    """

    line: int
    values: Mapping[str, Any]
    problems: tuple[RowProblem, ...] = ()


def fingerprint(content: bytes) -> str:
    """What a batch id is bound to: the same id with other content is refused."""
    return hashlib.sha256(content).hexdigest()


def read_batch(content: bytes, content_type: str) -> list[RawRow]:
    """Rows of a CSV (header line first; UTF-8, a BOM is fine) or JSON batch (a list of objects,
    or ``{"rows": [...]}``).

    :class:`BatchUnreadable` says why a batch cannot be read at all (never another error,
    whatever the bytes): not UTF-8 or JSON, a field too long, nesting too deep, a column named
    twice (which of the two would count?), too many rows.
    """
    rows = _read_json(content) if "json" in content_type else _read_csv(content)
    if len(rows) > MAX_ROWS:
        raise BatchUnreadable(f"at most {MAX_ROWS} rows per batch; split it")
    return rows


class _FieldTwice(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _object_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose every field is named once (``json`` would keep the last silently)."""
    obj: dict[str, Any] = {}
    for name, value in pairs:
        if name in obj:
            raise _FieldTwice(name)
        obj[name] = value
    return obj


def _read_json(content: bytes) -> list[RawRow]:
    try:
        data = json.loads(content, object_pairs_hook=_object_once)
    except _FieldTwice as twice:
        raise BatchUnreadable(f"an object names the field {twice.name!r} twice") from None
    except RecursionError:
        raise BatchUnreadable("the JSON is nested too deeply for a batch of rows") from None
    except ValueError as error:
        raise BatchUnreadable(f"not JSON: {error}") from None
    items = data.get("rows") if isinstance(data, dict) else data
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise BatchUnreadable('JSON batches are a list of objects, or {"rows": [...]}')
    return [RawRow(i + 1, item) for i, item in enumerate(items)]


def _read_csv(content: bytes) -> list[RawRow]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BatchUnreadable("CSV batches are UTF-8") from None
    reader = csv.reader(io.StringIO(text))
    try:
        return list(_csv_rows(reader))
    except csv.Error as error:
        raise BatchUnreadable(f"line {reader.line_num}: {error}") from None


def _csv_rows(reader: Any) -> Iterator[RawRow]:
    header = next(reader, None)
    names = [name.strip() for name in header or []]
    if not any(names):
        raise BatchUnreadable("the CSV has no header line")
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise BatchUnreadable(f"the header names the column {name!r} twice")
        seen.add(name)
    read = 0
    while True:
        first_line = reader.line_num + 1
        values = next(reader, None)
        if values is None:
            return
        if not values:
            continue  # a blank line
        read += 1
        if read > MAX_ROWS:
            raise BatchUnreadable(f"at most {MAX_ROWS} rows per batch; split it")
        row = {name: value.strip() for name, value in zip(names, values, strict=False) if name}
        row |= {name: "" for name in names[len(values) :] if name}
        yield RawRow(first_line, row, _unnamed_values(names, values))


def _unnamed_values(names: Sequence[str], values: Sequence[str]) -> tuple[RowProblem, ...]:
    """What is wrong with values the header gives no column: most often an unquoted comma in a
    name or a figure (``1,000``), which shifts every value after it."""
    if len(values) > len(names) and any(v.strip() for v in values[len(names) :]):
        return (
            RowProblem(
                "",
                f"has {len(values)} values but the header names {len(names)} columns: quote "
                'text with a comma in it ("Apple, red") and write figures without one (1000)',
            ),
        )
    unnamed = [
        i + 1 for i, (n, v) in enumerate(zip(names, values, strict=False)) if not n and v.strip()
    ]
    if unnamed:
        return (
            RowProblem("", f"has values in columns {unnamed}, which the header leaves unnamed"),
        )
    return ()


class _Row:
    """Reads typed fields off a raw row, collecting every problem instead of stopping."""

    def __init__(self, values: Mapping[str, Any], columns: Sequence[str]) -> None:
        self.values = values
        self.problems: list[RowProblem] = [
            RowProblem(name, f"is not a column of this batch; its columns are {', '.join(columns)}")
            for name in values
            if name not in columns
        ]

    def _raw(self, name: str) -> Any:
        value = self.values.get(name)
        return None if value is None or value == "" else value

    def text(self, name: str, *, required: bool = True, max_length: int = 200) -> str | None:
        value = self._raw(name)
        if value is None:
            if required:
                self.problems.append(RowProblem(name, "is required"))
            return None
        # A code may come as a JSON number (a barcode); an object, a list, true or 1.5 is no text.
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.problems.append(RowProblem(name, f"must be text, not {value!r}"))
            return None
        text = str(value).strip()
        if len(text) > max_length:
            self.problems.append(RowProblem(name, f"at most {max_length} characters"))
            return None
        if has_control_characters(text):
            self.problems.append(RowProblem(name, "must not contain control characters"))
            return None
        return text

    def integer(
        self, name: str, *, required: bool = True, minimum: int = 0, maximum: int
    ) -> int | None:
        value = self._raw(name)
        if value is None:
            if required:
                self.problems.append(RowProblem(name, "is required"))
            return None
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value.strip()):
            number = int(value.strip())
        if number is None:
            self.problems.append(RowProblem(name, f"must be a whole number, not {value!r}"))
            return None
        if number < minimum:
            self.problems.append(RowProblem(name, f"must be {minimum} or more"))
            return None
        if number > maximum:
            self.problems.append(RowProblem(name, f"must be at most {maximum}"))
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
        try:
            # As the price API takes one: an offset, and a year every later reckoning survives.
            return calendar_moment(moment)
        except ValueError as refused:
            self.problems.append(RowProblem(name, str(refused)))
            return None


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


PRODUCT_COLUMNS = (
    "product_code",
    "product_name",
    "category_code",
    "kind",
    "unit",
    "sku_code",
    "sku_name",
    "base_price",
    "price_per",
    "size",
    "colour",
    "barcode",
    "brand",
    "shelf_life_days",
)
PRICE_COLUMNS = ("sku_code", "price", "store_code", "channel", "valid_from", "valid_to")
STOCK_COLUMNS = ("location_code", "sku_code", "on_hand")
PRODUCT_KINDS = ("standard", "fresh", "apparel")
SALE_UNITS = ("piece", "gram")
CHANNELS = ("pos", "app", "mini_program", "marketplace")


def check_product_row(values: Mapping[str, Any]) -> ProductRow | list[RowProblem]:
    row = _Row(values, PRODUCT_COLUMNS)
    fields = {
        "product_code": row.text("product_code", max_length=64),
        "product_name": row.text("product_name"),
        "category_code": row.text("category_code", max_length=32),
        "kind": row.choice("kind", PRODUCT_KINDS, default="standard"),
        "unit": row.choice("unit", SALE_UNITS, default="piece"),
        "sku_code": row.text("sku_code", max_length=64),
        "sku_name": row.text("sku_name"),
        "base_price": row.integer("base_price", maximum=MAX_PRICE_FEN),
        "price_per": row.integer("price_per", required=False, minimum=1, maximum=MAX_PRICE_PER),
        "size": row.text("size", required=False, max_length=32),
        "colour": row.text("colour", required=False, max_length=32),
        "barcode": row.text("barcode", required=False, max_length=32),
        "brand": row.text("brand", required=False, max_length=100),
        "shelf_life_days": row.integer(
            "shelf_life_days", required=False, minimum=1, maximum=MAX_SHELF_LIFE_DAYS
        ),
    }
    if row.problems:
        return row.problems
    return ProductRow(**fields)  # type: ignore[arg-type]


def check_price_row(values: Mapping[str, Any]) -> PriceRow | list[RowProblem]:
    row = _Row(values, PRICE_COLUMNS)
    sku_code = row.text("sku_code", max_length=64)
    price = row.integer("price", maximum=MAX_PRICE_FEN)
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
    row = _Row(values, STOCK_COLUMNS)
    location_code = row.text("location_code", max_length=32)
    sku_code = row.text("sku_code", max_length=64)
    on_hand = row.integer("on_hand", maximum=MAX_ON_HAND)
    if row.problems or location_code is None or sku_code is None or on_hand is None:
        return row.problems
    return StockRow(location_code, sku_code, on_hand)


#: The column naming a store in a row of each kind (a product row names none).
STORE_COLUMNS = {ImportKind.STOCK: "location_code", ImportKind.PRICES: "store_code"}


def named_store_code(kind: ImportKind, values: Mapping[str, Any]) -> str | None:
    """The store code a row names, read as the row's check reads it (None: none, or no code)."""
    column = STORE_COLUMNS.get(kind)
    if column is None:
        return None
    row = _Row({column: values.get(column)}, (column,))
    code = row.text(column, required=False, max_length=32)
    return None if row.problems else code
