"""`nsp-edge run --config site.toml [--listen HOST:PORT]`: run the edge service (uvicorn).

A configuration that cannot be used prints every problem (field and fix) and exits 2, without
a traceback: the person at the site reads the message, not Python internals. So does what the
configuration points at: an unreadable uplink key, a data folder that cannot be written, a port
already in use (checked before anything starts).
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import tempfile
from pathlib import Path

from edge_server.config import ConfigError, SiteConfig, load_config, parse_listen


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the edge service: poll the nodes, serve the API and page")
    p.add_argument("--config", type=Path, required=True, help="the site's TOML configuration")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help="address of the API and site page (default: api.listen in the config)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per uplink request is noise
    try:
        config = load_config(args.config)
        host, port = parse_listen(args.listen or config.api.listen)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"--listen: {exc}", file=sys.stderr)
        return 2
    problems = preflight(config, host, port, listen_arg="--listen" if args.listen else
                         "api.listen")
    if problems:
        print(f"{args.config}: the edge service cannot start:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    serve(config_path=args.config, host=host, port=port)
    return 0


def preflight(config: SiteConfig, host: str, port: int, *, listen_arg: str) -> list[str]:
    """What would otherwise end in a traceback at start: the uplink key, a data folder that
    cannot be written, a port already taken. Each problem names the field and the fix."""
    problems: list[str] = []
    if config.uplink.enabled:
        try:
            config.uplink.load_key()
        except ValueError as exc:
            problems.append(f"{exc}; or set [uplink] enabled = false to run without a C-NSP link")
    data_dir = Path(config.storage.data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=data_dir):
            pass
    except OSError as exc:
        problems.append(
            f"storage.data_dir: cannot write to {data_dir} ({exc.strerror or exc}); give a "
            "folder the nsp-edge user may write, e.g. /var/lib/nsp-edge")
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        problems.append(
            f"{listen_arg}: cannot listen on {host}:{port} ({exc.strerror or exc}); is another "
            "nsp-edge already running? Stop it, or choose another port with --listen HOST:PORT")
    return problems


def serve(config_path: Path, host: str, port: int) -> None:
    """Build the service and serve it until Ctrl-C / SIGTERM (uvicorn stops it gracefully)."""
    import uvicorn

    from edge_server.api.app import create_app
    from edge_server.clock import SystemClock
    from edge_server.service import Service

    config = load_config(config_path)
    app = create_app(Service(config, SystemClock()))
    print(f"NSP edge service for site {config.site.id}: http://{host}:{port}/ "
          f"(API http://{host}:{port}/api/v1/site)", flush=True)
    # proxy_headers=False: uvicorn would trust X-Forwarded-For from 127.0.0.1; edge_server/auth.py
    # believes it only from [api] trusted_proxies.
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on", proxy_headers=False)
