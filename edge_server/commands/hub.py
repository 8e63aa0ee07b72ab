"""`nsp-edge hub`: run the C-NSP hub, register sites, add operators.

nsp-edge hub --data DIR --listen HOST:PORT [--stale-min 15]
nsp-edge hub add-site ID [ID ...] --data DIR     # prints "ID KEY" per site (give KEY to the site)
nsp-edge hub add-user NAME --role operator|admin --data DIR   # last word printed: the token
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_server.clock import SystemClock
from edge_server.uplink.protocol import SITE_ID_PATTERN


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("hub", help="run the C-NSP hub (regional readiness board, uplink receiver)")
    p.add_argument("--data", type=Path, default=None, help="hub data directory (SQLite)")
    p.add_argument("--listen", default="127.0.0.1:8090", help="HOST:PORT (default 127.0.0.1:8090)")
    p.add_argument(
        "--stale-min",
        type=float,
        default=15.0,
        help="minutes without contact before a site shows UNKNOWN (default 15)",
    )
    p.set_defaults(func=run, hub_command=None)
    hs = p.add_subparsers(dest="hub_command", metavar="SUBCOMMAND")
    a = hs.add_parser("add-site", help="register sites; prints 'ID KEY' per site")
    a.add_argument("ids", nargs="+", metavar="ID")
    a.add_argument("--data", type=Path, default=argparse.SUPPRESS)
    u = hs.add_parser("add-user", help="add or reset an operator; prints a token")
    u.add_argument("name")
    u.add_argument("--role", choices=("operator", "admin"), required=True)
    u.add_argument("--data", type=Path, default=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    import re

    from edge_server.hub.store import HubStore

    if args.data is None:
        print("nsp-edge hub: --data DIR is required", file=sys.stderr)
        return 2
    data: Path = args.data
    if args.hub_command == "add-site":
        bad = [i for i in args.ids if not re.match(SITE_ID_PATTERN, i)]
        if bad:
            print(
                f"nsp-edge hub add-site: invalid site id(s) {', '.join(bad)}: use lower-case "
                "letters, digits and '-' (2-63 characters)",
                file=sys.stderr,
            )
            return 2
        store = HubStore(data)
        try:
            for site_id in args.ids:
                print(f"{site_id} {store.add_site(site_id, SystemClock().now())}")
        finally:
            store.close()
        return 0
    if args.hub_command == "add-user":
        store = HubStore(data)
        try:
            token = store.add_user(args.name, args.role)
        finally:
            store.close()
        print(f"user {args.name} ({args.role}) added; token (shown once): {token}")
        return 0
    return _serve(data, args.listen, args.stale_min)


def _serve(data: Path, listen: str, stale_min: float) -> int:
    import uvicorn

    from edge_server.hub.app import HubSettings, create_app
    from edge_server.hub.store import HubStore

    host, _, port_text = listen.rpartition(":")
    if not host or not port_text.isdigit():
        print(f"nsp-edge hub: --listen {listen!r}: use HOST:PORT", file=sys.stderr)
        return 2
    store = HubStore(data)
    app = create_app(store, SystemClock(), HubSettings(stale_after_min=stale_min))
    try:
        uvicorn.run(app, host=host, port=int(port_text), log_level="warning", access_log=False)
    finally:
        store.close()
    return 0
