"""World drivers: how a scenario moves the simulated site and pulls cables.

`WorldDriver` is the interface the runner needs; `VirtualNodeWorld` implements it with real
virtual nodes (the firmware on MicroPython, edge_server.vnode.VirtualNode) started with
--virtual-clock, driven through their control channel (docs/interfaces.md): `set` a world key,
`advance` the node's clock (world physics + role ticks), `offline` (the node stops answering
Modbus). Each node process has its own world, so a key is set on the node that senses it.
Another driver (e.g. an in-process world) only has to implement the same five methods.

`WorldPair` lets two runs (two edges, e.g. storage thinning on and off) share one world: each
run gets a side (`pair.side(0)`, `pair.side(1)`, each run in its own thread), and the k-th
call that changes the world (set, offline, advance) waits for the other run's k-th call, which
must be the same call, before it runs once. Between two such calls the world stands still,
so both edges poll the same world at the same virtual time, for the cost of one world. The
world's clock runs in the nodes, so this costs half the wall time of two runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
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


class WorldPair:
    """One world, two runs (module docstring); a run that stops early or drives the world
    differently fails both with a ScenarioError."""

    def __init__(self, world: WorldDriver, timeout_s: float = 120.0) -> None:
        self.world = world
        self.timeout_s = timeout_s
        self.calls = 0  # world calls made by both
        self._cond = threading.Condition()
        self._waiting: dict[int, tuple[object, ...]] = {}
        self._error: BaseException | None = None
        self._gone: set[int] = set()

    def side(self, index: int) -> _PairSide:
        return _PairSide(self, index)

    def start(self) -> None:
        self.world.start()

    def stop(self) -> None:
        self.world.stop()

    def leave(self, index: int) -> None:
        with self._cond:
            self._gone.add(index)
            if self._waiting and index not in self._waiting and self._error is None:
                self._error = ScenarioError(f"run {index} ended while run {1 - index} waits "
                                            f"at world call {self.calls + 1}: "
                                            f"{self._waiting[1 - index]}")
            self._cond.notify_all()

    def call(self, index: int, op: tuple[object, ...], do: Callable[[], None]) -> None:
        with self._cond:
            if self._error is not None:
                raise self._error
            if 1 - index in self._gone:
                self._error = ScenarioError(f"run {index} calls {op} after run {1 - index} "
                                            f"ended (world call {self.calls + 1})")
                raise self._error
            self._waiting[index] = op
            if len(self._waiting) == 2:
                ops = self._waiting
                self._waiting = {}
                if ops[0] != ops[1]:
                    self._error = ScenarioError(f"the runs drove the world differently at call "
                                                f"{self.calls + 1}: {ops[0]} vs {ops[1]}")
                else:
                    try:
                        do()
                    except BaseException as exc:
                        self._error = exc
                self.calls += 1
                self._cond.notify_all()
            else:
                seen = self.calls
                if not self._cond.wait_for(lambda: self.calls != seen or self._error is not None,
                                           self.timeout_s):
                    self._error = ScenarioError(f"run {index} waited {self.timeout_s:g} s for "
                                                f"the other run at world call {seen + 1}: {op}")
                    self._cond.notify_all()
            if self._error is not None:
                raise self._error


class _PairSide:
    """One run's view of a WorldPair: a WorldDriver whose start/stop leave the world alone."""

    def __init__(self, pair: WorldPair, index: int) -> None:
        self.pair = pair
        self.index = index

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self.pair.leave(self.index)

    def endpoint(self, node: str) -> tuple[str, int]:
        return self.pair.world.endpoint(node)

    def set(self, node: str, key: str, value: object) -> None:
        self.pair.call(self.index, ("set", node, key, value),
                       lambda: self.pair.world.set(node, key, value))

    def offline(self, node: str, value: bool) -> None:
        self.pair.call(self.index, ("offline", node, value),
                       lambda: self.pair.world.offline(node, value))

    def advance(self, ms: int, tick_ms: int = 1000) -> None:
        self.pair.call(self.index, ("advance", ms, tick_ms),
                       lambda: self.pair.world.advance(ms, tick_ms))
