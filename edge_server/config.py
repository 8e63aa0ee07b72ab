"""The site configuration: one TOML file per site, validated with messages that name the field.

    cfg = load_config(Path("site.toml"))     # raises ConfigError with one line per problem

Sections: [site], [api], [storage], [poll], [[buses]], [[nodes]], [rules], [fuel], [uplink],
[gentest].
docs/configuration.md documents every field; examples/site.toml is a complete example.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from edge_server.genset.profile import ProfileError, load_profile
from edge_server.genset.settings import GeneratorSection
from edge_server.gentest.settings import GenTestSettings
from edge_server.localtime import zone
from edge_server.radio.settings import RadioSettings
from edge_server.rules.settings import FuelSettings, RulesSettings
from edge_server.uplink.settings import UplinkSettings

ROLES = ("power", "fridge", "entrance")


class ConfigError(ValueError):
    """A site configuration that cannot be used; str() names each field and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteSection(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")] = Field(
        description="Site id as registered at the C-NSP hub: lower-case letters, digits, '-'."
    )
    name: str = ""
    capacity: Annotated[int, Field(ge=1, le=500)] = 15  # waiting room: 10-15 people (framework)
    # Times for people (pages, reports, CLI) are shown in this zone; UTC on the wire and on disk.
    timezone: str = Field("Europe/Amsterdam", description="IANA time zone for times people read")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)  # ValueError naming the fix
        return value


