"""Loyalty: the points ledger (lots, entries, expiry, verify), earn rules, tiers, coupons and
promotions.

Importing the package registers how points follow a member through merges and exports, and
the handlers that earn points for completed orders and take them back on returns.
"""

from zhongtai.loyalty import handlers as _handlers  # noqa: F401  (registers event handlers)
from zhongtai.loyalty import membership as _membership  # noqa: F401  (registers merge/export)
