"""return gift adjustments: a gift's worth withheld from a return's refund, or given back

Revision ID: 0026_return_gift_adjustments
Revises: 0025_webhook_cancel_claims
Create Date: 2026-11-28 10:00:00.000000

Returning the goods that earned a gift coupon's gift (满额赠), so that what the customer keeps
no longer reaches the coupon's threshold, refunded everything while she kept the gift. A return
now withholds the gift's worth from its refund when she keeps it, and gives it back when the
gift comes back later: one row per return and gift it settled, with why. The sum of a gift
line's rows is what is withheld for it now.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026_return_gift_adjustments"
down_revision: str | None = "0025_webhook_cancel_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "order_return_gift_adjustments"


def upgrade() -> None:
    op.create_table(
        _TABLE,
        sa.Column("return_id", sa.Uuid(), nullable=False),
        sa.Column("gift_line_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("coupon_id", sa.Uuid(), nullable=False),
        sa.Column("gift_sku_id", sa.Uuid(), nullable=False),
        sa.Column("threshold_fen", sa.Integer(), nullable=False),
        sa.Column("kept_fen", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("why", sa.String(length=400), nullable=False),
        sa.CheckConstraint(
            "amount <> 0", name=op.f("ck_order_return_gift_adjustments_amount_not_zero")
        ),
        sa.ForeignKeyConstraint(
            ["gift_line_id"],
            ["order_lines.id"],
            name=op.f("fk_order_return_gift_adjustments_gift_line_id_order_lines"),
        ),
        sa.ForeignKeyConstraint(
            ["gift_sku_id"],
            ["skus.id"],
            name=op.f("fk_order_return_gift_adjustments_gift_sku_id_skus"),
        ),
        sa.ForeignKeyConstraint(
            ["return_id"],
            ["order_returns.id"],
            name=op.f("fk_order_return_gift_adjustments_return_id_order_returns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "return_id", "gift_line_id", name=op.f("pk_order_return_gift_adjustments")
        ),
    )
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_order_return_gift_adjustments_gift_line_id"),
            ["gift_line_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table(_TABLE, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_return_gift_adjustments_gift_line_id"))
    op.drop_table(_TABLE)
