"""Imports every context's tables so that one metadata describes the whole database."""

from __future__ import annotations

from zhongtai.catalog import models as catalog_models
from zhongtai.core import idempotency, outbox
from zhongtai.core.auth import models as auth_models
from zhongtai.core.db import Base
from zhongtai.stores import models as stores_models

metadata = Base.metadata

__all__ = [
    "auth_models",
    "catalog_models",
    "idempotency",
    "metadata",
    "outbox",
    "stores_models",
]
