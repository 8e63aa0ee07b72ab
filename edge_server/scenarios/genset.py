"""A scenario's generator controller: the virtual DSE controller (edge_server.genset.sim) on real
Modbus TCP beside the virtual nodes, configured as `[[generators]] name = "gen"` and polled by
the service's GensetMonitor like a site's controller.

A scenario asks for it with `extra["genset"] = {"mode": "auto"}` (the controller's mode at the
start; `"fail_reads": True` makes it answer every read with exception 04). Its engine lives on
the scenario's time: stepped in 1 s slices with every step of the world. Mains is one fact for
both: an action setting the power node's `mains_present` sets the controller's too. Actions on
node "genset" set an EngineModel field (`mode`, `crank_fails`, `fault`) instead of a node's
world key. The generator test commands the controller (test on load, then AUTO); `node_relay()`
says how the node's simulated set must follow it (edge_server/gentest/scenario.py).
"""

from __future__ import annotations

from typing import Any

from edge_server.genset.engine import EngineModel
from edge_server.genset.profile import load_profile
from edge_server.genset.sim import VirtualController
from edge_server.scenarios.library import Action

NODE = "genset"  # the actions' node name for the controller
UNIT = 10
RATED_KW = 20.0  # the scenarios' set (runner.py: a 20 kW set)
SLICE_S = 1.0
ENGINE_KEYS = ("mode", "crank_fails", "fault")


class GensetRehearsal:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.engine = EngineModel(rated_kw=RATED_KW, load_kw=lambda _t: 10.0,
                                  mode=str(spec.get("mode", "auto")))
        self.ctrl = VirtualController(load_profile("dse-gencomm"), self.engine, unit=UNIT)
        self.auto_mode = self.engine.mode
        self.ctrl.fail_reads = bool(spec.get("fail_reads", False))  # every read: exception 04

    @classmethod
    def of(cls, extra: dict[str, object]) -> GensetRehearsal | None:
        spec = extra.get("genset")
        if spec is None:
            return None
        if not isinstance(spec, dict):
            raise ValueError("scenario extra genset: a table such as {'mode': 'auto'}")
        return cls(spec)

    async def start(self) -> None:
        await self.ctrl.start_tcp("127.0.0.1", 0)

    async def stop(self) -> None:
        await self.ctrl.stop()

    def toml(self) -> str:
        return (f'[[buses]]\nname = "genset-tcp"\nkind = "tcp"\nhost = "127.0.0.1"\n'
                f"port = {self.ctrl.port}\n"
                f'[[generators]]\nname = "gen"\nbus = "genset-tcp"\nunit = {UNIT}\n'
                f"rated_kw = {RATED_KW}\n")

    def apply(self, action: Action) -> bool:
        """Mirror mains; True when the action was the controller's alone."""
        if action.key == "mains_present":
            self.engine.mains_present = bool(action.value)
        if action.node != NODE:
            return False
        if action.key not in ENGINE_KEYS:
            raise ValueError(f"genset action: {action.key!r}; known: {', '.join(ENGINE_KEYS)}")
        setattr(self.engine, action.key, action.value)
        self.ctrl.refresh()
        return True

    def advance(self, seconds: float) -> None:
        whole, rest = divmod(seconds, SLICE_S)
        for _ in range(int(whole)):
            self.ctrl.step(SLICE_S)
        if rest:
            self.ctrl.step(rest)

    def test_relay(self, on: bool) -> None:
        """The power node's test relay wired to the controller's remote start on load: on puts
        the controller in test (on load), off back in its own mode."""
        self.engine.mode = "test" if on else self.auto_mode
        self.ctrl.refresh()

    def node_relay(self) -> bool:
        """What the power node's simulated set must be asked to do when the edge commands the
        controller itself: run while the controller is in test. The node's world models its own
        set (it runs on its relay or without mains), so the scenario drives that relay to keep
        the node's run-sense (the test's witness) in step with the controller's set; a real
        site's run-sense is wired to the set and needs nothing of the kind."""
        return self.engine.mode == "test"

    def shut_down(self) -> bool:
        """True while a shutdown alarm of the controller stopped the set (the power node's
        run-sense then sees the set stop: its world's gen_shutdown)."""
        return any(sev == "shutdown" for sev in self.engine.alarms.values())
