"""Imports every context's tables so that one metadata describes the whole database."""

from __future__ import annotations

from zhongtai.catalog import models as catalog_models
from zhongtai.core import audit, idempotency, outbox, reference
from zhongtai.core.auth import models as auth_models
from zhongtai.core.db import Base
from zhongtai.fulfillment import models as fulfillment_models
from zhongtai.guides import models as guides_models
from zhongtai.guides import recommendation_models, task_models
from zhongtai.integrations import import_models, marketplace_models
from zhongtai.integrations import models as integrations_models
from zhongtai.inventory import models as inventory_models
from zhongtai.loyalty import models as loyalty_models
from zhongtai.members import models as members_models
from zhongtai.orders import models as orders_models
from zhongtai.stores import models as stores_models

metadata = Base.metadata

__all__ = [
    "audit",
    "auth_models",
    "catalog_models",
    "fulfillment_models",
    "guides_models",
    "idempotency",
    "import_models",
    "integrations_models",
    "inventory_models",
    "loyalty_models",
    "marketplace_models",
    "members_models",
    "metadata",
    "orders_models",
    "outbox",
    "recommendation_models",
    "reference",
    "stores_models",
    "task_models",
]
