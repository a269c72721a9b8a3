"""import batch stores: a batch belongs to the stores its rows name

Revision ID: 0023_import_batch_stores
Revises: 0022_substitute_returns
Create Date: 2026-11-27 22:05:31.908677

A caller bound to one store could read the report of any batch, another store's stock
snapshot included. A batch now records the stores it belongs to, and a store-bound caller
reads (and lists) only batches all of whose stores are hers. Batches loaded before are given
the stores their reports show: a stock snapshot's counted locations, a price list's
overrides' stores. A batch showing none (a product master) is HQ's.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_import_batch_stores"
down_revision: str | None = "0022_substitute_returns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_batches = sa.table(
    "import_batches",
    sa.column("id", sa.Uuid()),
    sa.column("kind", sa.String(16)),
    sa.column("report", sa.JSON()),
)
_links = sa.table(
    "import_batch_stores", sa.column("batch_id", sa.Uuid()), sa.column("store_id", sa.Uuid())
)
_locations = sa.table("locations", sa.column("id", sa.Uuid()), sa.column("code", sa.String(32)))
_overrides = sa.table(
    "price_overrides", sa.column("id", sa.Uuid()), sa.column("store_id", sa.Uuid())
)


def _stores_of_earlier_batches(bind: sa.Connection) -> list[dict[str, object]]:
    by_code = dict(bind.execute(sa.select(_locations.c.code, _locations.c.id)).all())
    by_override = {
        str(override): store
        for override, store in bind.execute(
            sa.select(_overrides.c.id, _overrides.c.store_id).where(
                _overrides.c.store_id.is_not(None)
            )
        )
    }
    links = []
    for batch_id, kind, report in bind.execute(
        sa.select(_batches.c.id, _batches.c.kind, _batches.c.report)
    ):
        stores = set()
        for entry in report or []:
            if kind == "stock" and entry.get("location") in by_code:
                stores.add(by_code[entry["location"]])
            elif kind == "prices" and entry.get("price_override_id") in by_override:
                stores.add(by_override[entry["price_override_id"]])
        links += [{"batch_id": batch_id, "store_id": store} for store in sorted(stores, key=str)]
    return links


def upgrade() -> None:
    op.create_table(
        "import_batch_stores",
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["import_batches.id"],
            name=op.f("fk_import_batch_stores_batch_id_import_batches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["locations.id"], name=op.f("fk_import_batch_stores_store_id_locations")
        ),
        sa.PrimaryKeyConstraint("batch_id", "store_id", name=op.f("pk_import_batch_stores")),
    )
    with op.batch_alter_table("import_batch_stores", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_import_batch_stores_store_id"), ["store_id"], unique=False
        )
    links = _stores_of_earlier_batches(op.get_bind())
    if links:
        op.bulk_insert(_links, links)


def downgrade() -> None:
    with op.batch_alter_table("import_batch_stores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_import_batch_stores_store_id"))
    op.drop_table("import_batch_stores")
