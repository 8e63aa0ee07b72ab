"""`python -m benchmarks [NAME ...]` (make bench): run benchmarks/bench_*.py, print their figures.

Each module has `main() -> list[tuple[str, str]]` returning (figure, value with unit) rows.
Benchmarks are measurements, not tests: nothing here passes or fails.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"{platform.node()} {platform.machine()} {cpu_model()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, {platform.platform()}, load average {load}")


def run(only: list[str]) -> int:
    here = Path(__file__).resolve().parent
    print(f"machine: {machine()}")
    failed = 0
    for path in sorted(here.glob("bench_*.py")):
        name = path.stem
        if only and name not in only and name.removeprefix("bench_") not in only:
            continue
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
    # `python -m benchmarks [NAME ...]` runs only those (e.g. `hub` or `bench_hub`).
    sys.exit(run(sys.argv[1:]))
