"""Drain an outbox to a hub from the command line (a standalone sender process).

    python -m edge_server.uplink.sender --outbox PATH --hub URL --site ID --key-file F [--batch N]

Sends until the outbox is empty, then exits 0 (exit 1 if the hub keeps refusing; messages it
refuses for good go to the dead letters and are counted on stderr). Used by the
kill -9 test and handy for a site that must flush its backlog by hand after a long outage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from edge_server.clock import SystemClock
from edge_server.uplink.client import Uplink
from edge_server.uplink.outbox import Outbox
from edge_server.uplink.settings import UplinkSettings


async def drain(args: argparse.Namespace) -> int:
    settings = UplinkSettings(
        enabled=True,
        hub_url=args.hub,
        key_file=args.key_file,
        batch_size=args.batch,
        backoff_min_s=0.2,
        backoff_max_s=2.0,
    )
    outbox = Outbox(args.outbox)
    uplink = Uplink(args.site, settings.load_key(), settings, outbox, SystemClock())
    try:
        for _ in range(args.max_failures + 1):
            if await uplink.attempt() and outbox.pending() == 0:
                if uplink.dead_lettered:
                    print(
                        f"sender: {uplink.dead_lettered} message(s) refused by the hub, moved to "
                        "the dead letters (nsp-edge uplink dead-letters)",
                        file=sys.stderr,
                    )
                return 0
            await asyncio.sleep(max(0.0, uplink.next_attempt_mono - uplink.clock.monotonic()))
        print(f"sender: giving up: {uplink.last_error}", file=sys.stderr)
        return 1
    finally:
        await uplink.aclose()
        outbox.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edge_server.uplink.sender")
    p.add_argument("--outbox", type=Path, required=True)
    p.add_argument("--hub", required=True)
    p.add_argument("--site", required=True)
    p.add_argument("--key-file", type=Path, required=True)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--max-failures", type=int, default=20)
    return asyncio.run(drain(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
