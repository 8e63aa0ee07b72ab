"""Fuzzing the hub's HTTP API: no input is a 500.

- schemathesis generates requests from the hub's own OpenAPI document (/openapi.json), every
  operation, without a token and with an operator's token;
- a property-based test (hypothesis) signs arbitrary and mutated message bodies with the site's
  real key, so they get past the signature to the body checks and the store; whatever is
  accepted must leave every page of the board readable.

In-process (the ASGI app with its real SQLite store) and a few dozen examples per operation, so
the file takes seconds; the examples are drawn anew on each run.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_server.clock import ManualClock
from edge_server.hub.app import create_app
from edge_server.hub.store import HubStore
from edge_server.hub.testing import sample_alert, sample_event, sample_gentest, sample_status
from edge_server.uplink.protocol import INGEST_PATH, encode_batch, iso, sign_headers

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FUZZ = settings(
    max_examples=25,
    deadline=None,
    database=None,  # nothing written into the work tree
    suppress_health_check=list(HealthCheck),
)


class Hub:
    def __init__(self, data: Path) -> None:
        self.store = HubStore(data)
        self.key = self.store.add_site("nsp-a", T0).encode()
        self.token = self.store.add_user("olga", "operator")
        self.app: FastAPI = create_app(self.store, ManualClock(T0))
        # rows for the lists and pages to show
        msgs = [
            {"id": str(uuid.uuid4()), "kind": k, "at": iso(T0), "body": b}
            for k, b in (
                ("status", sample_status(at=T0)),
                ("alert", sample_alert("a1", T0)),
                ("gentest", sample_gentest(1, T0)),
            )
        ]
        self.store.ingest("nsp-a", msgs, T0)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = Hub(tmp_path_factory.mktemp("fuzz-hub"))
    yield h
    h.store.close()


def fuzz_schema(schema: Any, headers: dict[str, str]) -> tuple[list[str], int]:
    """Every operation of an OpenAPI schema, FUZZ examples each, with `headers` added;
    (the 500s found as "METHOD path query -> status text", how many operations)."""
    found: list[str] = []
    n = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(operation.as_strategy())
        @FUZZ
        def check(case: Any) -> None:
            r = case.call(headers={**(case.headers or {}), **headers})
            if r.status_code >= 500:
                found.append(f"{case.method} {case.formatted_path} {case.query} -> "
                             f"{r.status_code} {r.text[:200]}")

        check()
        n += 1
    return found, n


def test_hub_api_without_a_token_never_answers_500(hub: Hub) -> None:
    found, operations = fuzz_schema(schemathesis.openapi.from_asgi("/openapi.json", hub.app), {})
    assert found == [] and operations >= 8


def test_hub_api_with_an_operators_token_never_answers_500(hub: Hub) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", hub.app)
    found, operations = fuzz_schema(schema, {"Authorization": f"Bearer {hub.token}"})
    assert found == [] and operations >= 8


# -- signed ingest, property-based ---------------------------------------------------------------
JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=12,
)
SAMPLES = {
    "status": sample_status(at=T0),
    "alert": sample_alert("a2", T0),
    "event": sample_event(),
    "gentest": sample_gentest(2, T0),
}


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, Any]:
    """(kind, body): a real body with one field replaced, dropped or added, or anything."""
    kind = draw(st.sampled_from([*SAMPLES, "commissioning"]))
    if kind == "commissioning" or draw(st.booleans()):
        return kind, draw(JSON)
    body = dict(SAMPLES[kind])
    name = draw(st.sampled_from(sorted(body)) | st.text(max_size=8))
    if draw(st.booleans()):
        body.pop(name, None)
    else:
        body[name] = draw(JSON)
    return kind, body


@given(bodies())
@FUZZ
def test_signed_ingest_of_any_body_is_never_500_and_leaves_the_board_readable(
    hub: Hub, kind_body: tuple[str, Any]
) -> None:
    kind, body = kind_body
    message = {"id": str(uuid.uuid4()), "kind": kind, "at": iso(T0), "body": body}
    raw = encode_batch("nsp-a", str(uuid.uuid4()), T0, [message])  # json.dumps writes NaN
    before = hub.store.count_messages()
    client = TestClient(hub.app, raise_server_exceptions=False)
    r = client.post(INGEST_PATH, content=raw,
                    headers=sign_headers("nsp-a", hub.key, raw, int(T0.timestamp())))
    assert r.status_code in (200, 400, 413, 422), r.text
    if r.status_code != 200:
        assert hub.store.count_messages() == before  # refused: nothing stored
        assert r.json()["code"] in ("bad_json", "invalid", "too_large")
    auth = {"Authorization": f"Bearer {hub.token}"}
    for path in ("/api/v1/sites", "/api/v1/sites/nsp-a", "/api/v1/alerts?open=1",
                 "/api/v1/gentests?from=2026-01-01&to=2026-12-31",
                 "/api/v1/gentests?from=2026-01-01&to=2026-12-31&format=csv"):
        page = client.get(path, headers=auth)
        assert page.status_code == 200, (path, page.text)
        if "csv" not in path:
            json.loads(page.text)  # strict JSON: no NaN slipped through
