"""`nsp-edge regmap --format json|md|firmware`: print the register map."""

from __future__ import annotations

import argparse
import sys

from edge_server import regmap


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("regmap", help="print the Modbus register map (json, md or firmware)")
    p.add_argument("--format", choices=sorted(regmap.RENDERERS), default="md")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(regmap.RENDERERS[args.format](regmap.load()))
    return 0
