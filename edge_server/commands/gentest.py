"""`nsp-edge gentest start|status|list|next|report|scenario`: generator tests for people.

    nsp-edge gentest start --config site.toml --token-file ~/.nsp-token [--short-exercise]
    nsp-edge gentest status --config site.toml        # the running test, the last, the next
    nsp-edge gentest list --config site.toml
    nsp-edge gentest next --config site.toml          # the NFPA 110 window of the next test
    nsp-edge gentest report 12 --config site.toml --out test-12.pdf
    nsp-edge gentest scenario [--set gen_will_start=false] [--cut-mains-after-min 10]

Tables with times in the site's zone ([site] timezone); `--json` prints the API's JSON (UTC)
for machines. `start` and `status` ask the running service (its [api] listen address, or --url):
a command to the generator goes through the API's interlocks (never while mains is absent) and
needs a technician's token (--token-file, or the environment variable NSP_EDGE_TOKEN), so the
event log says who gave it. `list`, `next` and `report` read site.db directly (WAL: safe while
the service runs).
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
    st = actions.add_parser("start", help="start a generator test now (role technician)")
    _remote_args(st)
    st.add_argument("--notes", default="", help="remarks for the report")
    st.add_argument("--short-exercise", action="store_true",
                    help="a run shorter than [gentest] min_duration_min: recorded as a short "
                         "exercise, never PASSED, never the monthly test")
    ss = actions.add_parser("status", help="the running test, the last one and the next due")
    _remote_args(ss)
    ls = actions.add_parser("list", help="list the generator tests, newest first")
    ls.add_argument("--config", type=Path, required=True, help="the site's TOML configuration")
    ls.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    ls.add_argument("--json", action="store_true", help="JSON for machines (times in UTC)")
    nx = actions.add_parser("next", help="when the next monthly test is due")
    nx.add_argument("--config", type=Path, required=True, help="the site's TOML configuration")
    nx.add_argument("--json", action="store_true", help="JSON for machines (times in UTC)")
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


def _remote_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="the site's TOML configuration")
    p.add_argument("--url", help="the edge service (default: http:// and its [api] listen)")
    p.add_argument("--token-file", type=Path, metavar="FILE",
                   help="a file holding your API token (default: $NSP_EDGE_TOKEN)")
    p.add_argument("--json", action="store_true", help="JSON for machines (times in UTC)")


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
    if action in ("start", "status"):
        from edge_server.commands.gentest_remote import run_remote

        return asyncio.run(run_remote(args))
    try:
        config = load_config(args.config)
        store = _store(config)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"nsp-edge gentest {action}: {exc}", file=sys.stderr)
        return 2
    try:
        if action == "list":
            from edge_server.commands.gentest_remote import list_table

            recs = store.list(args.limit)
            if args.json:
                print(json.dumps([r.to_json() for r in recs], indent=2, ensure_ascii=False))
            else:
                print(list_table([r.to_json() for r in recs], config.site.timezone))
            return 0
        if action == "next":
            from edge_server.commands.gentest_remote import next_table
            from edge_server.gentest.schedule import next_due

            due = next_due(SystemClock().now(), config.rules, store.last_passed_at()).to_json()
            if args.json:
                print(json.dumps(due, indent=2, ensure_ascii=False))
            else:
                print(next_table(due, config.site.timezone))
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
