"""Generator-controller profiles (edge_server/genset/profile.py): the shipped DSE GenComm and
SmartGen profiles load, sit at the documented addresses, and a bad profile is refused naming the
file, the entry and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_server.genset.profile import ProfileError, load_profile, parse_profile, shipped

MINIMAL = """
[profile]
name = "x-ctrl"
maker = "X"
document = "X manual rev 1"
[[channels]]
name = "gen_kw"
address = 10
group = "generator"
"""


def test_shipped_profiles_load_and_differ() -> None:
    assert {"dse-gencomm", "smartgen-hgm6100n"} <= set(shipped())
    dse, sg = load_profile("dse-gencomm"), load_profile("smartgen-hgm6100n")
    # GenComm: register = page * 256 + offset (page 4 basic instrumentation, 6 derived, 7
    # accumulated, 16 control: the system control key at 4104, its complement at 4105)
    assert dse.channel("gen_frequency_hz").address == 4 * 256 + 7
    assert dse.channel("gen_l1n_v").address == 4 * 256 + 8 and dse.channel("gen_l1n_v").words == 2
    assert dse.channel("gen_kw").address == 6 * 256 and dse.channel("gen_kw").type == "s32"
    assert dse.channel("run_hours_h").address == 7 * 256 + 6
    assert dse.channel("serial_number").group == "identity"
    assert dse.control is not None and dse.control.address == 4104
    assert dse.control.commands["stop"] == 35700 and dse.control.commands["auto"] == 35701
    assert dse.control.commands["test_on_load"] == 35703
    low_oil = next(a for a in dse.alarms.alarm if a.name == "low_oil_pressure")
    assert (low_oil.address, low_oil.bit, low_oil.width) == (2049, 8, 4)  # alarm 2 of page 8
    assert dse.mode is not None and set(dse.mode.values.values()) == {"stop", "auto", "manual",
                                                                      "test"}
    # SmartGen: plain registers from 0, 16-bit, whole volts
    assert sg.channel("gen_frequency_hz").address == 6 and sg.channel("gen_l1n_v").scale == 1
    assert sg.control is None and sg.alarms.alarm == []
    for p in (dse, sg):
        assert all(c.source for c in p.channels), p.profile.name


@pytest.mark.parametrize(("change", "needles"), [
    (("[[channels]]", "[[channels]]\nregister = 3"),
     ["channels[0].register", "Extra inputs", "remove it or check its spelling"]),
    (('group = "generator"', 'group = "gearbox"'),
     ["channels[0].group", "use one of the allowed words"]),
    (('name = "gen_kw"', 'name = "Gen KW"'), ["channels[0].name", "lower_case"]),
    (('maker = "X"\n', ''), ["profile.maker", "Field required", "add it"]),
])
def test_a_bad_profile_names_the_file_the_entry_and_the_fix(
        change: tuple[str, str], needles: list[str]) -> None:
    text = MINIMAL.replace(*change)
    with pytest.raises(ProfileError) as err:
        parse_profile(text, "/etc/nsp/x.toml")
    msg = str(err.value)
    assert msg.startswith("/etc/nsp/x.toml: ")
    for needle in needles:
        assert needle in msg, msg


def test_alarm_and_name_rules(tmp_path: Path) -> None:
    base = MINIMAL + '\n[[alarms.alarm]]\nname = "low_oil"\ncode = "GENSET_LOW_OIL"\naddress = 5\n'
    with pytest.raises(ProfileError, match=r"alarms\.alarm 0 \(low_oil\): a 1-bit alarm needs "
                                           "severity"):
        parse_profile(base, "p.toml")
    with pytest.raises(ProfileError, match="past bit 15"):
        parse_profile(base + 'bit = 14\nwidth = 4\n', "p.toml")
    with pytest.raises(ProfileError, match="needs \\[\\[alarms.states\\]\\]"):
        parse_profile(base + 'width = 4\n', "p.toml")
    with pytest.raises(ProfileError, match="'gen_kw' appears twice"):
        parse_profile(MINIMAL + MINIMAL[MINIMAL.index("[[channels]]"):], "p.toml")
    assert parse_profile(base + 'severity = "shutdown"\n', "p.toml").alarms.alarm[0].bit == 0


def test_missing_file_unknown_name_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no such shipped profile; use one of dse-gencomm"):
        load_profile("comap-intelilite")
    with pytest.raises(ProfileError, match="cannot be read"):
        load_profile(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[profile\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=f"{bad}: not valid TOML"):
        load_profile(bad)
    good = tmp_path / "x.toml"
    good.write_text(MINIMAL, encoding="utf-8")
    assert load_profile(good).profile.name == "x-ctrl"
