"""Stores, warehouses and DCs: where they are, when they open, what they can do, pilot rollout."""
