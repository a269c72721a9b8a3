"""substitute returns: the substitute a store sent for a line can come back too

Revision ID: 0022_substitute_returns
Revises: 0021_payment_voided
Create Date: 2026-11-27 16:15:00.000000

A line's substitute could not be returned, and once the line's own picked units came back the
order counted as wholly returned while the customer kept the substitute. A return line now says
whether it brings back the substitute (part of its key: one return may bring back both), and
the order line counts the substitute units back and what they refunded.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_substitute_returns"
down_revision: str | None = "0021_payment_voided"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "substitute_returned_quantity", sa.Integer(), nullable=False, server_default="0"
            )
        )
        batch_op.add_column(
            sa.Column(
                "substitute_returned_refund", sa.Integer(), nullable=False, server_default="0"
            )
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_order_lines_substitute_returned_within"),
            "substitute_returned_quantity >= 0 AND "
            "substitute_returned_quantity <= COALESCE(substitute_quantity, 0)",
        )
    with op.batch_alter_table("order_return_lines", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("substitute", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.drop_constraint("pk_order_return_lines", type_="primary")
        batch_op.create_primary_key(
            "pk_order_return_lines", ["return_id", "order_line_id", "substitute"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM order_return_lines WHERE substitute")
    with op.batch_alter_table("order_return_lines", schema=None) as batch_op:
        batch_op.drop_constraint("pk_order_return_lines", type_="primary")
        batch_op.create_primary_key("pk_order_return_lines", ["return_id", "order_line_id"])
        batch_op.drop_column("substitute")
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("ck_order_lines_substitute_returned_within"), type_="check"
        )
        batch_op.drop_column("substitute_returned_refund")
        batch_op.drop_column("substitute_returned_quantity")
