"""The running demo chain as its touchpoints reach it over HTTP: channel keys, staff logins, the
stores, their shelves and till prices, for the order simulator."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import httpx

from zhongtai.catalog.rules import price_for_quantity

#: Who calls: a channel key (app, mini_program, marketplace, pos:SH001) or a staff login.
Caller = str
SHELF_SAMPLE = 500  # SKUs read per store: plenty to fill baskets from


class StepFailed(Exception):
    """The server refused a step (or could not be reached): what, the HTTP status, why."""

    def __init__(self, step: str, status: int, detail: str, problem: dict[str, Any] | None = None):
        super().__init__(f"{step}: {status} {detail}")
        self.step = step
        self.status = status
        self.detail = detail
        self.problem = problem or {}


@dataclass(frozen=True)
class Shelf:
    """A SKU a store has available, with its till price (fen per ``price_per`` units)."""

    sku_id: str
    price_per: int
    unit_price: int | None = None
    atp: int = 0  # available to promise when the shelf was last looked at

    def quantity(self, rng: random.Random) -> int:
        if self.price_per > 1:  # weighed goods: grams off the scale
            wanted = rng.randint(15, 120) * 10
        else:
            wanted = rng.choices((1, 2, 3), weights=(80, 15, 5))[0]
        return max(1, min(wanted, self.atp)) if self.atp else wanted

    def amount(self, quantity: int) -> int:
        return price_for_quantity(self.unit_price or 0, self.price_per, quantity)


@dataclass
class Store:
    id: str
    code: str
    latitude: float
    longitude: float
    capabilities: dict[str, dict[str, Any]]
    shelves: list[Shelf] = field(default_factory=list)

    def offers(self, capability: str) -> bool:
        return capability in self.capabilities


class ChainApi:
    """Calls the server as the demo's customers, clerks and tills; logs staff in on first use."""

    def __init__(self, url: str, credentials: dict[str, Any], *, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=url.rstrip("/") + "/api/v1", timeout=timeout)
        self.credentials = credentials
        self._keys = {
            (k["channel"] if k["channel"] != "pos" else f"pos:{k['store_code']}"): k["key"]
            for k in credentials["api_keys"]
        }
        self._logins = {x["username"]: x["password"] for x in credentials["logins"]}
        self._tokens: dict[str, str] = {}
        self._category_of: dict[str, str] = {}  # SKU id -> its product's category id
        self._delivered: dict[tuple[str, str], bool] = {}  # (store id, category id) -> on

    def close(self) -> None:
        self.http.close()

    def has(self, caller: Caller) -> bool:
        return caller in self._keys or caller in self._logins

    def _headers(self, caller: Caller) -> dict[str, str]:
        if caller in self._keys:
            return {"X-API-Key": self._keys[caller]}
        if caller not in self._tokens:
            answer = self.call(
                "post",
                "/auth/login",
                None,
                step=f"log in as {caller}",
                json={"username": caller, "password": self._logins[caller]},
            )
            self._tokens[caller] = answer["access_token"]
        return {"Authorization": f"Bearer {self._tokens[caller]}"}

    def call(
        self,
        method: str,
        path: str,
        caller: Caller | None,
        *,
        step: str,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """One request; the JSON answer, or :class:`StepFailed` with the server's reason."""
        headers = self._headers(caller) if caller else {}
        try:
            response = self.http.request(method, path, json=json, params=params, headers=headers)
        except httpx.HTTPError as error:
            raise StepFailed(step, 0, f"cannot reach the server: {error}") from None
        if response.status_code >= 400:
            problem: dict[str, Any] = {}
            try:
                problem = response.json()
            except ValueError:
                problem = {"detail": response.text[:200]}
            detail = str(problem.get("detail") or problem.get("title") or response.reason_phrase)
            raise StepFailed(step, response.status_code, detail, problem)
        return response.json() if response.content else None

    # --- what the simulator needs to know of the chain ------------------------------------------

    def stores(self, admin: Caller) -> list[Store]:
        """The chain's stores with their capabilities and the SKUs each has available."""
        found = []
        cursor = None
        while True:
            params = {"kind": "store", "limit": 500, **({"cursor": cursor} if cursor else {})}
            page = self.call("get", "/stores", admin, step="list stores", params=params)
            for item in page["items"]:
                found.append(
                    Store(
                        id=item["id"],
                        code=item["code"],
                        latitude=item["latitude"],
                        longitude=item["longitude"],
                        capabilities={c["capability"]: c for c in item["capabilities"]},
                    )
                )
            cursor = page.get("next_cursor")
            if not cursor:
                return found

    def fill_shelves(self, store: Store, admin: Caller) -> None:
        """What the store can sell now (available to promise), with each SKU's unit."""
        page = self.call(
            "get",
            f"/inventory/locations/{store.id}/balances",
            admin,
            step=f"read {store.code} stock",
            params={"limit": SHELF_SAMPLE},
        )
        store.shelves = [Shelf(b["sku_id"], 1, atp=b["atp"]) for b in page["items"] if b["atp"] > 0]

    def delivers(self, store: Store, shelf: Shelf, admin: Caller) -> bool:
        """Whether the chain's pilot rules let the store deliver this SKU (fresh food may be
        delivered where other goods are not): its category asked once, each store and category
        once, as a shop front marks the goods it can bring to the door."""
        category = self._category_of.get(shelf.sku_id)
        if category is None:
            sku = self.call("get", f"/catalog/skus/{shelf.sku_id}", admin, step="look up a SKU")
            product = self.call(
                "get", f"/catalog/products/{sku['product_id']}", admin, step="look up a product"
            )
            for each in product["skus"]:
                self._category_of[each["id"]] = product["category_id"]
            category = self._category_of[shelf.sku_id] = product["category_id"]
        key = (store.id, category)
        if key not in self._delivered:
            decision = self.call(
                "get",
                "/pilot/check",
                admin,
                step=f"check {store.code} delivers a category",
                params={"feature": "delivery", "store_id": store.id, "category_id": category},
            )
            self._delivered[key] = bool(decision["enabled"])
        return self._delivered[key]

    def priced(self, store: Store, shelf: Shelf, admin: Caller) -> Shelf:
        """The shelf with the store's till price and price unit (asked once per SKU)."""
        if shelf.unit_price is not None:
            return shelf
        price = self.call(
            "get",
            f"/catalog/skus/{shelf.sku_id}/price",
            admin,
            step="look up a till price",
            params={"store_id": store.id, "channel": "pos"},
        )
        found = Shelf(shelf.sku_id, price["price_per"], price["price"]["amount"], shelf.atp)
        store.shelves[store.shelves.index(shelf)] = found
        return found
