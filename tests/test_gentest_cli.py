"""`nsp-edge gentest start|status|list|next` for people: tables in the site's zone, --json for
machines. start/status go through the real API of a real Service (the fixtures of
test_gentest_api.py: a pymodbus power node, SQLite, real tokens), so the interlocks and the
audit are the API's own."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from edge_server.commands.gentest_remote import list_table, next_table, run_remote, status_table
from edge_server.gentest.schedule import next_due
from edge_server.rules.settings import RulesSettings
from tests.test_gentest_api import IDLE, Site, start_site
from tests.test_poller import Peer, peers  # noqa: F401  (fixture)


def _config(tmp_path: Path, site: Site) -> Path:
    """The service's own config as site.toml (the CLI reads the zone and [api] from it)."""
    path = tmp_path / "site.toml"
    bus = f'{{ name = "tcp", kind = "tcp", host = "127.0.0.1", port = {site.peer.port} }}'
    path.write_text(
        f'site = {{ id = "nsp-linde" }}\nstorage = {{ data_dir = "{tmp_path / "edge"}" }}\n'
        f'buses = [{bus}]\n'
        'nodes = [{ name = "power", bus = "tcp", unit = 1, roles = ["power"] }]\n')
    return path


def _args(config: Path, action: str, token: Path | None = None, **kw: object) -> argparse.Namespace:
    base = {"gentest_action": action, "config": config, "url": "http://edge",
            "token_file": token, "json": False, "notes": "", "short_exercise": False}
    return argparse.Namespace(**{**base, **kw})


def _transport(site: Site) -> httpx.AsyncBaseTransport:
    return httpx.ASGITransport(app=site.app, client=("10.0.0.7", 40000))


