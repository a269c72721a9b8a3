"""What `zhongtai demo` shows before serving: where to click, whom to log in as, what to curl."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from zhongtai.demo.generator import DEFAULT_MEMBERS
from zhongtai.demo.members import demo_phone

WILDCARD_HOSTS = {"0.0.0.0", "::", ""}  # noqa: S104 - only compared, never bound here


def base_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in WILDCARD_HOSTS else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def _key(summary: dict[str, Any], channel: str) -> dict[str, Any] | None:
    return next((k for k in summary["api_keys"] if k["channel"] == channel), None)


def _guide_login(summary: dict[str, Any]) -> str | None:
    return next((x["username"] for x in summary.get("logins", []) if x["role"] == "guide"), None)


def _members(summary: dict[str, Any]) -> int:
    # A summary rebuilt from the seed alone has no counts: the default chain's members.
    counts: dict[str, Any] = summary.get("counts") or {}
    return int(counts.get("members", DEFAULT_MEMBERS))


def curl_examples(summary: dict[str, Any], url: str) -> list[str]:
    login = json.dumps({"username": "admin", "password": summary["password"]})
    json_header = "-H 'Content-Type: application/json'"
    examples = [f"curl -s {url}/api/v1/auth/login {json_header} -d {shlex.quote(login)}"]
    app_key = _key(summary, "app")
    if app_key:
        examples.append(f"curl -s {url}/api/v1/auth/me -H 'X-API-Key: {app_key['key']}'")
    return examples


def tour_panel(summary: dict[str, Any], url: str, credentials_file: Path) -> Panel:
    """The overview printed above the server's log: where to click and whom to log in as."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("API docs", f"{url}/docs")
    table.add_row("HQ login", f"admin / {summary['password']}")
    stores = summary["stores"]
    if stores:
        code = stores[0]["code"].lower()
        table.add_row(
            "Store logins",
            f"manager.{code}, clerk.{code}, guide.{code} … / {summary['password']} "
            f"(one set per store, {len(stores)} stores)",
        )
    guide = _guide_login(summary)
    if guide:
        table.add_row(
            "Guide's phone",
            f"{guide} / {summary['password']}, then GET /api/v1/guides/me/customers and "
            "/api/v1/guides/me/performance (her customers, sales and commission)",
        )
    members = _members(summary)
    if members:
        table.add_row(
            "A member",
            f"phone {demo_phone(1)} (most of the {members:,} members have a demo phone, "
            f"numbered from {demo_phone(1)} up): POST /api/v1/members/identify, then "
            "/api/v1/members/{id}/points and /api/v1/members/{id}/coupons",
        )
    barcodes = summary.get("sample_barcodes") or []
    if barcodes:
        table.add_row("Scan a barcode", f"{barcodes[0]['barcodes'][0]}  {barcodes[0]['name']}")
    table.add_row("All credentials", str(credentials_file))
    note = Text("Demo passwords and keys are public: keep the demo chain off the internet.")
    return Panel(
        Group(table, Text(""), Text.assemble(note, style="yellow")),
        title="Zhongtai demo chain — 中台超市, 上海",
        expand=False,
    )


def tour_commands(summary: dict[str, Any], url: str) -> list[str]:
    """Keys and curl lines, printed unboxed so that they copy and paste whole."""
    lines = []
    for channel in ("app", "mini_program", "pos"):
        key = _key(summary, channel)
        if key:
            where = f" ({key['store_code']} {key['terminal_id']})" if key["store_code"] else ""
            lines.append(f"{channel} key{where}: {key['key']}")
    simulate = f"zhongtai simulate --orders-per-minute 30 --url {url}"
    return [*lines, "", "Try:", *curl_examples(summary, url), "", f"Live orders: {simulate}"]
