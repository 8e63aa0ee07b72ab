"""A radio whose air leads straight into a hub's store, through the hub's own compact ingest:
the edge's RadioFallback talks to it like to a modem (the Transport interface), for rehearsals
on an injected clock (the blackout scenario, tests). The serial path with a simulated air
between two ptys is tests/test_radio_e2e.py. Logs each packet's airtime and what the hub did."""

from __future__ import annotations

from typing import Any

from edge_server.clock import Clock
from edge_server.hub.compact_ingest import ingest_compact_frame
from edge_server.radio.airtime import LoRaParams
from edge_server.radio.transport import frame_airtime_s


class HubAir:
    def __init__(self, store: Any, clock: Clock, params: LoRaParams,
                 window_s: int = 300) -> None:
        self.store, self.clock, self.params, self.window_s = store, clock, params, window_s
        self.log: list[tuple[float, float]] = []  # (monotonic start, airtime) per packet
        self.heard: list[tuple[float, str]] = []  # (monotonic, kind) per frame stored
        self.refused: list[str] = []  # why the hub refused a frame (a failed check, no crash)
        self.duplicates = 0  # frames the hub already held (a resend: stored once)

    def send(self, site_id: str, frame: bytes) -> float:
        air = frame_airtime_s(self.params, site_id, frame)
        self.log.append((self.clock.monotonic(), air))
        try:
            got = ingest_compact_frame(self.store, self.clock.now(), site_id, frame,
                                       self.window_s, "radio")
        except Exception as exc:
            self.refused.append(f"{type(exc).__name__}: {exc}")
        else:
            if got.outcome == "stored":
                self.heard.append((self.clock.monotonic(), got.kind))
            else:
                self.duplicates += 1
        return air

    def receive(self, timeout_s: float) -> tuple[str, bytes] | None:
        return None  # the hub does not answer over the radio

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass
