"""`nsp-edge scenario list` / `nsp-edge scenario run NAME [--out result.json] [--storage on|off]`.

Runs a scripted situation (edge_server/scenarios/library.py) against real virtual nodes, the
real poller and the rules on accelerated time, and writes what the rules did: alerts
(code, raised_at, cleared_at), events and the readiness timeline. Exit code 0 when exactly
the expected codes were raised, 1 when not, 2 on a usage error. The gentest-* scenarios run the
monthly generator test against the virtual DSE controller and write the test's `outcome`; exit
code 0 when it is the expected one and the safety checks hold.

--storage on|off runs the real storage part too (site.db in the workdir), with thinning on or
off (docs/storage.md, Thinning), and the result's `storage` says how many readings were stored.
--storage none (the default) stores no readings, as before; the gentest-* scenarios always
store (the test's record needs it) and say how many only with on|off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from edge_server.commands import output_file
from edge_server.scenarios import library


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("scenario", help="run scripted situations against virtual nodes",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="scenario_action", required=True, metavar="ACTION")
    actions.add_parser("list", help="list the scenarios")
    run_p = actions.add_parser("run", help="run one scenario")
    run_p.add_argument("name", help="scenario name (see `nsp-edge scenario list`)")
    run_p.add_argument("--out", type=output_file, help="write the result as JSON to this file")
    run_p.add_argument("--workdir", type=Path,
                       help="keep the edge's files here (default: a temporary directory)")
    run_p.add_argument("--storage", choices=("on", "off", "none"), default="none",
                       help="store readings in site.db with thinning on or off and report how "
                            "many; none (default): store no readings")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.scenario_action == "list":
        for s in library.SCENARIOS:
            print(f"{s.name:28s} {s.duration_s / 3600:5.1f} h  {s.title_en}")
            print(f"{'':28s} {'':5s}    {s.title_nl}")
            outcome = s.extra.get("gentest_outcome")  # a generator-test scenario
            expects = f"test outcome {outcome}" if outcome else ", ".join(sorted(s.expected))
            print(f"{'':28s} {'':5s}    expects: {expects}")
        return 0
    try:
        scenario = library.get(args.name)
    except KeyError as exc:
        print(f"nsp-edge scenario run: {exc.args[0]}", file=sys.stderr)
        return 2
    from edge_server.gentest.scenario import run_gentest_scenario
    from edge_server.scenarios.runner import run_scenario, stored, with_storage

    if args.storage != "none":
        scenario = with_storage(scenario, thinning=args.storage == "on")
    # the gentest-* scenarios run the generator-test runner (edge_server/gentest/scenario.py)
    run_one = run_gentest_scenario if "gentest_start_phase" in scenario.extra else run_scenario

    def progress(text: str) -> None:
        print(text, file=sys.stderr)

    def run_in(workdir: Path) -> dict[str, Any]:
        result = asyncio.run(run_one(scenario, workdir, progress=progress))
        if args.storage != "none" and "storage" not in result:  # the generator-test runner
            result["storage"] = {"thinning": args.storage == "on",
                                 "readings": stored(workdir / "edge-data")["readings"]}
        return result

    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = run_in(args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="nsp-scenario-") as tmp:
            result = run_in(Path(tmp))
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    if "outcome" in result:
        print(f"  generator test: {result['outcome']} ({result['test']['end']}), expected "
              f"{result['expected_outcome']}", file=sys.stderr)
    if "storage" in result:
        print(f"  readings stored: {result['storage']['readings']} (thinning "
              f"{'on' if result['storage']['thinning'] else 'off'})", file=sys.stderr)
    for a in result.get("alerts", []):
        print(f"  {a['code']:22s} raised {a['raised_at']}  cleared {a['cleared_at']}",
              file=sys.stderr)
    for c in result.get("checks", []):  # the link rehearsal's checks (docs/radio.md)
        print(f"  {'ok ' if c['passed'] else 'BAD'} {c['check']:36s} {c['measured']}",
              file=sys.stderr)
    failed = [c["check"] for c in result.get("checks", []) if not c["passed"]]
    verdict = "PASSED" if result["passed"] else (
        f"FAILED: missing {result.get('missing', [])}, unexpected {result.get('unexpected', [])}"
        + (f", failed checks {failed}" if failed else ""))
    print(f"scenario {scenario.name}: {verdict} ({result['wall_s']} s)", file=sys.stderr)
    return 0 if result["passed"] else 1
