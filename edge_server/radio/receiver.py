"""`nsp-edge hub radio --port DEVICE --data DIR`: the C-NSP's end of the backup radio link.

Every packet heard goes through the same function as POST /api/v1/ingest-compact
(edge_server/hub/compact_ingest.py: site, tag, the hub's timestamp window, newer than the last
frame, one stored message) and is marked `via: "radio"`. Refusals are logged and counted by
reason in DIR/radio-stats.json (rewritten after each packet), with what was stored.
"""

from __future__ import annotations

import json
import logging
import signal
from collections import Counter
from pathlib import Path
from types import FrameType

from edge_server.clock import Clock, SystemClock
from edge_server.hub.compact_ingest import CompactRefused, ingest_compact_frame
from edge_server.hub.store import HubStore
from edge_server.radio.transport import SerialRadio

log = logging.getLogger(__name__)
STATS_FILE = "radio-stats.json"


class _Stop(Exception):
    pass


def run_receiver(
    store: HubStore,
    radio: SerialRadio,
    data_dir: Path,
    window_s: int,
    clock: Clock | None = None,
) -> int:
    clock = clock or SystemClock()
    counts: Counter[str] = Counter()
    stats = data_dir / STATS_FILE

    def stop(_sig: int, _frame: FrameType | None) -> None:
        raise _Stop

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            heard = radio.receive(1.0)
            if heard is None:
                continue
            site_id, frame = heard
            try:
                got = ingest_compact_frame(store, clock.now(), site_id, frame, window_s, "radio")
                counts[got.outcome] += 1
                counts[f"{got.outcome}_{got.kind}"] += 1
            except CompactRefused as exc:
                counts[f"refused_{exc.code}"] += 1
                log.warning("hub radio: frame from %r refused: %s", site_id, exc.message)
            counts["bad_packet"] = radio.bad_packets
            tmp = stats.with_suffix(".tmp")
            tmp.write_text(json.dumps(dict(counts), sort_keys=True))
            tmp.replace(stats)
    except (_Stop, KeyboardInterrupt):
        return 0
    finally:
        radio.close()
