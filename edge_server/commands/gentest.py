"""`nsp-edge gentest list|next|report|scenario`: generator test records and reports.

    nsp-edge gentest list --config site.toml
    nsp-edge gentest next --config site.toml          # the NFPA 110 window of the next test
    nsp-edge gentest report 12 --config site.toml --out test-12.pdf
    nsp-edge gentest scenario [--set gen_will_start=false] [--cut-mains-after-min 10]

Reads site.db directly (WAL: safe while the service runs). Tests are started through the API
(POST /api/v1/gentests, role technician): a command to the generator needs an account.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from edge_server.clock import SystemClock
from edge_server.commands import output_file
from edge_server.config import ConfigError, SiteConfig, load_config
from edge_server.gentest.store import GenTestStore
from edge_server.storage.db import open_db


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("gentest", help="generator test records, reports and the scenario",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="gentest_action", required=True, metavar="ACTION")
    ls = actions.add_parser("list", help="list the generator tests, newest first")
    ls.add_argument("--config", type=Path, required=True, help="the site's TOML configuration")
    ls.add_argument("--limit", type=int, default=50)
    nx = actions.add_parser("next", help="when the next monthly test is due")
    nx.add_argument("--config", type=Path, required=True, help="the site's TOML configuration")
    rp = actions.add_parser("report", help="write the one-page PDF report of one test")
    rp.add_argument("id", type=int, help="test id (see `nsp-edge gentest list`)")
    rp.add_argument("--config", type=Path, required=True, help="the site's TOML configuration")
    rp.add_argument("--out", type=output_file, required=True, help="PDF file to write")
    sc = actions.add_parser("scenario", help="run the generator-monthly-test scenario on a "
                                             "virtual node")
    sc.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a world key set before the test, e.g. gen_will_start=false")
    sc.add_argument("--cut-mains-after-min", type=float, default=None,
                    help="cut mains this many minutes after the start command")
    sc.add_argument("--duration-min", type=_minutes, default=None,
                    help="planned run under load (default [gentest] duration_min, 30); shorter "
                         "than the site minimum it runs as a short exercise, never PASSED")
    sc.add_argument("--out", type=output_file, help="write the result as JSON to this file")
    p.set_defaults(func=run)


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 24 * 60:
        raise argparse.ArgumentTypeError(f"{text!r}: give minutes, more than 0 and at most 1440")
    return value


def _store(config: SiteConfig) -> GenTestStore:
    db = Path(config.storage.data_dir) / "site.db"
    if not db.exists():
        raise FileNotFoundError(f"{db}: no site database yet (has the service run?)")
    return GenTestStore(open_db(db))


def _world_value(text: str) -> object:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return float(text)
    except ValueError:
        return text


def run(args: argparse.Namespace) -> int:
    action = args.gentest_action
    if action == "scenario":
        return _scenario(args)
    try:
        config = load_config(args.config)
        store = _store(config)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"nsp-edge gentest {action}: {exc}", file=sys.stderr)
        return 2
    try:
        if action == "list":
            for rec in store.list(args.limit):
                print(f"{rec.id:5d}  {rec.started_at:%Y-%m-%d %H:%M}  {rec.outcome.value:22s} "
                      f"{rec.started_by}")
            return 0
        if action == "next":
            from edge_server.gentest.schedule import next_due

            due = next_due(SystemClock().now(), config.rules, store.last_passed_at())
            print(json.dumps(due.to_json(), indent=2, ensure_ascii=False))
            return 0
        from edge_server.gentest.report import render_pdf
        from edge_server.gentest.store import GenTestNotFound

        try:
            rec = store.get(args.id)
        except GenTestNotFound as exc:
            print(f"nsp-edge gentest report: {exc}", file=sys.stderr)
            return 2
        args.out.write_bytes(render_pdf(rec, config.site.name or config.site.id,
                                        config.gentest, config.site.timezone))
        print(f"{args.out}: report of generator test {rec.id} ({rec.outcome.value})")
        return 0
    finally:
        store.conn.close()


def _scenario(args: argparse.Namespace) -> int:
    from edge_server.gentest.scenario import run_gentest_scenario
    from edge_server.scenarios.library import GENERATOR_MONTHLY_TEST

    world: dict[str, object] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"nsp-edge gentest scenario: --set {item!r}: use KEY=VALUE", file=sys.stderr)
            return 2
        world[key.strip()] = _world_value(value)
    cut = None if args.cut_mains_after_min is None else args.cut_mains_after_min * 60
    with tempfile.TemporaryDirectory(prefix="nsp-gentest-") as tmp:
        result = asyncio.run(run_gentest_scenario(
            GENERATOR_MONTHLY_TEST, Path(tmp), world=world, cut_mains_after_s=cut,
            duration_min=args.duration_min,
            progress=lambda text: print(text, file=sys.stderr)))
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    print(f"generator test: {result['test']['outcome']}", file=sys.stderr)
    return 0
