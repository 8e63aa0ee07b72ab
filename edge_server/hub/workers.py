"""`nsp-edge hub --workers N`: N hub processes on one listening socket (uvicorn's supervisor).

Each worker is a fresh process (uvicorn starts them with multiprocessing's spawn) that builds
its own app from WORKER_ENV: its own store (a SQLite connection on the shared hub.sqlite, WAL,
one writer at a time; or its own PostgreSQL pool), so the workers share nothing but the
database, as hub instances on several machines do. A worker that dies is replaced by the
supervisor. /metrics counts per worker (the request lands on one of them).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import FastAPI

from edge_server.clock import SystemClock
from edge_server.hub.app import HubSettings, create_app
from edge_server.hub.store import HubStore

WORKER_ENV = "NSP_HUB_WORKER"
APP_FACTORY = "edge_server.hub.workers:app"


@dataclass(frozen=True)
class WorkerConfig:
    data: str
    master_key: str | None
    db: str  # "" for hub.sqlite in data
    stale_after_min: float
    clock_off_min: float

    def to_env(self) -> str:
        return json.dumps(asdict(self))


def app() -> FastAPI:
    """The app factory each worker calls (uvicorn --factory)."""
    cfg = WorkerConfig(**json.loads(os.environ[WORKER_ENV]))
    store = HubStore(Path(cfg.data), Path(cfg.master_key) if cfg.master_key else None,
                     db_url=cfg.db)
    settings = HubSettings(stale_after_min=cfg.stale_after_min, clock_off_min=cfg.clock_off_min)
    return create_app(store, SystemClock(), settings)
