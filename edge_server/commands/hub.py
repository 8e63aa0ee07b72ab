"""`nsp-edge hub`: run the C-NSP hub, register sites, re-key them, add operators.

nsp-edge hub --data DIR --listen HOST:PORT [--stale-min 15] [--clock-off-min 30]
             [--master-key FILE] [--tls-cert FILE --tls-key FILE]   # HTTPS (hub/tls.py)
nsp-edge hub add-site ID [ID ...] --data DIR [--name N] [--municipality M] [--region R]
                                                 # prints "ID KEY" per site (give KEY to the site)
nsp-edge hub set-site ID --data DIR [--name N] [--municipality M] [--region R]   # for the board
nsp-edge hub rotate-key ID --data DIR [--grace-hours 72]   # "ID KEY"; the old key works meanwhile
nsp-edge hub revoke-key ID --data DIR            # "ID KEY"; the old key is refused at once
nsp-edge hub add-user NAME --role operator|admin --data DIR   # last word printed: the token
nsp-edge hub gentests --data DIR [--from DAY] [--to DAY] [--site ID] [--csv | --json]
                                 # the generator-test register (docs/generator-tests.md)
nsp-edge hub radio --port DEVICE --data DIR   # compact frames by LoRa radio (docs/radio.md)
nsp-edge hub backup --data DIR --out FILE      # consistent while the hub runs (hub/backup.py)
nsp-edge hub restore --from FILE --data NEWDIR  # into a new directory; checks the master key
nsp-edge hub backup|restore ... --db URL       # PostgreSQL: pg_dump / pg_restore into an empty DB

Every command takes --master-key FILE (or $NSP_HUB_MASTER_KEY_FILE; default DIR/master.key): the
key the site keys are encrypted with (docs/security.md). Exit 1 when the hub cannot do it (unknown
or already registered site, missing or wrong master key), 2 for a usage error (the message names
the argument and the fix: a site id given twice, --stale-min out of range, --listen not
HOST:PORT or its port in use, a --data directory this user cannot write); never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from edge_server.clock import SystemClock

if TYPE_CHECKING:
    from edge_server.hub.store import HubStore
from edge_server.uplink.protocol import SITE_ID_PATTERN

_MAX_GRACE_H = 720.0  # 30 days: a longer overlap of two valid keys is no rotation


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("hub", help="run the C-NSP hub (regional readiness board, uplink receiver)")
    p.add_argument("--data", type=Path, default=None,
                   help="hub data directory (hub.sqlite, the master key, radio counts)")
    db_help = ("the hub's database: postgresql://USER@HOST:PORT/DB, shared by several hub "
               "instances (default $NSP_HUB_DB, else DATA/hub.sqlite; docs/hub-postgres.md)")
    p.add_argument("--db", default=None, metavar="URL", help=db_help)
    p.add_argument("--listen", default="127.0.0.1:8090", help="HOST:PORT (default 127.0.0.1:8090)")
    p.add_argument(
        "--stale-min",
        type=float,
        default=15.0,
        help="minutes without contact before a site shows UNKNOWN (default 15)",
    )
    p.add_argument(
        "--clock-off-min",
        type=float,
        default=30.0,
        help="minutes a site's status time may be from the hub's clock before the board flags "
        "its clock (default 30; docs/uplink-protocol.md)",
    )
    master_help = (
        "file holding the master key that encrypts the site keys "
        "(default $NSP_HUB_MASTER_KEY_FILE, else DATA/master.key; docs/security.md)"
    )
    p.add_argument("--master-key", type=Path, default=None, metavar="FILE", help=master_help)
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="hub processes on the one port (default 1); they share only the "
                   "database, like instances on several machines (docs/hub-postgres.md)")
    p.add_argument("--tls-cert", type=Path, default=None, metavar="FILE",
                   help="serve HTTPS with this PEM certificate (chain) (docs/security.md)")
    p.add_argument("--tls-key", type=Path, default=None, metavar="FILE",
                   help="the certificate's PEM private key, mode 600")
    p.set_defaults(func=run, hub_command=None)
    hs = p.add_subparsers(dest="hub_command", metavar="SUBCOMMAND")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--data", type=Path, default=argparse.SUPPRESS)
        sp.add_argument("--master-key", type=Path, default=argparse.SUPPRESS, metavar="FILE")
        sp.add_argument("--db", default=argparse.SUPPRESS, metavar="URL", help=db_help)

    def site_info(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--name", help="the site as people call it, e.g. 'Buurthuis De Linde'")
        sp.add_argument("--municipality", help="e.g. Utrecht")
        sp.add_argument("--region", help="the safety region (veiligheidsregio), e.g. Utrecht")
        sp.add_argument("--at", type=_location, metavar="LAT,LON",
                        help="where the board's map draws the site, in decimal degrees "
                             "(WGS84, as a phone's map app shows them), e.g. 52.0907,5.1214; "
                             "'none' takes it off the map")

    a = hs.add_parser("add-site", help="register sites; prints 'ID KEY' per site")
    a.add_argument("ids", nargs="+", metavar="ID")
    site_info(a)
    common(a)
    ss = hs.add_parser("set-site", help="change a site's name, municipality or region "
                                        "(what the board shows beside its id)")
    ss.add_argument("site_id", metavar="ID")
    site_info(ss)
    common(ss)
    r = hs.add_parser(
        "rotate-key",
        help="a new key for a site; the old one stays valid for a grace period; prints 'ID KEY'",
    )
    r.add_argument("site_id", metavar="ID")
    r.add_argument(
        "--grace-hours",
        type=float,
        default=72.0,
        help="hours the old key stays valid unless the site uses the new key first (default 72)",
    )
    common(r)
    v = hs.add_parser(
        "revoke-key", help="a new key for a site; the old one is refused at once; prints 'ID KEY'"
    )
    v.add_argument("site_id", metavar="ID")
    common(v)
    u = hs.add_parser("add-user", help="add or reset an operator; prints a token")
    u.add_argument("name")
    u.add_argument("--role", choices=("viewer", "operator", "admin"), required=True,
                   help="viewer reads the board and the logs; operator also acknowledges, "
                        "writes bulletins and records fuel deliveries; admin manages")
    common(u)
    g = hs.add_parser(
        "gentests",
        help="the generator-test register: one row per test that ended in --from..--to",
    )
    g.add_argument("--from", dest="from_day", type=_day, metavar="YYYY-MM-DD",
                   help="first day (default: 365 days before --to)")
    g.add_argument("--to", dest="to_day", type=_day, metavar="YYYY-MM-DD",
                   help="last day, inclusive (default: today; days are Europe/Amsterdam)")
    g.add_argument("--site", metavar="ID", help="only this site")
    fmt = g.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV (as GET /api/v1/gentests)")
    fmt.add_argument("--json", action="store_true", help="JSON (as GET /api/v1/gentests)")
    common(g)
    rd = hs.add_parser(
        "radio",
        help="receive compact frames from a LoRa modem on a serial port (docs/radio.md)",
    )
    rd.add_argument("--port", required=True, metavar="DEVICE", help="e.g. /dev/ttyUSB0")
    rd.add_argument("--baud", type=int, default=9600, help="modem UART speed (default 9600)")
    rd.add_argument("--window-s", type=int, default=300,
                    help="accepted frame clock difference, as the HTTP ingest (default 300)")
    common(rd)
    bk = hs.add_parser("backup", help="a consistent copy of the hub's database, while it runs")
    bk.add_argument("--out", type=Path, required=True, metavar="FILE",
                    help="the backup file (mode 600): a SQLite file, or with --db a pg_dump "
                    "custom-format archive; the master key is not in it (docs/hub-operations.md)")
    common(bk)
    rs = hs.add_parser("restore", help="a backup into a new data directory, or with --db into "
                       "an empty PostgreSQL database")
    rs.add_argument("--from", dest="source", type=Path, required=True, metavar="FILE",
                    help="a file written by `nsp-edge hub backup`")
    common(rs)


# The board's map shows the European Netherlands (edge_server/hub/static/nl-outline.json):
# a site outside it is a typo (latitude and longitude swapped, a minus sign, a comma).
_MAP_LAT, _MAP_LON = (50.5, 53.8), (3.2, 7.3)


def _location(text: str) -> tuple[float | None, float | None]:
    """(lat, lon), or (None, None) for 'none' (off the map)."""
    if text.strip().lower() == "none":
        return None, None
    lat_text, sep, lon_text = text.partition(",")
    try:
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        lat = lon = float("nan")
    if not sep or lat != lat or lon != lon:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give LAT,LON in decimal degrees with a point, e.g. 52.0907,5.1214")
    if not (_MAP_LAT[0] <= lat <= _MAP_LAT[1] and _MAP_LON[0] <= lon <= _MAP_LON[1]):
        hint = " (latitude and longitude swapped?)" if _MAP_LAT[0] <= lon <= _MAP_LAT[1] else ""
        raise argparse.ArgumentTypeError(
            f"{text!r} is not in the Netherlands (latitude {_MAP_LAT[0]}-{_MAP_LAT[1]}, "
            f"longitude {_MAP_LON[0]}-{_MAP_LON[1]}){hint}")
    return lat, lon


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def run(args: argparse.Namespace) -> int:
    from edge_server.hub.store import UnknownSite

    if args.data is None:
        print("nsp-edge hub: --data DIR is required", file=sys.stderr)
        return 2
    data: Path = args.data
    command = args.hub_command
    if command is None and not 1 <= args.workers <= 32:
        print(f"nsp-edge hub: --workers {args.workers}: use 1 to 32 (about one per CPU core)",
              file=sys.stderr)
        return 2
    if command is None:
        return _serve(data, args.listen, args.stale_min, args.master_key, args.clock_off_min,
                      args.tls_cert, args.tls_key, args.db, args.workers)
    if command == "add-site" and len(set(args.ids)) != len(args.ids):
        twice = sorted({i for i in args.ids if args.ids.count(i) > 1})
        print(
            f"nsp-edge hub add-site: {', '.join(twice)} given more than once: name each new site "
            "once (nothing was added)",
            file=sys.stderr,
        )
        return 2
    prog = f"nsp-edge hub {command}"
    if command == "gentests":
        return _gentests(args, prog)
    if command == "radio":
        return _radio(args, data, prog)
    if command in ("backup", "restore"):
        from edge_server.hub.backup import command as backup_command

        return backup_command(args, prog)
    ids = args.ids if command == "add-site" else [getattr(args, "site_id", "")]
    bad = [i for i in ids if command != "add-user" and not re.match(SITE_ID_PATTERN, i)]
    if bad:
        print(
            f"{prog}: invalid site id(s) {', '.join(bad)}: use lower-case "
            "letters, digits and '-' (2-63 characters)",
            file=sys.stderr,
        )
        return 2
    if command == "rotate-key" and not 0 < args.grace_hours <= _MAX_GRACE_H:
        print(
            f"{prog}: --grace-hours {args.grace_hours:g}: use more than 0 and at most "
            f"{_MAX_GRACE_H:g} (for no grace at all: revoke-key)",
            file=sys.stderr,
        )
        return 2
    store = _open_store(data, args.master_key, prog, args.db)
    if isinstance(store, int):
        return store
    now = SystemClock().now()
    by = _who()
    try:
        if command == "add-site":
            known = [i for i in ids if store.has_site(i)]
            if known:
                print(
                    f"{prog}: already registered: {', '.join(known)}; nothing was added. To give "
                    "a site a new key: `nsp-edge hub rotate-key ID` (the old key keeps working "
                    "for a grace period) or `revoke-key ID` (a leaked key: refused at once)",
                    file=sys.stderr,
                )
                return 1
            if len(ids) > 1 and (args.name or args.at is not None):
                print(f"{prog}: --name and --at name one site: give one ID with them (a "
                      "municipality and region may go with several)", file=sys.stderr)
                return 2
            for site_id in ids:
                key = store.add_site(site_id, now, name=args.name or "",
                                     municipality=args.municipality or "",
                                     region=args.region or "")
                if args.at is not None:
                    store.set_site_location(site_id, *args.at)
                print(f"{site_id} {key}")
        elif command == "set-site":
            info = store.set_site_info(args.site_id, name=args.name,
                                       municipality=args.municipality, region=args.region)
            if args.at is not None:
                store.set_site_location(args.site_id, *args.at)
            print(f"{args.site_id}: " + ", ".join(f"{k} {v!r}" for k, v in info.items()))
        elif command == "rotate-key":
            grace = timedelta(hours=args.grace_hours)
            key = store.rotate_key(args.site_id, now, grace, by)
            print(f"{args.site_id} {key}")
            print(
                f"{prog}: install the new key at site {args.site_id} and restart its edge "
                f"service; the old key stays valid until {(now + grace):%Y-%m-%d %H:%M} UTC or "
                "the first message signed with the new key",
                file=sys.stderr,
            )
        elif command == "revoke-key":
            key = store.revoke_key(args.site_id, now, by)
            print(f"{args.site_id} {key}")
            print(
                f"{prog}: the old key of {args.site_id} is refused from now on: the C-NSP sees "
                "nothing from this site (401) until the new key is installed there and its edge "
                "service restarted; the site keeps its messages and delivers them then",
                file=sys.stderr,
            )
        else:
            token = store.add_user(args.name, args.role)
            print(f"user {args.name} ({args.role}) added; token (shown once): {token}")
    except UnknownSite:
        print(
            f"{prog}: site {args.site_id!r} is not registered (register it with "
            "`nsp-edge hub add-site`)",
            file=sys.stderr,
        )
        return 1
    finally:
        store.close()
    return 0


def _gentests(args: argparse.Namespace, prog: str) -> int:
    import json

    from edge_server.hub.gentests import REGISTER_TZ, register, to_csv

    to_day = args.to_day or SystemClock().now().astimezone(REGISTER_TZ).date()
    from_day = args.from_day or to_day - timedelta(days=365)
    if from_day > to_day:
        print(f"{prog}: --from {from_day} is after --to {to_day}", file=sys.stderr)
        return 2
    store = _open_store(args.data, args.master_key, prog, args.db)
    if isinstance(store, int):
        return store
    try:
        rows = register(store, from_day, to_day, args.site)
    finally:
        store.close()
    if args.csv:
        sys.stdout.write(to_csv(rows))
    elif args.json:
        doc = {"from": str(from_day), "to": str(to_day), "site": args.site, "tests": rows}
        print(json.dumps(doc, ensure_ascii=False, indent=1))
    else:
        for r in rows:
            ran = "-" if r["ran_min"] is None else f"{r['ran_min']:g} min"
            print(f"{r['ended_at']}  {r['site_id']:<20} {r['outcome'] or '?':<20} {ran:>9}  "
                  f"{r['started_by'] or ''}")
        print(f"{len(rows)} test(s) ended {from_day} .. {to_day}"
              + (f" at {args.site}" if args.site else ""))
    return 0


def _radio(args: argparse.Namespace, data: Path, prog: str) -> int:
    from edge_server.radio.airtime import LoRaParams
    from edge_server.radio.receiver import run_receiver
    from edge_server.radio.transport import SerialRadio

    if not 1 <= args.window_s <= 3600:
        print(f"{prog}: --window-s {args.window_s}: use 1..3600 seconds", file=sys.stderr)
        return 2
    store = _open_store(data, args.master_key, prog, args.db)
    if isinstance(store, int):
        return store
    try:
        # The receiver only listens: airtime settings matter to senders, not here.
        radio = SerialRadio(args.port, LoRaParams(), args.baud)
        radio.open()
    except (OSError, ValueError) as exc:
        store.close()
        print(f"{prog}: --port {args.port}: cannot open it ({exc}): give the modem's serial "
              "device (ls /dev/serial/by-id/)", file=sys.stderr)
        return 2
    print(f"{prog}: listening on {args.port}; counts in {data / 'radio-stats.json'}",
          file=sys.stderr, flush=True)
    try:
        return run_receiver(store, radio, data, args.window_s)
    finally:
        store.close()


def _who() -> str:
    """The person running the command, for the rotation/revocation log line."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user"