async def test_start_and_status_through_the_api(tmp_path: Path, peers: list[Peer],  # noqa: F811
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NSP_EDGE_TOKEN", raising=False)
    async for site in start_site(tmp_path, peers):
        config = _config(tmp_path, site)
        t = _transport(site)
        # no token: refused before anything is sent
        assert await run_remote(_args(config, "start"), t) == 2
        assert "technician's token" in capsys.readouterr().err
        viewer = tmp_path / "viewer.token"
        viewer.write_text(site.tokens["viewer"] + "\n")
        assert await run_remote(_args(config, "start", viewer), t) == 2
        assert "403" in capsys.readouterr().err and site.coil_writes() == []

        assert await run_remote(_args(config, "status"), t) == 0
        out = capsys.readouterr().out
        assert "geen test bezig / no test running" in out and "kan / possible" in out

        tech = tmp_path / "tech.token"
        tech.write_text(site.tokens["technician"])
        assert await run_remote(_args(config, "start", tech), t) == 0
        out = capsys.readouterr().out
        # 2026-05-04 10:00 UTC is 12:00 in Amsterdam (CEST)
        assert "gestart door / started by technician om / at 2026-05-04 12:00" in out
        assert site.coil_writes() == [True]
        assert [e["data"]["who"] for e in site.events("GENTEST_START_COMMAND")] == ["technician"]

        await site.cycle(2)
        assert await run_remote(_args(config, "status"), t) == 0
        out = capsys.readouterr().out
        assert "loopt / running" in out and "door / by technician" in out
        assert "Begonnen / started" in out and "2026-05-04 12:00" in out
        # no generator controller on this site: the node's relay commanded the set
        assert "Bediend / commanded      via startrelais / via relay" in out
        assert "geweigerd / refused" in out  # a second start now: a test runs

        # a second start: the API's 409 in words, exit 1, no second command
        assert await run_remote(_args(config, "start", tech), t) == 1
        assert "geweigerd / refused: " in capsys.readouterr().out
        assert site.coil_writes() == [True]

        assert await run_remote(_args(config, "status", json=True), t) == 0
        body = json.loads(capsys.readouterr().out)
        assert body["active"]["started_by"] == "technician"
        assert body["active"]["started_at"].startswith("2026-05-04T10:00")  # UTC for machines


async def test_mains_absent_is_refused_in_words(tmp_path: Path, peers: list[Peer],  # noqa: F811
                                                capsys: pytest.CaptureFixture[str]) -> None:
    async for site in start_site(tmp_path, peers):
        config = _config(tmp_path, site)
        site.node(**{**IDLE, "mains_present": 0})
        await site.cycle(2)
        tech = tmp_path / "tech.token"
        tech.write_text(site.tokens["technician"])
        assert await run_remote(_args(config, "start", tech), _transport(site)) == 1
        assert "Netstroom" in capsys.readouterr().out
        assert site.coil_writes() == []


async def test_no_service_names_the_fix(tmp_path: Path, peers: list[Peer],  # noqa: F811
                                        capsys: pytest.CaptureFixture[str]) -> None:
    async for site in start_site(tmp_path, peers):
        config = _config(tmp_path, site)
    assert await run_remote(_args(config, "status", url="http://127.0.0.1:1")) == 2
    err = capsys.readouterr().err
    assert "no answer from the edge service at http://127.0.0.1:1" in err and "--url" in err


@pytest.mark.parametrize("when, text", [
    ("2026-01-15T09:30:00+00:00", "2026-01-15 10:30"),  # CET
    ("2026-07-15T09:30:00+00:00", "2026-07-15 11:30"),  # CEST
])
def test_tables_in_the_site_zone(when: str, text: str) -> None:
    rec = {"id": 7, "started_at": when, "ran_s": 1800.0, "started_by": "jan",
           "outcome_nl": "Geslaagd", "outcome_en": "Passed", "kind": "monthly"}
    table = list_table([rec], "Europe/Amsterdam")
    assert text in table and "30.0 min" in table and "Geslaagd / Passed" in table
    assert "T09:30" not in table
    due = next_due(datetime.fromisoformat(when), RulesSettings(),
                   datetime.fromisoformat(when)).to_json()
    nxt = next_table(due, "Europe/Amsterdam")
    assert f"Laatste geslaagde test / last passed  {text}" in nxt
    assert "Uiterlijk / latest" in nxt and "+00:00" not in nxt


def test_list_and_status_say_how_the_set_was_commanded() -> None:
    when = "2026-07-15T09:30:00+00:00"
    base: dict[str, object] = {"started_at": when, "ran_s": 1800.0, "started_by": "jan",
            "outcome_nl": "Geslaagd", "outcome_en": "Passed", "kind": "monthly"}
    recs = [{**base, "id": 3, "commanded_via": "controller"},
            {**base, "id": 2, "commanded_via": "relay"},
            {**base, "id": 1, "commanded_via": None, "kind": "outage_credit"}]
    lines = list_table(recs, "Europe/Amsterdam").splitlines()
    assert "bediend / commanded" in lines[0]
    assert "via regelaar / via controller" in lines[1] and "relay" not in lines[1]
    assert "via startrelais / via relay" in lines[2] and "controller" not in lines[2]
    assert "via" not in lines[3]  # an outage credit commanded nothing
    # the columns stay aligned: the outcome starts at the same place on every line
    assert len({line.index("Geslaagd") for line in lines[1:]}) == 1
    due = next_due(datetime.fromisoformat(when), RulesSettings(), None).to_json()
    st = {"active": {"id": 4, "phase": "RUNNING", "started_by": "anna",
                     "started_at": "2026-07-15T10:00:00+00:00", "ran_s": 60.0,
                     "planned_s": 1800.0, "progress": 0.03, "commanded_via": "controller"},
          "last": {**recs[1], "ended_at": "2026-07-15T10:00:00+00:00"}, "next": due,
          "blocked": None}
    table = status_table(st, "Europe/Amsterdam")
    assert "Bediend / commanded" in table and "via regelaar / via controller" in table
    assert "Geslaagd / Passed (via startrelais / via relay)" in table


def test_empty_list_says_so() -> None:
    assert "no generator tests yet" in list_table([], "Europe/Amsterdam")


async def test_list_and_next_read_the_site_db(tmp_path: Path, peers: list[Peer],  # noqa: F811
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from edge_server.cli import main

    async for site in start_site(tmp_path, peers):
        config = _config(tmp_path, site)
        tech = tmp_path / "tech.token"
        tech.write_text(site.tokens["technician"])
        assert await run_remote(_args(config, "start", tech, short_exercise=True),
                                _transport(site)) == 0
        capsys.readouterr()
        assert main(["gentest", "list", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert "2026-05-04 12:00" in out and "technician" in out and "Test loopt" in out
        assert main(["gentest", "list", "--config", str(config), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)[0]["started_by"] == "technician"
        assert main(["gentest", "next", "--config", str(config)]) == 0
        assert "nu testen" in capsys.readouterr().out
