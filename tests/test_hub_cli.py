"""`nsp-edge hub` as a real subprocess: add-site, add-user, serve, and a signed batch accepted."""

from __future__ import annotations

import stat
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from edge_server.hub.testing import sample_status, start_hub_process, wait_http
from edge_server.uplink.protocol import encode_batch, iso, sign_headers
from tests.conftest import ROOT, free_port


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_server.cli", "hub", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_hub_commands_register_sites_users_and_serve(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    out = cli("add-site", "nsp-a", "nsp-b", "--data", str(data))
    assert out.returncode == 0, out.stderr
    lines = [line.split() for line in out.stdout.strip().splitlines()]
    assert [line[0] for line in lines] == ["nsp-a", "nsp-b"]
    keys = {line[0]: line[1] for line in lines}
    assert len(keys["nsp-a"]) >= 32 and keys["nsp-a"] != keys["nsp-b"]
    bad = cli("add-site", "NSP A!", "--data", str(data))
    assert bad.returncode == 2 and "invalid site id" in bad.stderr
    user = cli("add-user", "olga", "--role", "operator", "--data", str(data))
    assert user.returncode == 0, user.stderr
    token = user.stdout.strip().splitlines()[-1].split()[-1]
    # What holds secrets in the data folder: the master key, and hub.sqlite unless on PostgreSQL.
    for name in ("master.key", "hub.sqlite"):
        if (data / name).exists() or name == "master.key":
            assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name

    # `nsp-edge hub` needs a port number: when another process takes the free_port() first, the
    # hub exits at start-up; start it again on a new port (a start-up retry, not a wait).
    for attempt in range(3):
        port = free_port()
        proc = start_hub_process(data, port)
        try:
            wait_http(f"http://127.0.0.1:{port}/", timeout_s=60, proc=proc)
            break
        except ChildProcessError:
            proc.communicate(timeout=15)
            if attempt == 2:
                raise
        except BaseException:
            proc.kill()
            proc.communicate(timeout=15)
            raise
    try:
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(url + "/api/v1/sites").status_code == 401
        now = datetime.now(UTC)
        msg = {
            "id": str(uuid.uuid4()),
            "kind": "status",
            "at": iso(now),
            "body": sample_status(at=now),
        }
        body = encode_batch("nsp-a", str(uuid.uuid4()), now, [msg])
        headers = sign_headers("nsp-a", keys["nsp-a"].encode(), body, int(now.timestamp()))
        r = httpx.post(url + "/api/v1/ingest", content=body, headers=headers)
        assert r.status_code == 200 and r.json()["held"] == [msg["id"]]
        sites = httpx.get(url + "/api/v1/sites", headers={"Authorization": f"Bearer {token}"})
        by_id = {s["site_id"]: s for s in sites.json()["sites"]}
        assert by_id["nsp-a"]["readiness"] == "READY"
        assert by_id["nsp-b"]["readiness"] == "UNKNOWN" and by_id["nsp-b"]["last_contact"] is None
        assert httpx.get(url + "/").headers["content-type"].startswith("text/html")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    text = err.decode()
    assert keys["nsp-a"] not in text and token not in text


def _error_cases(tmp: Path) -> list[tuple[list[str], str]]:
    not_a_dir = tmp / "a-file"
    not_a_dir.write_text("x")
    data = str(tmp / "hub")
    return [
        (["add-site", "nsp-a", "nsp-a", "--data", data], "given more than once"),
        (["--data", data, "--stale-min", "-1"], "--stale-min -1: use more than 0"),
        (["--data", data, "--clock-off-min", "0"], "--clock-off-min 0: use more than 0"),
        (["--data", data, "--listen", ":99999"], "--listen ':99999': use HOST:PORT"),
        (["--data", data, "--listen", "127.0.0.1:99999"], "port 1-65535"),
        (["add-site", "nsp-a", "--data", str(not_a_dir / "hub")], "--data"),
        (["--data", str(not_a_dir / "hub"), "--listen", f"127.0.0.1:{free_port()}"], "--data"),
    ]


def test_cli_and_start_up_errors_name_the_argument_exit_2_no_traceback(tmp_path: Path) -> None:
    for args, said in _error_cases(tmp_path):
        out = cli(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert said in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)


def test_a_port_in_use_is_exit_2_naming_listen(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = cli("--data", str(tmp_path / "hub"), "--listen", f"127.0.0.1:{port}")
    assert out.returncode == 2 and f"--listen 127.0.0.1:{port}" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_the_hub_says_where_it_listens(tmp_path: Path, hub_db: str) -> None:
    """The start line names the board, the ingest URL, the database (a PostgreSQL URL without
    its password) and the master key's file (on PostgreSQL the database alone does not say)."""
    port = free_port()
    db = ["--db", hub_db.replace("nsp@", "nsp:s3cret-pw@", 1)] if hub_db else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_server.cli", "hub", "--data", str(tmp_path / "hub"),
         "--listen", f"127.0.0.1:{port}", *db],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"board http://127.0.0.1:{port}/" in line, line
        assert f"http://127.0.0.1:{port}/api/v1/ingest" in line, line
        where = f"PostgreSQL {hub_db.split('://', 1)[1]}" if hub_db else str(
            tmp_path / "hub" / "hub.sqlite")
        assert f"data in {where}, master key in {tmp_path / 'hub' / 'master.key'};" in line, line
        assert "s3cret" not in line
        wait_http(f"http://127.0.0.1:{port}/")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
