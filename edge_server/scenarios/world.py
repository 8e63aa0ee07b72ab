"""World drivers: how a scenario moves the simulated site and pulls cables.

`WorldDriver` is the interface the runner needs; `VirtualNodeWorld` implements it with real
virtual nodes (the firmware on MicroPython, edge_server.vnode.VirtualNode) started with
--virtual-clock, driven through their control channel (docs/interfaces.md): `set` a world key,
`advance` the node's clock (world physics + role ticks), `offline` (the node stops answering
Modbus). Each node process has its own world, so a key is set on the node that senses it.
Another driver (e.g. an in-process world) only has to implement the same five methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from edge_server.vnode import VirtualNode


@dataclass(frozen=True)
class NodeSpec:
    name: str  # the node's name in the site configuration
    unit: int
    roles: tuple[str, ...]


class WorldDriver(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    def endpoint(self, node: str) -> tuple[str, int]:
        """(host, Modbus TCP port) of a node."""
        ...

    def set(self, node: str, key: str, value: object) -> None: ...

    def offline(self, node: str, value: bool) -> None: ...

    def advance(self, ms: int, tick_ms: int = 1000) -> None:
        """Move every node's virtual clock (and its world) by ms, in role ticks of tick_ms."""
        ...


class ScenarioError(RuntimeError):
    pass


class VirtualNodeWorld:
    def __init__(self, nodes: Sequence[NodeSpec]) -> None:
        self.specs = list(nodes)
        self.nodes: dict[str, VirtualNode] = {}
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.specs)),
                                        thread_name_prefix="vnode-control")

    def start(self) -> None:
        try:
            for spec in self.specs:
                # No TCP idle timeout: a step moves the node's clock by up to 10 min at once,
                # so the default 60 s would close the poller's connection in every long step
                # (every other poll then misses) where a real edge polls every minute.
                node = VirtualNode(spec.unit, spec.roles, control=True, virtual_clock=True,
                                   config_extra={"modbus": {"tcp_idle_s": 0}})
                self.nodes[spec.name] = node
                node.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()
        self.nodes.clear()
        self._pool.shutdown(wait=True)

    def _control(self, node: str, op: dict[str, Any]) -> dict[str, Any]:
        vnode = self.nodes.get(node)
        if vnode is None:
            raise ScenarioError(f"node: no virtual node {node!r} (known: {', '.join(self.nodes)})")
        reply = vnode.control(op)
        if not reply.get("ok"):
            raise ScenarioError(f"virtual node {node}: {op['op']} refused: {reply.get('error')}")
        return reply

    def endpoint(self, node: str) -> tuple[str, int]:
        port = self.nodes[node].tcp_port
        assert port is not None
        return "127.0.0.1", port

    def set(self, node: str, key: str, value: object) -> None:
        self._control(node, {"op": "set", "key": key, "value": value})

    def offline(self, node: str, value: bool) -> None:
        self._control(node, {"op": "offline", "value": value})

    def advance(self, ms: int, tick_ms: int = 1000) -> None:
        # The node processes advance in parallel (one thread per control channel).
        ops = {"op": "advance", "ms": ms, "step_ms": tick_ms}
        list(self._pool.map(lambda name: self._control(name, ops), list(self.nodes)))