def parse_listen(text: str) -> tuple[str, int]:
    """'HOST:PORT' (IPv6 as '[::1]:8080') -> (host, port); ValueError naming the fix."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(
            f"{text!r} is not HOST:PORT; write e.g. '127.0.0.1:8080' (this machine only) or "
            "'0.0.0.0:8080' (the site LAN)"
        )
    return host, int(port)


class ApiSection(_Strict):
    listen: str = "127.0.0.1:8080"
    # On a closed site LAN reading the site page needs no login; elsewhere set this to true.
    require_auth_for_read: bool = False
    # Reverse proxies (addresses or networks) whose X-Forwarded-For is believed for the
    # failed-login limit; from any other peer the header is ignored (docs/security.md).
    trusted_proxies: list[str] = []

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: list[str]) -> list[str]:
        from edge_server.auth import parse_networks

        try:
            parse_networks(value)
        except ValueError as exc:
            raise ValueError(f"{exc}: list the proxies' addresses, e.g. [\"10.0.0.5\"]") from exc
        return value

    @field_validator("listen")
    @classmethod
    def _listen_is_host_port(cls, value: str) -> str:
        parse_listen(value)
        return value


class InfluxSection(_Strict):
    """Optional InfluxDB (v2 API, or VictoriaMetrics) sink; see docs/storage.md."""

    url: str = Field(description="e.g. http://127.0.0.1:8086")
    org: str = "nsp"
    bucket: str = "nsp"
    # The token is a secret: never in site.toml. Name the environment variable that holds it.
    token_env: str = "NSP_INFLUX_TOKEN"
    measurement: str = "nsp"
    batch_size: Annotated[int, Field(ge=1, le=50_000)] = 5000
    flush_interval_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    # On-disk buffer bound (points); when full, the OLDEST points are dropped and counted.
    # 2,000,000 points ~ 14 h of 40 channels every 2 s, ~150 MB.
    buffer_max_points: Annotated[int, Field(ge=100)] = 2_000_000


class StorageSection(_Strict):
    data_dir: Path = Path("data")
    # Retention (docs/storage.md): cold-chain records must be kept >= 3 years (CDC toolkit).
    raw_days: Annotated[int, Field(ge=1, le=3660)] = 30
    minute_days: Annotated[int, Field(ge=1, le=36600)] = 3 * 366
    hour_days: Annotated[int, Field(ge=1, le=36600)] = 10 * 366
    # Thinning (docs/storage.md): store a reading when it moved by its deadband since the last
    # stored one, or every heartbeat_s; states, faults and gaps always. Rules see every poll.
    thinning: bool = True
    heartbeat_s: Annotated[float, Field(ge=2, le=3600)] = 300.0
    # Per register name, in the register's unit, e.g. { fridge_temp_c = 0.1 }: overrides the
    # defaults of edge_server/storage/thinning.py.
    deadband: dict[str, Annotated[float, Field(ge=0)]] = {}
    # Readings wait in memory up to this long, then one commit (alerts, events, outbox: at
    # once). A power cut loses at most this many seconds of readings; 0: a commit every cycle.
    commit_every_s: Annotated[float, Field(ge=0, le=300)] = 30.0
    influx: InfluxSection | None = None

    @field_validator("deadband")
    @classmethod
    def _deadband_on_measurements(cls, value: dict[str, float]) -> dict[str, float]:
        from edge_server.storage.thinning import check_deadband

        check_deadband(value)
        return value


class PollSection(_Strict):
    interval_s: Annotated[float, Field(gt=0, le=3600)] = 2.0
    timeout_s: Annotated[float, Field(gt=0, le=30)] = 1.0
    retries: Annotated[int, Field(ge=0, le=5)] = 1
    # Back-off of an offline node doubles from interval_s up to this, so it cannot stall the bus.
    backoff_max_s: Annotated[float, Field(gt=0, le=3600)] = 60.0


class RtuBus(_Strict):
    name: str
    kind: Literal["rtu"]
    port: str = Field(description="serial device, e.g. /dev/ttyUSB0")
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 19200
    parity: Literal["E", "O", "N"] = "E"  # Modbus default: even parity
    stopbits: Literal[1, 2] = 1

    @model_validator(mode="after")
    def _no_parity_two_stops(self) -> RtuBus:
        # Modbus over Serial Line 2.5.1: no parity needs 2 stop bits (11-bit character).
        if self.parity == "N" and self.stopbits != 2:
            raise ValueError(
                "parity 'N' needs stopbits = 2 (a Modbus RTU character is 11 bits): set "
                "stopbits = 2, or parity = \"E\" (the Modbus default)"
            )
        return self


class TcpBus(_Strict):
    name: str
    kind: Literal["tcp"]
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 502


Bus = Annotated[RtuBus | TcpBus, Field(discriminator="kind")]


_IPV4 = r"^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)$"


class FirmwareNetwork(_Strict):
    """[firmware.network]: the network `nsp-edge firmware config` writes into config.json for
    nodes on a TCP bus (firmware/README.md). The Wi-Fi password never lives in site.toml: it is
    read from password_file or the environment variable password_env when the file is made."""

    kind: Literal["wifi", "lan"]
    ssid: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    password_file: Path | None = None
    password_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] | None = None
    phy: Literal["LAN8720", "IP101", "RTL8201", "DP83848", "KSZ8041"] = "LAN8720"
    mdc_pin: Annotated[int, Field(ge=0, le=39)] = 23
    mdio_pin: Annotated[int, Field(ge=0, le=39)] = 18
    phy_addr: Annotated[int, Field(ge=0, le=31)] = 1
    power_pin: Annotated[int, Field(ge=-1, le=39)] = -1

    @model_validator(mode="after")
    def _wifi_needs_ssid_and_one_secret(self) -> FirmwareNetwork:
        if self.kind == "wifi":
            if self.ssid is None:
                raise ValueError("firmware.network.ssid: a Wi-Fi network needs its SSID")
            if (self.password_file is None) == (self.password_env is None):
                raise ValueError("firmware.network: give the Wi-Fi password as exactly one of "
                                 "password_file = \"/path\" or password_env = \"VAR\" (never "
                                 "the password itself in site.toml)")
        return self


class FirmwareSection(_Strict):
    network: FirmwareNetwork | None = None
    # IPv4 addresses of the masters that may write to nodes over Modbus TCP (the edge's own);
    # docs/security.md, "Writes to a node over Modbus TCP".
    write_allow: list[Annotated[str, Field(pattern=_IPV4)]] = []


class NodeSection(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$")]
    bus: str
    unit: Annotated[int, Field(ge=1, le=247)]  # 0 is broadcast, 248-255 reserved
    roles: list[Literal["power", "fridge", "entrance"]] = Field(min_length=1)


class SiteConfig(_Strict):
    site: SiteSection
    api: ApiSection = ApiSection()
    storage: StorageSection = StorageSection()
    poll: PollSection = PollSection()
    buses: list[Bus] = Field(min_length=1)
    nodes: list[NodeSection] = Field(min_length=1)
    rules: RulesSettings = RulesSettings()
    fuel: FuelSettings = FuelSettings()
    uplink: UplinkSettings = UplinkSettings()
    gentest: GenTestSettings = GenTestSettings()  # docs/generator-tests.md
    radio: RadioSettings = RadioSettings()  # the backup LoRa link, docs/radio.md
    generators: list[GeneratorSection] = []  # generator controllers, docs/generators.md
    firmware: FirmwareSection = FirmwareSection()  # what `nsp-edge firmware config` adds

    @model_validator(mode="after")
    def _cross_checks(self) -> SiteConfig:
        bus_names = [b.name for b in self.buses]
        if len(set(bus_names)) != len(bus_names):
            raise ValueError("buses: every bus needs a unique name")
        names: set[str] = set()
        units: set[tuple[str, int]] = set()
        for i, node in enumerate(self.nodes):
            if node.bus not in bus_names:
                raise ValueError(
                    f"nodes[{i}].bus: no bus named {node.bus!r}; define it under [[buses]] "
                    f"(known: {', '.join(bus_names)})"
                )
            if node.name in names:
                raise ValueError(f"nodes[{i}].name: {node.name!r} is used twice")
            if (node.bus, node.unit) in units:
                raise ValueError(
                    f"nodes[{i}].unit: unit {node.unit} is used twice on bus {node.bus!r}"
                )
            names.add(node.name)
            units.add((node.bus, node.unit))
        for i, gen in enumerate(self.generators):
            if gen.bus not in bus_names:
                raise ValueError(f"generators[{i}].bus: no bus named {gen.bus!r}; define it under "
                                 f"[[buses]] (known: {', '.join(bus_names)})")
            if gen.name in names:
                raise ValueError(f"generators[{i}].name: {gen.name!r} is used twice (nodes and "
                                 "generators share names)")
            if (gen.bus, gen.unit) in units:
                raise ValueError(f"generators[{i}].unit: unit {gen.unit} is used twice on bus "
                                 f"{gen.bus!r}")
            names.add(gen.name)
            units.add((gen.bus, gen.unit))
            try:
                load_profile(gen.profile)
            except ProfileError as exc:
                raise ValueError(f"generators[{i}].profile: {exc}") from None
        if self.storage.thinning and self.storage.heartbeat_s >= self.rules.max_sample_gap_s:
            raise ValueError(
                f"storage.heartbeat_s: {self.storage.heartbeat_s:g} s is not below "
                f"rules.max_sample_gap_s ({self.rules.max_sample_gap_s:g} s): after a restart the "
                "rules would count the time between two stored rows as unknown; lower it"
            )
        if self.radio.enabled and not self.uplink.enabled:
            raise ValueError(
                "radio.enabled: the radio is the backup of the uplink and signs with its key: "
                "set [uplink] enabled = true (with hub_url and the site key) too"
            )
        return self

    def bus(self, name: str) -> RtuBus | TcpBus:
        return next(b for b in self.buses if b.name == name)


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("rtu", "tcp") or str(part).startswith("function-"):
            continue  # pydantic's discriminator tag or validator name, not a field
        else:
            path += ("." if path else "") + str(part)
    return path or "(top level)"


# How to fix a field, added to pydantic's message (keys: the field path without list indices).
FIX_HINTS: dict[str, str] = {
    "site.id": "use 2-63 lower-case letters, digits and '-', as registered at the C-NSP hub, "
    "e.g. \"nsp-utrecht-03\"",
    "nodes.name": "use 1-32 lower-case letters, digits and '_', e.g. \"fridge1\"",
    "nodes.unit": "the node's Modbus unit id, 1-247 (0 is broadcast)",
    "nodes.roles": "a list of \"power\", \"fridge\", \"entrance\"",
    "buses.kind": "\"rtu\" (RS-485 serial line) or \"tcp\" (Modbus TCP)",
    "buses.baudrate": "one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200",
    "buses.parity": "\"E\" (even, the Modbus default), \"O\" or \"N\"",
    "api.listen": "HOST:PORT, e.g. \"127.0.0.1:8080\"",
    "poll.interval_s": "seconds between two reads of a node, e.g. 2",
    "poll.timeout_s": "seconds to wait for an answer, e.g. 1",
    "poll.backoff_max_s": "the longest wait before retrying an offline node, e.g. 60",
}


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid site configuration:"]
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ")
        field = _field_path(tuple(e["loc"]))
        if e["type"] == "extra_forbidden":
            msg = "unknown field (misspelt? see docs/configuration.md)"
        elif e["type"] == "missing":
            msg = "required field is missing"
        got = e.get("input")
        shown = "" if e["type"] in ("missing", "model_type") or isinstance(got, dict) else (
            f" (got {got!r})"
        )
        if re.search(r"password|secret", field):  # never echo a secret put where it must not be
            shown = " (value not shown)"
        hint = FIX_HINTS.get(re.sub(r"\[\d+\]", "", field))
        if hint and e["type"] not in ("extra_forbidden",):
            shown += f"; fix: {hint}"
        if re.match(r"^[a-z_]+(\[\d+\])?(\.[a-z_]+(\[\d+\])?)*: ", msg):
            lines.append(f"  {msg}")  # a check that names its own field
        else:
            lines.append(f"  {field}: {msg}{shown}")
    return "\n".join(lines)


def parse_config(text: str, source: str = "site.toml") -> SiteConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def load_config(path: Path) -> SiteConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the site configuration: {exc.strerror}") from None
    return parse_config(text, str(path))
