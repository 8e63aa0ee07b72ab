"""The site state: the latest value of every channel, typed, timestamped, with its quality.

The poller writes it; rules, storage, the API and the uplink read it. A failed read makes a
value UNAVAILABLE (value None): never stale, never zero.
Channel names are "<node>.<register>", e.g. "fridge1.fridge_temp_c".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

Value = float | int | bool | None


class Quality(StrEnum):
    GOOD = "good"
    UNAVAILABLE = "unavailable"  # node offline, read failed, or the node's "not available" sentinel


@dataclass(frozen=True, slots=True)
class Reading:
    node: str
    name: str
    value: Value
    unit: str
    at: datetime
    quality: Quality

    @property
    def channel(self) -> str:
        return f"{self.node}.{self.name}"

    @property
    def ok(self) -> bool:
        return self.quality is Quality.GOOD and self.value is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "unit": self.unit,
            "at": self.at.isoformat(),
            "quality": self.quality.value,
        }


@dataclass
class NodeCounters:
    reads_ok: int = 0
    timeouts: int = 0  # no answer (includes frames the client dropped for a bad CRC)
    crc_errors: int = 0  # as counted by the node itself (identity register crc_errors)
    exceptions: int = 0  # valid Modbus exception replies
    decode_errors: int = 0  # unknown map version, short reply


@dataclass
class NodeStatus:
    name: str
    unit_id: int
    bus: str
    roles: tuple[str, ...]
    online: bool = False
    last_ok: datetime | None = None
    last_error: str | None = None
    identity: dict[str, Value] = field(default_factory=dict)
    counters: NodeCounters = field(default_factory=NodeCounters)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit_id": self.unit_id,
            "bus": self.bus,
            "roles": list(self.roles),
            "online": self.online,
            "last_ok": self.last_ok.isoformat() if self.last_ok else None,
            "last_error": self.last_error,
            "identity": self.identity,
            "counters": vars(self.counters),
        }


Listener = Callable[["SiteState", datetime], None]


class SiteState:
    def __init__(self, site_id: str) -> None:
        self.site_id = site_id
        self.nodes: dict[str, NodeStatus] = {}
        self.readings: dict[str, Reading] = {}
        self._listeners: list[Listener] = []

    def add_node(self, node: NodeStatus) -> None:
        self.nodes[node.name] = node

    def put(self, reading: Reading) -> None:
        self.readings[reading.channel] = reading

    def mark_unavailable(self, node: str, at: datetime) -> None:
        """Every value of a node becomes unavailable (it stopped answering)."""
        for key, r in list(self.readings.items()):
            if r.node == node and r.quality is not Quality.UNAVAILABLE:
                self.readings[key] = Reading(r.node, r.name, None, r.unit, at, Quality.UNAVAILABLE)

    def get(self, channel: str) -> Reading | None:
        return self.readings.get(channel)

    def nodes_with_role(self, role: str) -> Iterator[NodeStatus]:
        return (n for n in self.nodes.values() if role in n.roles)

    def by_role(self, role: str, name: str) -> Reading | None:
        """The reading `name` of the first node with `role` (most sites have one per role)."""
        for node in self.nodes_with_role(role):
            r = self.readings.get(f"{node.name}.{name}")
            if r is not None:
                return r
        return None

    def subscribe(self, listener: Listener) -> None:
        """Call listener(state, now) after every completed poll cycle."""
        self._listeners.append(listener)

    def notify(self, now: datetime) -> None:
        for listener in self._listeners:
            listener(self, now)

    def to_json(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "nodes": {name: n.to_json() for name, n in self.nodes.items()},
            "values": {ch: r.to_json() for ch, r in sorted(self.readings.items())},
        }
