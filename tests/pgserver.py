"""A throwaway PostgreSQL cluster for tests: initdb in a fresh folder under /tmp, a free port,
pg_ctl; removed again by close().

    pg = PgServer.create()              # skips (laptop) / fails (CI) when PostgreSQL is missing
    url = pg.new_database()             # postgresql://nsp@127.0.0.1:PORT/nsp_test_1, empty
    pg.restart(); pg.stop(); pg.start() # the database away and back, same port, same data
    pg.drop_database(url); pg.close()

Debian's `postgresql` package, its own service never used. initdb refuses to run as root: as root
the folder is handed to the `postgres` user (`install -d -o postgres`) and initdb/pg_ctl run as
that user (runuser); as anyone else they run directly. Trust authentication on 127.0.0.1 only,
user `nsp`. `fsync=False` (the ordinary parametrised hub suite) turns the server's fsync off for
speed: a crash of the machine could lose commits, which those tests never cause; a durability
test asks for `fsync=True`.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

NOT_INSTALLED = "PostgreSQL server not installed: apt install postgresql"
USER = "nsp"


def bindir() -> Path | None:
    """The newest /usr/lib/postgresql/N/bin with initdb and pg_ctl, else `pg_config --bindir`."""
    found = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")]

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in p.parent.name.split(".") if x.isdigit())

    candidates = sorted(found, key=version, reverse=True)
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    for c in candidates:
        if (c / "initdb").is_file() and (c / "pg_ctl").is_file():
            return c
    return None


def need_postgres() -> Path:
    """The server's bin folder, or skip (laptop) / fail (CI=true) with the install command."""
    found = bindir()
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(NOT_INSTALLED)
        pytest.skip(NOT_INSTALLED)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One cluster in its own folder: DIR/data (the cluster), DIR/log, the socket in DIR."""

    def __init__(self, bin_dir: Path, *, fsync: bool = False) -> None:
        self.bin = bin_dir
        self.fsync = fsync
        self.as_postgres = os.geteuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="nsp-pg-", dir="/tmp"))
        if self.as_postgres:
            pwd.getpwnam("postgres")  # KeyError: Debian's package creates this user
            subprocess.run(["install", "-d", "-o", "postgres", "-m", "0700", str(self.dir)],
                           check=True)
        self.data = self.dir / "data"
        self.log = self.dir / "log"
        self.port = 0
        self._names = itertools.count(1)
        self._databases: set[str] = set()
        self.running = False

    @classmethod
    def create(cls, *, fsync: bool = False) -> PgServer:
        """initdb and start (a free port; a new one when another process took it meanwhile)."""
        server = cls(need_postgres(), fsync=fsync)
        try:
            server._run("initdb", "-D", str(server.data), "-A", "trust", "-U", USER,
                        "-E", "UTF8", "--no-locale", "--no-sync")
            for attempt in range(5):
                server.port = _free_port()
                try:
                    server.start()
                    break
                except subprocess.CalledProcessError:
                    if attempt == 4 or "could not bind" not in server.log_text():
                        raise
        except BaseException:
            server.close()
            raise
        return server

    @property
    def url(self) -> str:
        """The maintenance database `postgres` (create and drop other databases through it)."""
        return self.url_of("postgres")

    def url_of(self, database: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, cwd=self.dir, capture_output=True, text=True)
        if result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode, cmd, result.stdout,
                f"{result.stderr}\n--- server log ---\n{self.log_text()}")

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> None:
        """Start on self.port and wait until it accepts connections (pg_ctl -w)."""
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
                   f" -c fsync={'on' if self.fsync else 'off'} -c max_connections=300")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log),
                  "-w", "-t", "60", "start")
        self.running = True

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, committed data stays (it is on disk)."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
            self.running = False

    def restart(self) -> None:
        self.stop()
        self.start()

    def new_database(self) -> str:
        """The URL of a new empty database nsp_test_N (dropped by drop_database or close)."""
        name = f"nsp_test_{next(self._names)}"
        with psycopg.connect(self.url, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        self._databases.add(name)
        return self.url_of(name)

    def drop_database(self, url: str) -> None:
        """Drop it, cutting the connections a test left open (WITH (FORCE), PostgreSQL 13+)."""
        name = url.rsplit("/", 1)[1]
        if self.running:
            with psycopg.connect(self.url, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._databases.discard(name)

    def close(self) -> None:
        """Stop the server (if started) and remove its folder."""
        try:
            if self.running:
                self.stop()
            elif (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass  # not running after all (a failed start); the folder goes anyway
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

