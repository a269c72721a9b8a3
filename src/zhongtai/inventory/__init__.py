"""Inventory: one real-time stock truth per (location, SKU), its ledger, reservations and ATP."""
