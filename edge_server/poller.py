"""The Modbus poller: reads every node block-wise into the SiteState.

One hub per bus (as Home Assistant's ModbusHub): an asyncio lock so one request is on the line
at a time, the RTU inter-frame gap t3.5 on serial lines, and per node:

- online/offline with exponential back-off (poll.interval_s doubling up to poll.backoff_max_s),
  so a dead node costs one timeout per back-off period and does not stall the bus;
- the first error logged at ERROR, repeats at DEBUG, naming the node, unit and address;
- a failed read makes the node's values UNAVAILABLE (never stale, never zero);
- counters: reads_ok, timeouts (no answer), exceptions (valid exception replies), decode_errors
  (unknown map version, short reply) and crc_errors (the node's own identity register).

Per node and cycle: the identity block first (map version, roles), then each role block the node
has and the site configured. Time comes from the injected Clock: `poll_once()` is what tests and
scenario runners call with a ManualClock; `run()` loops it in real time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from edge_server import regmap
from edge_server.clock import Clock
from edge_server.config import NodeSection, PollSection, RtuBus, SiteConfig, TcpBus
from edge_server.modbus_client import BusClient, ExceptionReply, NoAnswer, rtu_gap_s
from edge_server.state import NodeStatus, Quality, Reading, SiteState, Value

log = logging.getLogger(__name__)
T = TypeVar("T")


class CommandRejected(ValueError):
    """A command the poller will not send: unknown node, coil or register, or a bad value."""


class CommandFailed(RuntimeError):
    """A command that was sent but not confirmed by the node (no answer or exception reply)."""


class BusHub:
    """One bus: a lock, the RTU inter-frame gap, and its nodes in configuration order."""

    def __init__(self, bus: RtuBus | TcpBus, client: BusClient) -> None:
        self.bus = bus
        self.client = client
        self.lock = asyncio.Lock()
        self.gap_s = rtu_gap_s(bus.baudrate) if isinstance(bus, RtuBus) else 0.0
        self.nodes: list[NodeRunner] = []
        # Other devices on this bus (generator controllers, edge_server.genset.monitor): polled
        # after the nodes in every cycle, under the same lock and gap.
        self.devices: list[Callable[[], Awaitable[None]]] = []
        # The gap is a property of the wire, so it uses real time, not the injected clock.
        self._last_frame_end = 0.0

    async def call(self, request: Callable[[BusClient], Awaitable[T]]) -> T:
        async with self.lock:
            if self.gap_s:
                wait_s = self._last_frame_end + self.gap_s - time.monotonic()
                if wait_s > 0:
                    await asyncio.sleep(wait_s)
            try:
                return await request(self.client)
            finally:
                self._last_frame_end = time.monotonic()


@dataclass(frozen=True)
class Problem:
    kind: str  # silent | exception | decode | refused | roles
    text: str
    level: int = logging.ERROR


@dataclass
class NodeRunner:
    """Per-node poll bookkeeping (the public part is `status` in the SiteState)."""

    cfg: NodeSection
    status: NodeStatus
    next_due_s: float = 0.0  # clock.monotonic() at which the node is polled next
    backoff_s: float = 0.0  # 0 while the node answers
    # Per role block: (map version, words, decoded values) of the last read.
    decoded: dict[str, tuple[int, list[int], dict[str, Value]]] = field(default_factory=dict)
    # Kinds of problem already logged at ERROR/WARNING; repeats go to DEBUG until a clean cycle.
    logged: set[str] = field(default_factory=set)

    @property
    def where(self) -> str:
        return f"node {self.cfg.name} (unit {self.cfg.unit} on bus {self.cfg.bus})"


class Poller:
    def __init__(self, config: SiteConfig, state: SiteState, clock: Clock) -> None:
        self.config = config
        self.poll: PollSection = config.poll
        self.state = state
        self.clock = clock
        self.rmap = regmap.load()
        # Registers of each block, computed once (the hot path runs thousands of times a minute).
        self._block_regs = {name: self.rmap.in_block(name) for name in self.rmap.blocks}
        self.hubs: dict[str, BusHub] = {}
        self.nodes: dict[str, NodeRunner] = {}
        for bus in config.buses:
            client = BusClient(bus, timeout_s=self.poll.timeout_s, retries=self.poll.retries)
            self.hubs[bus.name] = BusHub(bus, client)
        now = clock.now()
        for node_cfg in config.nodes:
            status = NodeStatus(
                name=node_cfg.name,
                unit_id=node_cfg.unit,
                bus=node_cfg.bus,
                roles=tuple(node_cfg.roles),
            )
            state.add_node(status)
            runner = NodeRunner(node_cfg, status)
            self.nodes[node_cfg.name] = runner
            self.hubs[node_cfg.bus].nodes.append(runner)
            # Every configured value exists from the start, unavailable until it is read.
            for role in node_cfg.roles:
                self._block_unavailable(runner, role, now)
        self._stopping = asyncio.Event()

    # ------------------------------------------------------------------ polling
    async def poll_once(self) -> None:
        """Poll every node that is due (buses in parallel), then notify the state listeners."""
        if len(self.hubs) == 1:
            await self._poll_hub(next(iter(self.hubs.values())))
        else:
            await asyncio.gather(*(self._poll_hub(hub) for hub in self.hubs.values()))
        self.state.notify(self.clock.now())

    async def run(self) -> None:
        """Poll every poll.interval_s until stop() is called."""
        self._stopping.clear()
        while not self._stopping.is_set():
            started_s = time.monotonic()
            try:
                await self.poll_once()
            except Exception:  # a bug must not end polling: log it with its traceback
                log.exception("poll cycle failed")
            wait_s = max(0.0, self.poll.interval_s - (time.monotonic() - started_s))
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=wait_s)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stopping.set()

    def close(self) -> None:
        for hub in self.hubs.values():
            hub.client.close()

    async def _poll_hub(self, hub: BusHub) -> None:
        for runner in hub.nodes:
            if self.clock.monotonic() >= runner.next_due_s:
                await self._poll_node(hub, runner)
        for device in hub.devices:
            try:
                await device()
            except Exception:  # one device's bug must not stop the bus
                log.exception("polling a device on bus %s failed", hub.bus.name)

    async def _poll_node(self, hub: BusHub, runner: NodeRunner) -> None:
        status = runner.status
        cfg = runner.cfg
        problems: list[Problem] = []
        try:
            identity_rmap = await self._read_identity(hub, runner, problems)
            if identity_rmap is not None:
                for role in cfg.roles:
                    await self._read_role_block(hub, runner, identity_rmap, role, problems)
        except NoAnswer as exc:
            self._went_silent(runner, str(exc))
            return
        now_s = self.clock.monotonic()
        if "silent" in runner.logged:
            log.info("%s answers again: online", runner.where)
            runner.logged.discard("silent")
        status.online = True
        if identity_rmap is not None:  # a refused node answers but gives no usable values
            status.last_ok = self.clock.now()
        runner.backoff_s = 0.0
        runner.next_due_s = now_s
        status.last_error = "; ".join(p.text for p in problems) if problems else None
        for problem in problems:
            self._log_problem(runner, problem)
        if not problems:
            runner.logged.clear()

    async def _read_identity(
        self, hub: BusHub, runner: NodeRunner, problems: list[Problem]
    ) -> regmap.RegisterMap | None:
        """Read and check the identity block; the map to decode the node with, or None."""
        block = self.rmap.blocks["identity"]
        words = await self._read(hub, runner, block.start, block.size, "identity", problems)
        if words is None:
            self._node_unavailable(runner)
            return None
        status = runner.status
        now = self.clock.now()
        if len(words) < block.size:
            why = f"short identity reply ({len(words)} words)"
            self._refuse(runner, Problem("decode", why), problems)
            return None
        try:
            rmap = regmap.for_version(words[0])
        except regmap.UnknownMapVersion as exc:
            status.identity = {"map_version": words[0]}
            self._refuse(runner, Problem("refused", f"refused: {exc}"), problems, now)
            return None
        status.identity = dict(rmap.decode_block("identity", words))
        crc_errors = status.identity.get("crc_errors")
        if isinstance(crc_errors, int):
            status.counters.crc_errors = crc_errors
        roles_bits = status.identity.get("roles")
        if isinstance(roles_bits, int):
            reported = {r for r, bit in regmap.ROLE_BITS.items() if roles_bits & bit}
            configured = set(runner.cfg.roles)
            if reported != configured:
                problems.append(Problem(
                    "roles",
                    f"roles differ: the node reports {sorted(reported)}, the site configuration "
                    f"says {sorted(configured)}",
                    logging.WARNING,
                ))
        return rmap

    def _refuse(
        self,
        runner: NodeRunner,
        why: Problem,
        problems: list[Problem],
        now: datetime | None = None,
    ) -> None:
        runner.status.counters.decode_errors += 1
        problems.append(why)
        self._node_unavailable(runner, now)

    async def _read_role_block(
        self,
        hub: BusHub,
        runner: NodeRunner,
        rmap: regmap.RegisterMap,
        role: str,
        problems: list[Problem],
    ) -> None:
        block = rmap.blocks[role]
        roles_bits = runner.status.identity.get("roles")
        if isinstance(roles_bits, int) and not roles_bits & regmap.ROLE_BITS[role]:
            # Configured but the node does not have it: nothing to read (already a problem).
            self._block_unavailable(runner, role, self.clock.now())
            return
        words = await self._read(hub, runner, block.start, block.size, role, problems)
        now = self.clock.now()
        if words is None:
            self._block_unavailable(runner, role, now)
            return
        # Decoding is a pure function of the words: a block that did not change since the last
        # read (most role blocks, most of the time) reuses its decoded values.
        cached = runner.decoded.get(role)
        if cached is not None and cached[0] == rmap.version and cached[1] == words:
            values = cached[2]
        else:
            try:
                values = rmap.decode_block(role, words)
            except ValueError as exc:
                runner.status.counters.decode_errors += 1
                problems.append(Problem("decode", f"{role} block at {block.start}: {exc}"))
                self._block_unavailable(runner, role, now)
                return
            runner.decoded[role] = (rmap.version, words, values)
        node = runner.cfg.name
        regs = self._block_regs[role] if rmap is self.rmap else rmap.in_block(role)
        put = self.state.put
        good, unavailable = Quality.GOOD, Quality.UNAVAILABLE
        for reg in regs:
            value = values[reg.name]
            put(Reading(node, reg.name, value, reg.unit, now,
                        good if value is not None else unavailable))

    async def _read(
        self,
        hub: BusHub,
        runner: NodeRunner,
        address: int,
        count: int,
        block: str,
        problems: list[Problem],
    ) -> list[int] | None:
        """One block read. None after an exception reply; NoAnswer propagates."""
        unit = runner.cfg.unit
        try:
            words = await hub.call(lambda c: c.read_registers(unit, address, count))
        except NoAnswer:
            runner.status.counters.timeouts += 1
            raise
        except ExceptionReply as exc:
            runner.status.counters.exceptions += 1
            problems.append(Problem("exception", f"{block} block: {exc}"))
            return None
        runner.status.counters.reads_ok += 1
        return words

    # ------------------------------------------------------------------ failures
    def _went_silent(self, runner: NodeRunner, why: str) -> None:
        status = runner.status
        status.online = False
        status.last_error = why
        self._node_unavailable(runner)
        if runner.backoff_s == 0.0:
            runner.backoff_s = self.poll.interval_s
        else:
            runner.backoff_s = min(runner.backoff_s * 2, self.poll.backoff_max_s)
        runner.next_due_s = self.clock.monotonic() + runner.backoff_s
        text = f"{why}; offline, next try in {runner.backoff_s:g} s"
        self._log_problem(runner, Problem("silent", text))

    def _log_problem(self, runner: NodeRunner, problem: Problem) -> None:
        """The first problem of a kind at its level (ERROR), repeats at DEBUG."""
        level = logging.DEBUG if problem.kind in runner.logged else problem.level
        log.log(level, "%s: %s", runner.where, problem.text)
        runner.logged.add(problem.kind)

    def _node_unavailable(self, runner: NodeRunner, now: datetime | None = None) -> None:
        self.state.mark_unavailable(runner.cfg.name, now or self.clock.now())

    def _block_unavailable(self, runner: NodeRunner, role: str, now: datetime) -> None:
        node = runner.cfg.name
        for reg in self._block_regs[role]:
            current = self.state.get(f"{node}.{reg.name}")
            if current is None or current.quality is not Quality.UNAVAILABLE:
                self.state.put(Reading(node, reg.name, None, reg.unit, now, Quality.UNAVAILABLE))

    # ------------------------------------------------------------------ commands
    def _runner(self, node: str) -> NodeRunner:
        runner = self.nodes.get(node)
        if runner is None:
            raise CommandRejected(
                f"unknown node {node!r}; known nodes: {', '.join(sorted(self.nodes))}"
            )
        return runner

    async def write_coil(self, node: str, coil_name: str, value: bool, who: str) -> None:
        """Write one coil (e.g. gen_test_run) on a node; logs who gave the command.

        The node applies its own interlocks; callers (generator tests) apply the edge's.
        """
        runner = self._runner(node)
        coils = {c.name: c for c in self.rmap.coils}
        coil = coils.get(coil_name)
        if coil is None:
            raise CommandRejected(
                f"unknown coil {coil_name!r}; known coils: {', '.join(sorted(coils))}"
            )
        if not who.strip():
            raise CommandRejected("a command needs the name of who gave it")
        self._generator_interlock(runner, coil_name, bool(value), who)
        log.info("command by %s: %s coil %s (%d) := %s", who, runner.where, coil_name,
                 coil.address, int(value))
        unit = runner.cfg.unit
        hub = self.hubs[runner.cfg.bus]
        try:
            await hub.call(lambda c: c.write_coil(unit, coil.address, bool(value)))
        except (NoAnswer, ExceptionReply) as exc:
            log.error("command by %s failed: %s coil %s: %s", who, runner.where, coil_name, exc)
            raise CommandFailed(f"{runner.where} coil {coil_name}: {exc}") from None

    def _generator_interlock(self, runner: NodeRunner, coil_name: str, value: bool,
                             who: str) -> None:
        """The edge's half of the generator interlocks (the node applies its own as well):
        never start a test run unless mains is known present, never stop a generator that
        carries the site. Unknown counts as unsafe."""
        if coil_name != "gen_test_run":
            return
        node = runner.cfg.name
        mains = self.state.get(f"{node}.mains_present")
        mains_ok = mains is not None and mains.ok and mains.value is True
        reason = self.state.get(f"{node}.gen_run_reason")
        reasons = self.rmap.register("gen_run_reason").enum
        mains_lost = next(k for k, name in reasons.items() if name == "mains_lost")
        carrying = not mains_ok or (reason is not None and reason.ok and reason.value == mains_lost)
        refusal = None
        if value and not mains_ok:
            refusal = ("refused: mains is absent or unknown, and a generator test never starts "
                       "while the site may need the generator")
        elif not value and carrying:
            refusal = ("refused: the generator may be carrying the site (mains absent or "
                       "unknown), and it is never stopped then")
        if refusal is not None:
            log.warning("command by %s: %s gen_test_run := %d %s", who, runner.where,
                        int(value), refusal)
            raise CommandRejected(f"{runner.where} gen_test_run {refusal}")

    async def write_register(self, node: str, register_name: str, value: float, who: str) -> None:
        """Write one writable register (access "rw") in SI units; logs who gave the command."""
        runner = self._runner(node)
        writable = {r.name: r for r in self.rmap.registers if r.access == "rw"}
        reg = writable.get(register_name)
        if reg is None:
            raise CommandRejected(
                f"register {register_name!r} is unknown or not writable; writable registers: "
                f"{', '.join(sorted(writable))}"
            )
        if not who.strip():
            raise CommandRejected("a command needs the name of who gave it")
        raw = round(value / reg.scale)
        low, high = (-0x8000, 0x7FFF) if reg.type == "i16" else (0, 0xFFFE)
        if not low <= raw <= high or (raw & 0xFFFF) == reg.sentinel:
            raise CommandRejected(
                f"{register_name}: {value} {reg.unit} is out of range for a {reg.type} register "
                f"with scale {reg.scale:g}"
            )
        log.info("command by %s: %s register %s (%d) := %s %s (raw %d)", who, runner.where,
                 register_name, reg.address, value, reg.unit, raw)
        unit = runner.cfg.unit
        hub = self.hubs[runner.cfg.bus]
        try:
            await hub.call(lambda c: c.write_register(unit, reg.address, raw & 0xFFFF))
        except (NoAnswer, ExceptionReply) as exc:
            log.error("command by %s failed: %s register %s: %s", who, runner.where,
                      register_name, exc)
            raise CommandFailed(f"{runner.where} register {register_name}: {exc}") from None
