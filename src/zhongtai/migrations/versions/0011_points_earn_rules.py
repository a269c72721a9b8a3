"""points earn rules and pending points

Revision ID: 0011_points_earn_rules
Revises: 0009_guide_tasks
Create Date: 2026-11-26 04:35:26.176342
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import zhongtai.core.db

revision: str = "0011_points_earn_rules"
down_revision: str | None = "0009_guide_tasks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENTRY_KINDS = (
    "'earn', 'redeem', 'expire', 'adjust', 'reverse', 'settle', 'merge_in', 'merge_out'"
)


def upgrade() -> None:
    op.create_table(
        "points_earn_rules",
        sa.Column(
            "kind",
            sa.Enum(
                "category",
                "campaign",
                name="earnrulekind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("multiplier_pct", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Uuid(), nullable=True),
        sa.Column("starts_at", zhongtai.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ends_at", zhongtai.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("store_ids", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", zhongtai.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deactivated_at", zhongtai.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "(kind = 'category' AND category_id IS NOT NULL AND ends_at IS NULL) OR "
            "(kind = 'campaign' AND category_id IS NULL AND starts_at IS NOT NULL "
            "AND ends_at IS NOT NULL AND ends_at > starts_at)",
            name=op.f("ck_points_earn_rules_kind_has_its_terms"),
        ),
        sa.CheckConstraint(
            "multiplier_pct >= 0 AND multiplier_pct <= 1000",
            name=op.f("ck_points_earn_rules_multiplier_in_range"),
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_points_earn_rules_category_id_categories"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_earn_rules")),
    )
    with op.batch_alter_table("points_earn_rules", schema=None) as batch_op:
        batch_op.create_index(
            "ix_points_earn_rules_live", ["kind", "active", "ends_at"], unique=False
        )
        batch_op.create_index(
            "uq_points_earn_rules_live_category",
            ["category_id"],
            unique=True,
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )

    # Existing accounts, entries and lots have nothing pending: the defaults fill them, and are
    # dropped below (the application sets these columns).
    with op.batch_alter_table("points_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_check_constraint(
            batch_op.f("ck_points_accounts_pending_not_negative"), "pending >= 0"
        )

    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pending_change", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("pending_after", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("matures_at", zhongtai.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("multipliers", sa.JSON(), nullable=True))
        batch_op.drop_constraint(batch_op.f("ck_points_entries_entrykind"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_points_entries_entrykind"), f"kind IN ({ENTRY_KINDS}, 'mature')"
        )

    with op.batch_alter_table("points_lots", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("matures_at", zhongtai.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("pending", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_points_lots_pending_has_a_date"),
            "NOT pending OR matures_at IS NOT NULL",
        )
        batch_op.create_index(
            "ix_points_lots_pending_maturity",
            ["matures_at"],
            unique=False,
            sqlite_where=sa.text("pending"),
            postgresql_where=sa.text("pending"),
        )

    with op.batch_alter_table("points_accounts", schema=None) as batch_op:
        batch_op.alter_column("pending", server_default=None)
    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.alter_column("pending_change", server_default=None)
        batch_op.alter_column("pending_after", server_default=None)
    with op.batch_alter_table("points_lots", schema=None) as batch_op:
        batch_op.alter_column("pending", server_default=None)


def downgrade() -> None:
    # Pending points become spendable, and maturing entries (which then move nothing) go, so
    # the older schema's books still add up: balance == lots == entries.
    op.execute("UPDATE points_accounts SET balance = balance + pending")
    op.execute(
        "UPDATE points_entries SET points = points + pending_change WHERE pending_change <> 0"
    )
    op.execute(
        "UPDATE points_entries SET balance_after = balance_after + pending_after "
        "WHERE pending_after <> 0"
    )
    op.execute("DELETE FROM points_entries WHERE kind = 'mature'")
    with op.batch_alter_table("points_lots", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_points_lots_pending_maturity",
            sqlite_where=sa.text("pending"),
            postgresql_where=sa.text("pending"),
        )
        batch_op.drop_constraint(batch_op.f("ck_points_lots_pending_has_a_date"), type_="check")
        batch_op.drop_column("pending")
        batch_op.drop_column("matures_at")

    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_points_entries_entrykind"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_points_entries_entrykind"), f"kind IN ({ENTRY_KINDS})"
        )
        batch_op.drop_column("multipliers")
        batch_op.drop_column("matures_at")
        batch_op.drop_column("pending_after")
        batch_op.drop_column("pending_change")

    with op.batch_alter_table("points_accounts", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("ck_points_accounts_pending_not_negative"), type_="check"
        )
        batch_op.drop_column("pending")

    with op.batch_alter_table("points_earn_rules", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_points_earn_rules_live_category",
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )
        batch_op.drop_index("ix_points_earn_rules_live")

    op.drop_table("points_earn_rules")
