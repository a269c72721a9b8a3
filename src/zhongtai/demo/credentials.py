"""The demo's public credentials (logins, channel keys, sample barcodes) as a JSON summary.

Demo keys and passwords derive from the seed and are printed and written in clear text on
purpose: they exist only so that the README tour and the benchmarks can call the demo chain.
Never load the demo chain into a database that faces the internet.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zhongtai.catalog.models import ProductKind
from zhongtai.core.settings import DEFAULT_DATA_DIR
from zhongtai.demo.generator import DEMO_PASSWORD, DemoChain

DEFAULT_CREDENTIALS_PATH = DEFAULT_DATA_DIR / "demo-credentials.json"
WARNING = "Demo credentials are public. Never use the demo chain on a reachable server."


def _sample_barcodes(chain: DemoChain) -> list[dict[str, Any]]:
    """One SKU of each kind, and one carrying two barcodes, with what a scan should show."""
    catalog = chain.catalog
    kinds = {p["id"]: p["kind"] for p in catalog.products}
    codes: dict[Any, list[str]] = {}
    for barcode in catalog.barcodes:
        codes.setdefault(barcode["sku_id"], []).append(barcode["code"])
    picked: list[dict[str, Any]] = []
    wanted: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
        ("fresh", lambda s: kinds[s["product_id"]] is ProductKind.FRESH),
        ("packaged", lambda s: kinds[s["product_id"]] is ProductKind.STANDARD),
        ("apparel", lambda s: kinds[s["product_id"]] is ProductKind.APPAREL),
        ("two barcodes", lambda s: len(codes[s["id"]]) > 1),
    ]
    for label, fits in wanted:
        sku = next((s for s in catalog.skus if fits(s)), None)
        if sku is None:
            continue
        picked.append(
            {
                "kind": label,
                "barcodes": codes[sku["id"]],
                "sku_id": str(sku["id"]),
                "sku_code": sku["code"],
                "name": sku["name"],
                "base_price": sku["base_price"],
                "currency": sku["currency"],
                "price_per": sku["price_per"],
            }
        )
    return picked


def demo_credentials(chain: DemoChain) -> dict[str, Any]:
    """Logins, keys, stores and sample barcodes of the chain: what scripts need to drive it."""
    return {
        "warning": WARNING,
        "seed": chain.seed,
        "password": DEMO_PASSWORD,
        "logins": [
            {
                "username": s.username,
                "password": DEMO_PASSWORD,
                "role": s.role.value,
                "display_name": s.display_name,
                "store_code": s.store_code,
            }
            for s in chain.staff
        ],
        "api_keys": [
            {
                "name": k.name,
                "channel": k.channel.value,
                "store_code": k.store_code,
                "terminal_id": k.terminal_id,
                "key": k.material.full_key,
            }
            for k in chain.api_keys
        ],
        "stores": [
            {"id": str(s["id"]), "code": s["code"], "name": s["name"], "region": s["region"]}
            for s in chain.stores
        ],
        "sample_barcodes": _sample_barcodes(chain),
    }


def write_demo_credentials(summary: dict[str, Any], path: Path = DEFAULT_CREDENTIALS_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def read_demo_credentials(path: Path = DEFAULT_CREDENTIALS_PATH) -> dict[str, Any]:
    """The summary the last `zhongtai seed-demo` or `zhongtai demo` wrote."""
    summary: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return summary
