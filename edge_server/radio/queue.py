"""What waits for the radio, in the order the crisis needs it.

Emergency reports typed by staff first (a person waits for help), then critical alerts, then
readiness changes, then periodic statuses; first in, first out within a priority. A status is a
snapshot: a newer one replaces every status still waiting (sending an old readiness after a newer
one only costs airtime), and takes the higher of their priorities, so a readiness change is never
demoted by the periodic status that follows it. Alerts and reports are never replaced: each is
its own fact.

`next_due(now, budget, airtime_of)` is a pure decision: which item may go now, or when the first
one can, given the duty-cycle budget. Nothing here reads a clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from edge_server.radio.budget import DutyCycleBudget


class Priority(IntEnum):
    REPORT = 0
    CRITICAL_ALERT = 1
    READINESS_CHANGE = 2
    PERIODIC_STATUS = 3


@dataclass(frozen=True)
class Pending:
    priority: Priority
    kind: str  # "status" | "alert" | "report"
    payload: dict[str, Any]
    seq: int = 0  # order of arrival, set by the queue
    queued_at: float = 0.0


@dataclass
class RadioQueue:
    _items: list[Pending] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[Pending]:
        return sorted(self._items, key=lambda p: (p.priority, p.seq))

    def push(self, priority: Priority, kind: str, payload: dict[str, Any], now: float) -> Pending:
        if kind == "status":
            older = [p for p in self._items if p.kind == "status"]
            if older:
                priority = Priority(min([priority, *(p.priority for p in older)]))
                self._items = [p for p in self._items if p.kind != "status"]
        item = Pending(priority, kind, payload, next(self._seq), now)
        self._items.append(item)
        return item

    def remove(self, item: Pending) -> None:
        self._items.remove(item)

    def next_due(
        self, now: float, budget: DutyCycleBudget, airtime_of: Callable[[Pending], float]
    ) -> tuple[Pending | None, float | None]:
        """(item to send now, None) or (None, earliest time the first item fits) or (None, None)
        when nothing waits. Strict priority: a lower item never jumps a higher one that waits
        for budget (a long status must not starve the next critical alert of airtime)."""
        order = self.items()
        if not order:
            return None, None
        first = order[0]
        airtime = airtime_of(first)
        if budget.allows(now, airtime):
            return first, None
        return None, budget.next_allowed(now, airtime)
