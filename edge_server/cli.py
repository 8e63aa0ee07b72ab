"""`nsp-edge`: the one command line of the edge service, the virtual node and the C-NSP hub.

Each subcommand lives in its own module under edge_server/commands/ and registers itself with
`add_parser(subparsers)`; the module's `run(args) -> int` does the work.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Subcommand modules, in the order `nsp-edge --help` lists them.
COMMANDS = (
    "run",
    "node_sim",
    "genset_sim",
    "demo",
    "regmap",
    "users",
    "scenario",
    "hub",
    "gentest",
    "uplink",
    "commission",
    "firmware",
)


def version() -> str:
    """The installed package's version, with the register map version the edge speaks."""
    from importlib import metadata

    from edge_server import regmap

    try:
        installed = metadata.version("nsp-site-monitor")
    except metadata.PackageNotFoundError:  # run from a source tree without `pip install`
        installed = "(not installed)"
    return f"{installed} (register map {regmap.load().version})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nsp-edge",
        description="NSP Site Monitor: edge service, virtual node and C-NSP hub.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}",
                        help="print the installed version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"edge_server.commands.{name}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        result: int = args.func(args)
    except BrokenPipeError:  # `nsp-edge ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0
    return result


if __name__ == "__main__":
    sys.exit(main())
