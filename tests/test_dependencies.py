"""Contexts depend on each other one way: a context that another's services call never calls
back into that context's services (it reacts to its events, or the caller hands it plain data).

Pure vocabularies (enums, value objects, pure rules) may be shared; services, models and
APIs may not be reached across a pair that already depends the other way.
"""

from __future__ import annotations

import ast
from pathlib import Path

import zhongtai

PACKAGE = Path(zhongtai.__file__).parent

#: (context, the other context's modules it may import): everything else of the other is off
#: limits, because the other context calls this one's services.
ONE_WAY = {
    # orders use loyalty's services (coupons, points tenders, earning); loyalty shares only
    # the order vocabulary and the pure basket-pricing rules.
    ("loyalty", "orders"): {"zhongtai.orders.kinds", "zhongtai.orders.pricing_rules"},
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _reaches(module: str, other: str) -> bool:
    return module == f"zhongtai.{other}" or module.startswith(f"zhongtai.{other}.")


def test_loyalty_reaches_into_orders_only_for_its_vocabulary_and_pricing_rules() -> None:
    for (context, other), allowed in ONE_WAY.items():
        offenders = {
            f"{path.relative_to(PACKAGE)}: {module}"
            for path in sorted((PACKAGE / context).rglob("*.py"))
            for module in _imports(path)
            if _reaches(module, other)
            and module not in allowed
            and not any(module.startswith(f"{a}.") for a in allowed)
        }
        assert not offenders, f"{context} must not import these from {other}: {offenders}"


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from zhongtai.orders.lifecycle import get_order\nimport zhongtai.orders\n")
    assert {"zhongtai.orders.lifecycle", "zhongtai.orders"} <= _imports(sample)
    assert _reaches("zhongtai.orders.lifecycle", "orders")
    assert not _reaches("zhongtai.ordersx", "orders")
