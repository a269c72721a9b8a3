"""The same barcode lookup served through async database access, to decide sync vs async by
measurement (see bench/api.py). Not part of the product: the app adds one route to it.

Authentication (the same dependency, the same in-memory key cache), planning and reading the
rows are shared with the product's endpoint; only the statement runs on an async psycopg
connection instead of a worker thread.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import create_async_engine

from zhongtai.app import create_app
from zhongtai.catalog.lookup import plan_barcode_lookup, read_barcode_rows
from zhongtai.catalog.schemas import BarcodeLookupOut
from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Permission
from zhongtai.core.http.security import require
from zhongtai.core.settings import get_settings


def create_bench_app() -> FastAPI:
    settings = get_settings()
    app = create_app(settings)
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=0,  # with the sync pool beside it, stay under max_connections
        pool_recycle=1800,
    ).execution_options(isolation_level="AUTOCOMMIT")

    @app.get("/bench/async/barcodes/{code}", response_model=BarcodeLookupOut)
    async def lookup(
        code: str, principal: Principal = Depends(require(Permission.CATALOG_READ))
    ) -> Any:
        query = plan_barcode_lookup(code, caller=principal)
        async with engine.connect() as conn:
            rows = (await conn.execute(query.statement, query.params)).all()
        return BarcodeLookupOut.of(read_barcode_rows(query, rows))

    return app
