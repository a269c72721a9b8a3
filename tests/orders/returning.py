"""Taking goods of an order back through the API, as a till or a store clerk does."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from fastapi.testclient import TestClient

from tests.orders.conftest import Chain, new_id, ok


def return_line(
    client: TestClient,
    order: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    store_id: uuid.UUID,
    quantity: int = 1,
    line: int = 0,
    condition: str = "resellable",
) -> Any:
    """Return ``quantity`` of the ``line``-th line of ``order`` (as the API shows it) at the
    store ``store_id``, under a reference of its own; the return as answered (201)."""
    return ok(
        client.post(
            f"/api/v1/orders/{order['id']}/returns",
            json={
                "reference": str(uuid.uuid4()),
                "store_id": str(store_id),
                "lines": [
                    {
                        "line_id": order["lines"][line]["id"],
                        "quantity": quantity,
                        "condition": condition,
                    }
                ],
            },
            headers=headers,
        ),
        201,
    )


def return_lines(
    client: TestClient,
    chain: Chain,
    order: Mapping[str, Any],
    *back: tuple[int, int],
    reference: str | None = None,
    status: int = 201,
) -> Any:
    """Bring back ``(line index, quantity)`` pairs of ``order`` at the chain's store, through
    its clerk (resellable); the return as answered (``status``)."""
    lines = [{"line_id": order["lines"][i]["id"], "quantity": q} for i, q in back]
    body = {"reference": reference or new_id(), "store_id": str(chain.store.id), "lines": lines}
    return ok(
        client.post(f"/api/v1/orders/{order['id']}/returns", json=body, headers=chain.clerk),
        status,
    )
