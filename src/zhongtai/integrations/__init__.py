"""Integrations: the event relay and what it delivers to (handlers, webhooks, stream, broker)."""
