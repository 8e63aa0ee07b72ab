"""`python -m benchmarks` (make bench): run every benchmarks/bench_*.py and print its figures.

Each module has `main() -> list[tuple[str, str]]` returning (figure, value with unit) rows.
Benchmarks are measurements, not tests: nothing here passes or fails.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from pathlib import Path


def machine() -> str:
    return (f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, {platform.platform()}")


def run() -> int:
    here = Path(__file__).resolve().parent
    print(f"machine: {machine()}")
    failed = 0
    for path in sorted(here.glob("bench_*.py")):
        name = path.stem
        print(f"\n== {name}")
        try:
            rows = importlib.import_module(f"benchmarks.{name}").main()
        except Exception as exc:  # one broken benchmark must not hide the others
            print(f"  FAILED: {type(exc).__name__}: {exc}")
            failed += 1
            continue
        for figure, value in rows:
            print(f"  {figure}: {value}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run())
