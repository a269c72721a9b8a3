"""Shared kernel: settings, database, ids, money, clock, errors, auth and idempotency."""
