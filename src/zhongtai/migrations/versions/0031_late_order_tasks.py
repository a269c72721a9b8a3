"""late order tasks: a guide says sorry for an order of her customer's that came late

Revision ID: 0031_late_order_tasks
Revises: 0030_capability_pauses
Create Date: 2026-11-28 12:40:00.000000

The guide's task list gains ``late_order``: an order of one of her customers missed the time
promised (the promise clock's ``missed_promises``), so she says sorry and where it stands.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0031_late_order_tasks"
down_revision: str | None = "0030_capability_pauses"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = "'pickup_waiting', 'after_sale', 'points_expiring', 'birthday', 'dormant', 'new_arrivals'"


def _kinds(allowed: str) -> None:
    with op.batch_alter_table("guide_tasks", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_guide_tasks_taskkind"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_guide_tasks_taskkind"), f"kind IN ({allowed})")


def upgrade() -> None:
    _kinds(f"{_KINDS}, 'late_order'")


def downgrade() -> None:
    op.execute("DELETE FROM guide_tasks WHERE kind = 'late_order'")
    _kinds(_KINDS)
