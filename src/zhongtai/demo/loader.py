"""Writes a generated demo chain into the database: bulk rows, then staff and keys via auth, then
the history (members, orders, coupons, points, tiers) and the guides' world over it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from zhongtai.catalog.models import Barcode, Category, PriceOverride, Product, Sku
from zhongtai.core.auth import credentials
from zhongtai.core.auth import service as auth
from zhongtai.core.auth.models import StaffUser
from zhongtai.core.clock import business_day, utcnow
from zhongtai.core.db import Base
from zhongtai.core.settings import Settings, get_settings
from zhongtai.demo.generator import DEMO_PASSWORD, DemoChain, location_id_by_code
from zhongtai.demo.guides import build_guide_world, load_guide_world
from zhongtai.demo.history_loader import build_demo_history, guides_by_store, insert_demo_history
from zhongtai.demo.members import identity_prefix
from zhongtai.demo.orders_history import HISTORY_DAYS
from zhongtai.demo.points_earning import LoyaltyTerms
from zhongtai.demo.seeded import stream
from zhongtai.demo.sites import TIMEZONE
from zhongtai.demo.stock import load_demo_stock
from zhongtai.guides.recommendations import build_recommendations
from zhongtai.members.models import MemberIdentity
from zhongtai.members.pii import cipher_for
from zhongtai.stores.models import (
    Location,
    LocationCapability,
    OpeningException,
    OpeningHours,
    PilotRule,
)

#: Reports progress: (step, done, total). The CLI draws it as a progress bar.
ProgressFn = Callable[[str, int, int], None]
CHUNK = 5000


def _silent(_step: str, _done: int, _total: int) -> None:
    return None


def existing_demo_data(session: Session, chain: DemoChain) -> str | None:
    """What of this demo chain the database already holds (a location, a login or a member
    identity: rows its load would clash with), else None."""
    codes = [loc["code"] for loc in chain.locations]
    found = session.scalar(select(Location.code).where(Location.code.in_(codes)).limit(1))
    if found is not None:
        return f"location {found} exists"
    usernames = [s.username for s in chain.staff]
    user = session.scalar(
        select(StaffUser.username).where(StaffUser.username.in_(usernames)).limit(1)
    )
    if user is not None:
        return f"staff user {user!r} exists"
    member = session.scalar(
        select(MemberIdentity.lookup_key)
        .where(MemberIdentity.lookup_key.startswith(identity_prefix(chain.seed), autoescape=True))
        .limit(1)
    )
    if member is not None:
        return f"demo member {member!r} exists"
    return None


def _bulk(
    session: Session,
    model: type[Base],
    rows: Sequence[dict[str, Any]],
    step: str,
    progress: ProgressFn,
) -> None:
    progress(step, 0, len(rows))
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        session.execute(insert(model), list(chunk))
        progress(step, start + len(chunk), len(rows))


#: The share of products listed in the last two weeks: the new arrivals guides tell about.
NEW_ARRIVAL_SHARE = 0.03


def _date_listings(chain: DemoChain, now: datetime) -> None:
    """When each product was listed: most long ago, a few in the last two weeks (seeded)."""
    rng = stream(chain.seed, "listings")
    for row in chain.catalog.products:
        days = rng.uniform(0, 13.9) if rng.random() < NEW_ARRIVAL_SHARE else rng.uniform(200, 900)
        row["created_at"] = row["updated_at"] = now - timedelta(days=days)


def load_demo_chain(
    session: Session,
    chain: DemoChain,
    *,
    progress: ProgressFn | None = None,
    history_days: int = HISTORY_DAYS,
    today: date | None = None,
    settings: Settings | None = None,
) -> None:
    """Inserts the chain in the caller's transaction; the caller commits (the CLI does).

    ``history_days`` of orders before ``today`` (default: today in Shanghai) come with it, and
    with them the chain's members, their coupons, points and tiers, and the shopping guides'
    customers, share links, attributed sales and commission. Phones are sealed, and points
    earned and kept, by ``settings`` (default: the process's), as the live services would.
    """
    report = progress or _silent
    catalog = chain.catalog
    _date_listings(chain, utcnow())
    for model, rows, step in (
        (Location, chain.locations, "locations"),
        (LocationCapability, chain.capabilities, "capabilities"),
        (OpeningHours, chain.opening_hours, "opening hours"),
        (OpeningException, chain.opening_exceptions, "opening exceptions"),
        (Category, catalog.categories, "categories"),
        (PilotRule, chain.pilot_rules, "pilot rules"),
        (Product, catalog.products, "products"),
        (Sku, catalog.skus, "SKUs"),
        (Barcode, catalog.barcodes, "barcodes"),
        (PriceOverride, catalog.price_overrides, "prices"),
    ):
        _bulk(session, model, rows, step, report)
    ranges = load_demo_stock(session, chain, report)
    store_ids = location_id_by_code(chain)
    report("staff", 0, len(chain.staff))
    demo_hash = credentials.hash_password(DEMO_PASSWORD)  # one public password for every login
    for done, person in enumerate(chain.staff, start=1):
        auth.create_staff_user(
            session,
            username=person.username,
            display_name=person.display_name,
            role=person.role,
            password=DEMO_PASSWORD,
            password_hash=demo_hash,
            store_ids=[store_ids[person.store_code]] if person.store_code else [],
        )
        report("staff", done, len(chain.staff))
    report("API keys", 0, len(chain.api_keys))
    for done, key in enumerate(chain.api_keys, start=1):
        auth.create_api_key(
            session,
            name=key.name,
            channel=key.channel,
            store_id=store_ids[key.store_code] if key.store_code else None,
            terminal_id=key.terminal_id,
            material=key.material,
        )
        report("API keys", done, len(chain.api_keys))
    if history_days > 0:
        settings = settings or get_settings()
        guides = guides_by_store(session, chain)
        history = build_demo_history(
            chain,
            ranges=ranges,
            guides=guides,
            today=today or business_day(utcnow(), TIMEZONE),
            days=history_days,
            terms=LoyaltyTerms.of(settings),
        )
        # Built before the history is written: it names the guide on the orders that credit one.
        world = build_guide_world(chain, guides, history)
        insert_demo_history(session, history, report, cipher_for(settings))
        load_guide_world(session, world, report)
        # What guides show their customers, as the nightly build would have left it.
        report("recommendations", 0, 1)
        build_recommendations(session, now=utcnow())
        report("recommendations", 1, 1)
