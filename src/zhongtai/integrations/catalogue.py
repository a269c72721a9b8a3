"""The event catalogue page (docs/events.md), generated from the declared event types."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import zhongtai
from zhongtai.core.outbox import EVENT_TYPES, EventType

DOC_PATH = Path("docs/events.md")
HEADER = """# Event catalogue

<!-- Generated from the code by `zhongtai events-doc`; do not edit by hand. -->

Every change other systems care about is recorded as an event in the transaction of the
change (the outbox) and published by the relay to in-process handlers, signed webhooks,
the live stream (`GET /api/v1/events/stream`) and NATS JetStream (subject
`zhongtai.<store id | chain>.<type>`). How to subscribe: [webhooks.md](webhooks.md).

Every event travels in the same envelope:

| field | meaning |
|---|---|
| `id` | event id (UUIDv7); consumers deduplicate on it |
| `seq` | order of recording; events of one aggregate arrive in this order |
| `type`, `version` | the name below and its payload version |
| `occurred_at` | when the change happened (ISO 8601, UTC) |
| `aggregate_type`, `aggregate_id` | the thing that changed |
| `store_id` | the store it belongs to, or null for chain-wide events |
| `request_id` | the `X-Request-ID` of the API request that caused it, if any |
| `payload` | the fields listed for the type |
"""


def load_declarations() -> None:
    """Import every context's ``events`` module (and the app), so every type is declared."""
    importlib.import_module("zhongtai.app")
    for module in pkgutil.iter_modules(zhongtai.__path__):
        if module.ispkg:
            try:
                importlib.import_module(f"zhongtai.{module.name}.events")
            except ModuleNotFoundError as missing:
                if missing.name != f"zhongtai.{module.name}.events":
                    raise


def _type_of(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in prop:
        return " or ".join(_type_of(p, defs) for p in prop["anyOf"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type_of(prop.get('items', {}), defs)}"
    fmt = prop.get("format")
    if "enum" in prop:
        return " | ".join(f"`{v}`" for v in prop["enum"])
    return f"{kind} ({fmt})" if fmt else str(kind)


def _section(declared: EventType) -> str:
    schema = declared.payload.model_json_schema()
    required = set(schema.get("required", []))
    defs = schema.get("$defs", {})
    lines = [f"## `{declared.name}` (version {declared.version})", "", declared.description, ""]
    lines += ["| field | type | required |", "|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        lines.append(
            f"| `{name}` | {_type_of(prop, defs)} | {'yes' if name in required else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def render_catalogue() -> str:
    """The whole page; test-only types (``test.*``) are left out."""
    load_declarations()
    public = sorted(
        (e for e in EVENT_TYPES.values() if not e.name.startswith("test.")), key=lambda e: e.name
    )
    toc = "\n".join(
        f"- [`{e.name}`](#{e.name.replace('.', '')}-version-{e.version})" for e in public
    )
    body = "\n".join(_section(e) for e in public)
    return f"{HEADER}\n## Types\n\n{toc}\n\n{body}"
