"""`nsp-edge users add|list|remove`: the accounts of the edge API, in the users table of site.db.

    nsp-edge users add anna --role operator --config site.toml    # prints the token ONCE
    nsp-edge users list --data /var/lib/nsp-edge
    nsp-edge users remove anna --config site.toml

The token is the last word of the last line `add` prints; only its SHA-256 digest is stored
(edge_server/auth.py says why that is enough). Lost it? Remove the user and add it again.
Safe while the service runs (WAL; the service reads the users table on every request).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_server.auth import Role, UserStore
from edge_server.clock import SystemClock
from edge_server.config import ConfigError, load_config
from edge_server.storage.component import site_db_path
from edge_server.storage.db import open_db
from edge_server.storage.sqlite import migrate_storage

ROLE_NAMES = [r.label for r in Role]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("users", help="manage the API accounts (tokens) of this site")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    def where(q: argparse.ArgumentParser) -> None:
        g = q.add_mutually_exclusive_group(required=True)
        g.add_argument("--config", type=Path, help="the site's TOML configuration")
        g.add_argument("--data", type=Path, metavar="DIR",
                       help="the data directory holding site.db (instead of --config)")

    a = actions.add_parser("add", help="create a user and print its token (shown only once)")
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=ROLE_NAMES,
                   help="viewer < operator < technician < admin")
    where(a)
    ls = actions.add_parser("list", help="list users and roles (tokens cannot be shown)")
    where(ls)
    rm = actions.add_parser("remove", help="delete a user; its token stops working at once")
    rm.add_argument("name")
    where(rm)
    p.set_defaults(func=run)


def _data_dir(args: argparse.Namespace) -> Path:
    if args.data is not None:
        return Path(args.data)
    return Path(load_config(args.config).storage.data_dir)


def run(args: argparse.Namespace) -> int:
    try:
        data_dir = _data_dir(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    conn = open_db(site_db_path(data_dir))
    try:
        migrate_storage(conn)
        users = UserStore(conn)
        if args.action == "add":
            try:
                token = users.add(args.name, Role.parse(args.role), SystemClock().now())
            except ValueError as exc:
                print(f"nsp-edge users add: {exc}", file=sys.stderr)
                return 2
            print(f"Created user {args.name} with role {args.role} in {site_db_path(data_dir)}.")
            print("Store this token now: it is shown only once and cannot be recovered.")
            print(f"Token: {token}")
            return 0
        if args.action == "list":
            rows = users.list()
            if not rows:
                print("no users yet: add one with nsp-edge users add NAME --role ROLE")
            for u in rows:
                print(f"{u.name:<24} {u.role.label:<11} created {u.created_at}")
            return 0
        if users.remove(args.name):
            print(f"Removed user {args.name}; its token no longer works.")
            return 0
        print(f"nsp-edge users remove: name: no user {args.name!r} "
              "(see: nsp-edge users list)", file=sys.stderr)
        return 1
    finally:
        conn.close()
