"""Loyalty: the points ledger (lots, entries, expiry, verify), earn rules, tiers, coupons and
promotions.

Importing the package registers how points follow a member through merges and exports (the
handlers that earn points for orders are the orders context's: `zhongtai.orders.points`).
"""

from zhongtai.loyalty import membership as _membership  # noqa: F401  (registers merge/export)
