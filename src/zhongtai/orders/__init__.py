"""Orders of every channel: checkout, pricing, payments, POS sales, returns and refunds."""