def _open_store(data: Path, master_key: Path | None, prog: str,
                db: str | None = None) -> HubStore | int:
    """The hub's store, or the exit code after saying why not: 1 for the master key or an
    unreachable database (the hub cannot do it), 2 for a --data directory this user cannot use
    or a --db that is no database URL (usage errors)."""
    import sqlite3

    from edge_server.hub.keys import MasterKeyError
    from edge_server.hub.sql import StoreUnavailable
    from edge_server.hub.store import DB_ENV, HubStore

    try:
        return HubStore(data, master_key, db_url=db)
    except MasterKeyError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except StoreUnavailable as exc:
        print(f"{prog}: {exc}: start the database server or fix --db / ${DB_ENV}",
              file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"{prog}: --db: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(
            f"{prog}: --data {data}: cannot use it as the hub's data directory ({why}): choose "
            "a directory this user may create and write (the hub keeps hub.sqlite there)",
            file=sys.stderr,
        )
        return 2


# The board's "no contact" limit; as HubSettings.stale_after_min (a week at most).
_STALE_MIN_MAX = 10080.0


def _serve(
    data: Path, listen: str, stale_min: float, master_key: Path | None, clock_off_min: float,
    tls_cert: Path | None = None, tls_key: Path | None = None, db: str | None = None,
    workers: int = 1,
) -> int:
    import socket

    import uvicorn

    from edge_server.hub.app import HubSettings, create_app
    from edge_server.hub.tls import tls_problem

    prog = "nsp-edge hub"
    problem = tls_problem(tls_cert, tls_key)
    if problem is not None:
        print(f"{prog}: {problem}; not started", file=sys.stderr)
        return 2
    scheme = "https" if tls_cert is not None else "http"
    host, _, port_text = listen.rpartition(":")
    port = int(port_text) if port_text.isascii() and port_text.isdigit() else -1
    if not host or not 1 <= port <= 65535:
        print(
            f"{prog}: --listen {listen!r}: use HOST:PORT with a port 1-65535, e.g. "
            "127.0.0.1:8090 or 0.0.0.0:8090",
            file=sys.stderr,
        )
        return 2
    for option, minutes, default in (("--stale-min", stale_min, 15),
                                     ("--clock-off-min", clock_off_min, 30)):
        if not 0 < minutes <= _STALE_MIN_MAX:
            print(f"{prog}: {option} {minutes:g}: use more than 0 and at most "
                  f"{_STALE_MIN_MAX:g} minutes (default {default})", file=sys.stderr)
            return 2
    host = host.strip("[]")  # [::1]:8090
    # Bound here, not by uvicorn: a port in use is a clear message and exit 2, not a log line
    # and exit 1; uvicorn then serves on this very socket (no race for the port).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except (OSError, UnicodeError) as exc:
        sock.close()
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(
            f"{prog}: --listen {listen}: cannot listen there ({why}): stop what uses the port "
            "or choose another one, and use an address of this machine",
            file=sys.stderr,
        )
        return 2
    store = _open_store(data, master_key, prog, db)
    if isinstance(store, int):
        sock.close()
        if store == 1:
            print(f"{prog}: not started", file=sys.stderr)
        return store
    shown = f"[{host}]" if ":" in host else host
    many = f", {workers} workers" if workers > 1 else ""
    print(f"NSP C-NSP hub: board {scheme}://{shown}:{port}/ (sites post to "
          f"{scheme}://{shown}:{port}/api/v1/ingest), data in {store.where}, master key in "
          f"{store.master_key_file}{many}; Ctrl-C stops it", flush=True)
    # No forwarded headers: the hub names sites by their signature, not by their address.
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        from edge_server.hub.store import DB_ENV
        from edge_server.hub.workers import APP_FACTORY, WORKER_ENV, WorkerConfig

        # Checked and migrated once, here; each worker opens its own store (hub/workers.py).
        store.close()
        os.environ[WORKER_ENV] = WorkerConfig(
            str(data), str(master_key) if master_key else None,
            db if db is not None else os.environ.get(DB_ENV, ""), stale_min, clock_off_min,
        ).to_env()
        config = uvicorn.Config(APP_FACTORY, factory=True, workers=workers, log_level="warning",
                                access_log=False, proxy_headers=False,
                                ssl_certfile=tls_cert, ssl_keyfile=tls_key)
        try:
            Multiprocess(config, sockets=[sock]).run()
        finally:
            sock.close()
        return 0
    settings = HubSettings(stale_after_min=stale_min, clock_off_min=clock_off_min)
    app = create_app(store, SystemClock(), settings)
    config = uvicorn.Config(app, log_level="warning", access_log=False, proxy_headers=False,
                            ssl_certfile=tls_cert, ssl_keyfile=tls_key)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        store.close()
    return 0
