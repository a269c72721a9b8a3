"""Entry point of `bench/run NAME [--quick]` and `bench/run all`."""

from __future__ import annotations

import argparse
import importlib
import sys

from bench import harness

BENCHMARKS = ["api", "inventory", "orders", "loyalty", "events", "guides"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("name", choices=[*BENCHMARKS, "all", "report"])
    parser.add_argument("--quick", action="store_true", help="shorter runs, for a smoke check")
    args = parser.parse_args(argv)
    names = BENCHMARKS if args.name == "all" else [] if args.name == "report" else [args.name]
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        metrics, notes = module.run(quick=args.quick)
        path = harness.write_result(name, metrics, notes)
        print(f"{name}: {metrics} -> {path}")
    harness.write_report()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
