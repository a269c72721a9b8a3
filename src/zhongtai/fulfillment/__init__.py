"""Store fulfilment: sourcing, delivery promise, pick/pack/pickup/courier tasks and SLA."""
