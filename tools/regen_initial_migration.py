"""Before the first release only: rewrite the initial migration from the models."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from zhongtai.core.migrate import MIGRATIONS_DIR, alembic_config

for old in (MIGRATIONS_DIR / "versions").glob("*.py"):
    old.unlink()
with tempfile.TemporaryDirectory() as tmp:
    url = f"sqlite:///{Path(tmp) / 'empty.db'}"
    command.revision(
        alembic_config(url), message="initial schema", autogenerate=True, rev_id="0001"
    )
print("initial migration regenerated", file=sys.stderr)
