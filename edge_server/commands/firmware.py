"""`nsp-edge firmware config|build|flash`: put the firmware and the node's config.json on a board.

    nsp-edge firmware config --config site.toml --node fridge [--out config.json]
    nsp-edge firmware build --out build/fw [--arch xtensawin] [--romfs]
    nsp-edge firmware flash --port /dev/ttyUSB0 --config site.toml --node fridge [--build build/fw]
                            [--config-json my-config.json] [--dry-run] [--verify-only]

Exit status: 0 done, 2 a problem the message explains (bad site config, refused config.json,
build or board error). firmware/README.md "Flash a board" is the walk-through.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from edge_server import fwdeploy
from edge_server.commands import output_file
from edge_server.config import ConfigError, SiteConfig, load_config


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("firmware", help="build the firmware, write a node's config.json, flash")
    fw = p.add_subparsers(dest="firmware_command", required=True, metavar="STEP")

    c = fw.add_parser("config", help="write a node's config.json from the site config")
    c.add_argument("--config", type=Path, required=True, help="the site config (site.toml)")
    c.add_argument("--node", required=True, help="the [[nodes]] name, e.g. fridge")
    c.add_argument("--out", type=output_file, help="write here (default: print)")
    _write_allow_arg(c)
    c.set_defaults(func=run_config)

    b = fw.add_parser("build", help="compile firmware/nsp with mpy-cross, write a manifest")
    b.add_argument("--out", type=Path, required=True, help="build directory")
    b.add_argument("--arch", choices=fwdeploy.ARCHES, default="xtensawin",
                   help="mpy-cross -march (default xtensawin: ESP32; none: plain bytecode)")
    b.add_argument("--romfs", action="store_true",
                   help="also write firmware.romfs (for `mpremote romfs deploy` on boards whose "
                        "MicroPython has a ROMFS partition)")
    b.set_defaults(func=run_build)

    f = fw.add_parser("flash", help="copy the build and the node's config.json, then verify")
    f.add_argument("--port", required=True, help="the board's serial port, e.g. /dev/ttyUSB0")
    f.add_argument("--config", type=Path, required=True, help="the site config (site.toml)")
    f.add_argument("--node", required=True, help="the [[nodes]] name this board is")
    f.add_argument("--build", type=Path, help="a `firmware build` directory (default: build now)")
    f.add_argument("--arch", choices=fwdeploy.ARCHES, default="xtensawin",
                   help="when building now (no --build); default xtensawin")
    f.add_argument("--config-json", type=Path, metavar="FILE",
                   help="flash this config.json (e.g. with measured calibration) instead of "
                        "generating one; it must agree with site.toml")
    f.add_argument("--dry-run", action="store_true", help="print what would be done, touch nothing")
    f.add_argument("--verify-only", action="store_true",
                   help="only compare the board's files with the build and config (sha256)")
    _write_allow_arg(f)
    f.add_argument("--virtual", dest="board_root", default="/", metavar="DIR",
                   help="rehearsal: the port is a virtual board (the unix MicroPython behind a "
                        "socat pty, started in DIR) and DIR is its filesystem; without it a "
                        "MicroPython on a computer is refused (docs/commissioning.md)")
    f.set_defaults(func=run_flash)


def _write_allow_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--write-allow", action="append", default=[], metavar="IP",
                   help="IPv4 address of a master that may write over Modbus TCP (the edge); "
                        "repeat for more. Without it the node refuses every TCP write")


def _fail(message: str) -> int:
    print(f"nsp-edge firmware: {message}", file=sys.stderr)
    return 2


def _site(path: Path) -> SiteConfig:
    return load_config(path)


def _node_config(site: SiteConfig, node: str, write_allow: list[str]) -> dict[str, Any]:
    cfg, notes = fwdeploy.node_config(site, node, write_allow)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return cfg


def run_config(args: argparse.Namespace) -> int:
    try:
        cfg = _node_config(_site(args.config), args.node, args.write_allow)
    except (ConfigError, fwdeploy.DeployError) as exc:
        return _fail(str(exc))
    data = fwdeploy.config_bytes(cfg)
    if args.out is None:  # a console: never the Wi-Fi password (it is in the file with --out)
        sys.stdout.write(fwdeploy.config_bytes(fwdeploy.masked(cfg)).decode())
    else:
        args.out.write_bytes(data)
        print(f"wrote {args.out}: node_id {cfg['node_id']}, roles {', '.join(cfg['roles'])} "
              "(checked by the firmware's own validator; fields site.toml has no say in keep "
              "the firmware defaults)")
    return 0


def run_build(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        manifest = fwdeploy.build(args.out, args.arch, romfs=args.romfs)
    except fwdeploy.DeployError as exc:
        return _fail(str(exc))
    took = time.monotonic() - started
    print(f"firmware {manifest['fw_version']} (map {manifest['map_version']}) for "
          f"{manifest['arch']}: {len(manifest['files'])} files, "
          f"{fwdeploy.kb(manifest['total_bytes'])} in {args.out} ({took:.1f} s)")
    if "romfs" in manifest:
        size = fwdeploy.kb(manifest["romfs"]["size"])
        print(f"ROMFS image {args.out / 'firmware.romfs'}: {size}")
    return 0


def run_flash(args: argparse.Namespace) -> int:
    tmp = None
    try:
        site = _site(args.config)
        if args.config_json is not None:
            try:
                obj = json.loads(args.config_json.read_text())
            except (OSError, ValueError) as exc:
                return _fail(f"{args.config_json}: cannot read it as JSON: {exc}")
            problems = fwdeploy.check_config(obj, site, args.node)
            if problems:
                return _fail(f"{args.config_json} is not right for node {args.node!r}:\n  "
                             + "\n  ".join(problems))
            config = args.config_json.read_bytes()
        else:
            config = fwdeploy.config_bytes(_node_config(site, args.node, args.write_allow))
        build_dir = args.build
        if build_dir is None:
            tmp = fwdeploy.temp_build(args.arch)
            build_dir = Path(tmp.name)
        fwdeploy.flash(args.port, build_dir, config, say=lambda s: print(s, flush=True),
                       board_root=args.board_root, dry_run=args.dry_run,
                       verify_only=args.verify_only)
    except (ConfigError, fwdeploy.DeployError) as exc:
        return _fail(str(exc))
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0
