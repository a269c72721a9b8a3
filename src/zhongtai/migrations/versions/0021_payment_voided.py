"""payment voided: a payment released at its provider before capture

Revision ID: 0021_payment_voided
Revises: 0020_unpaid_expiry_failures
Create Date: 2026-11-27 16:00:00.000000

A wallet payment the customer left unapproved used to block every other tender until the order
expired, and a cancelled order's authorisation was never released. Both are now voided at the
provider; the payment's status says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0021_payment_voided"
down_revision: str | None = "0020_unpaid_expiry_failures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WITHOUT = "status IN ('pending', 'authorized', 'captured', 'failed')"
_WITH = "status IN ('pending', 'authorized', 'captured', 'failed', 'voided')"


def _statuses(allowed: str) -> None:
    with op.batch_alter_table("order_payments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_order_payments_paymentstatus"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_order_payments_paymentstatus"), allowed)


def upgrade() -> None:
    _statuses(_WITH)


def downgrade() -> None:
    # A voided payment took no money: as far as the older schema knows, it failed.
    op.execute("UPDATE order_payments SET status = 'failed' WHERE status = 'voided'")
    _statuses(_WITHOUT)
