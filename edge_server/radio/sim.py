"""A simulated radio for tests and the demo: two serial ports joined by a model of the air.

    socat pty,raw,echo=0,link=D/edge pty,raw,echo=0,link=D/edge-air &
    socat pty,raw,echo=0,link=D/hub-air pty,raw,echo=0,link=D/hub &
    python -m edge_server.radio.sim --edge D/edge-air --hub D/hub-air --sf 9 --loss 0.1 --seed 1

The edge writes to D/edge, `nsp-edge hub radio --port D/hub` reads. Every packet from the edge
side takes its airtime (divided by --speed), is checked against the EU868 duty cycle (a packet
past the budget is dropped and counted: the sender broke the rule), then lost, corrupted (one
byte flipped) or held back behind the next packet (reordered) with the given probabilities.
`RadioModel` is the pure part (time passed in); `--stats FILE` gets the counts after each packet.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edge_server.radio.airtime import LoRaParams, airtime_s
from edge_server.radio.budget import DutyCycleBudget, max_in_any_window
from edge_server.radio.transport import SlipDecoder, slip_encode


@dataclass
class AirStats:
    packets: int = 0
    delivered: int = 0
    lost: int = 0
    corrupted: int = 0
    reordered: int = 0
    over_duty_cycle: int = 0
    airtime_s: float = 0.0
    max_airtime_in_any_hour_s: float = 0.0


@dataclass
class RadioModel:
    params: LoRaParams
    loss: float = 0.0
    corrupt: float = 0.0
    reorder: float = 0.0
    seed: int = 0
    budget: DutyCycleBudget = field(default_factory=DutyCycleBudget)
    stats: AirStats = field(default_factory=AirStats)
    log: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("loss", "corrupt", "reorder"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"--{name} {p}: a probability 0..1")
        self._rng = random.Random(self.seed)
        self._held: bytes | None = None

    def transmit(self, now: float, packet: bytes) -> tuple[float, list[bytes]]:
        """(airtime, packets the far side hears when it ends), for one packet sent at `now`."""
        air = airtime_s(self.params, len(slip_encode(packet)))
        self.stats.packets += 1
        if not self.budget.allows(now, air):
            self.stats.over_duty_cycle += 1
            return 0.0, []
        self.budget.record(now, air)
        self.log.append((now, air))
        self.stats.airtime_s += air
        self.stats.max_airtime_in_any_hour_s = max_in_any_window(self.log)
        if self._rng.random() < self.loss:
            self.stats.lost += 1
            released = self._release()
            self.stats.delivered += len(released)
            return air, released
        if self._rng.random() < self.corrupt:
            b = bytearray(packet)
            b[self._rng.randrange(len(b))] ^= 1 << self._rng.randrange(8)
            packet = bytes(b)
            self.stats.corrupted += 1
        if self._held is None and self._rng.random() < self.reorder:
            self._held = packet
            self.stats.reordered += 1
            return air, []
        out = [packet, *self._release()]
        self.stats.delivered += len(out)
        return air, out

    def _release(self) -> list[bytes]:
        held, self._held = self._held, None
        return [] if held is None else [held]


def main(argv: list[str] | None = None) -> int:
    import serial

    ap = argparse.ArgumentParser(prog="python -m edge_server.radio.sim", description=__doc__)
    ap.add_argument("--edge", required=True, help="serial port of the edge side")
    ap.add_argument("--hub", required=True, help="serial port of the hub side")
    ap.add_argument("--sf", type=int, default=9)
    ap.add_argument("--bw", type=int, default=125_000)
    ap.add_argument("--loss", type=float, default=0.0)
    ap.add_argument("--corrupt", type=float, default=0.0)
    ap.add_argument("--reorder", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speed", type=float, default=1.0, help="airtime is divided by this")
    ap.add_argument("--stats", type=Path, default=None, help="JSON counts, after each packet")
    args = ap.parse_args(argv)
    model = RadioModel(LoRaParams(sf=args.sf, bw_hz=args.bw), args.loss, args.corrupt,
                       args.reorder, args.seed)
    edge = serial.Serial(args.edge, timeout=0.05)
    hub = serial.Serial(args.hub, timeout=0.05)
    decoder = SlipDecoder()
    start = time.monotonic()
    try:
        while True:
            chunk = edge.read(max(1, edge.in_waiting))
            for packet in decoder.feed(chunk):
                # Model time runs --speed times faster than the wall clock.
                now = (time.monotonic() - start) * args.speed
                air, heard = model.transmit(now, packet)
                time.sleep(air / args.speed)
                for p in heard:
                    hub.write(slip_encode(p))
                hub.flush()
                if args.stats:
                    tmp = args.stats.with_suffix(".tmp")
                    tmp.write_text(json.dumps(asdict(model.stats)))
                    tmp.replace(args.stats)
    except KeyboardInterrupt:
        return 0
    finally:
        edge.close()
        hub.close()


if __name__ == "__main__":
    raise SystemExit(main())
