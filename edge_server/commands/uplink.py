"""`nsp-edge uplink`: the messages the C-NSP hub refused for good (the outbox's dead letters).

    nsp-edge uplink dead-letters --config site.toml [--json]   # id, kind, refused at, reason
    nsp-edge uplink requeue ID [ID ...] --config site.toml      # back to the END of the outbox
    nsp-edge uplink requeue --all --config site.toml

A requeued message keeps its id, so a message the hub somehow holds already is not stored twice.
Safe while the service runs (SQLite WAL, one transaction per move): the running sender takes the
requeued messages at its next exchange. Refused again, a message is back in the dead letters.
docs/uplink-protocol.md ("Refused messages / dead letters") says which answers are refusals.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge_server.config import ConfigError, load_config
from edge_server.uplink.component import OUTBOX_FILE
from edge_server.uplink.outbox import Outbox


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("uplink", help="the uplink's dead letters: list and requeue them")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = actions.add_parser("dead-letters", help="list the messages the hub refused for good")
    ls.add_argument("--config", type=Path, required=True, help="the site's TOML configuration")
    ls.add_argument("--json", action="store_true", help="one JSON document (with the bodies)")
    rq = actions.add_parser("requeue", help="put dead letters back at the end of the outbox")
    rq.add_argument("ids", nargs="*", metavar="ID", help="message ids (from dead-letters)")
    rq.add_argument("--all", action="store_true", help="every dead letter")
    rq.add_argument("--config", type=Path, required=True, help="the site's TOML configuration")
    p.set_defaults(func=run)


def _err(text: str) -> None:
    print(f"nsp-edge uplink: {text}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if args.action == "requeue" and bool(args.ids) == bool(args.all):
        _err("requeue: give message ids or --all (not both)")
        return 2
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    path = Path(config.storage.data_dir) / OUTBOX_FILE
    if not path.exists():
        _err(f"no outbox at {path}: the uplink has not run with this data_dir ([storage])")
        return 1
    outbox = Outbox(path)
    try:
        if args.action == "dead-letters":
            return _list(outbox, path, args.json)
        return _requeue(outbox, None if args.all else list(args.ids))
    finally:
        outbox.close()


def _list(outbox: Outbox, path: Path, as_json: bool) -> int:
    letters = outbox.dead_letters()
    if as_json:
        docs = [{**d.summary(), "body": d.body} for d in letters]
        print(json.dumps({"outbox": str(path), "dead_letters": docs}, indent=2, ensure_ascii=False))
        return 0
    if not letters:
        print(f"no dead letters in {path}")
        return 0
    print(f"{len(letters)} dead letter(s) in {path}, oldest refusal first:")
    print(f"{'ID':36}  {'KIND':13}  {'REFUSED AT':27}  REASON")
    for d in letters:
        reason = f"HTTP {d.http_status} {d.code}: {d.reason}".replace("\n", " ")
        print(f"{d.id:36}  {d.kind:13}  {d.refused_at:27}  {reason}")
    print("put back after the cause is fixed: nsp-edge uplink requeue ID|--all --config ...")
    return 0


def _requeue(outbox: Outbox, ids: list[str] | None) -> int:
    if ids is not None:
        known = {d.id for d in outbox.dead_letters()}
        unknown = [i for i in ids if i not in known]
        if unknown:
            _err(f"requeue: not a dead letter: {', '.join(unknown)} (nothing requeued; "
                 "list them with `nsp-edge uplink dead-letters`)")
            return 1
    moved = outbox.requeue(ids)
    if not moved:
        print("no dead letters to requeue")
        return 0
    print(f"requeued {len(moved)} message(s) at the end of the outbox (same ids): "
          f"{', '.join(moved)}")
    return 0
