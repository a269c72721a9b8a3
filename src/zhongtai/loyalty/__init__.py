"""Loyalty: the points ledger (lots, entries, expiry, verify), earn rules; tiers and coupons next.

Importing the package registers how points follow a member through merges and exports.
"""

from zhongtai.loyalty import membership as _membership  # noqa: F401  (registers merge/export)
