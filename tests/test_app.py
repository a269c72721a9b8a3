"""What `zhongtai serve` runs in each worker."""

from __future__ import annotations

import gc

import pytest
from fastapi import FastAPI

from zhongtai import app as app_module


def test_the_served_app_is_the_built_app_with_its_objects_frozen_out_of_collections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = FastAPI()
    monkeypatch.setattr(app_module, "create_app", lambda: built)
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        assert app_module.served_app() is built
        assert gc.get_freeze_count() > 0
        assert not any(built is o for o in gc.get_objects()), (
            "the app is out of the collector's walk"
        )
    finally:
        gc.unfreeze()
