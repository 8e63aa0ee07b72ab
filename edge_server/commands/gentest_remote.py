"""`nsp-edge gentest start|status` against the running service, and the tables for people.

start and status are HTTP clients of the edge's own API (POST /api/v1/gentests and GET
/api/v1/gentests/status): a start then passes the same interlocks as one from the site page
(mains present, no test running, node online, the site minimum duration) and the event log
records the token's user as the one who gave the command. The list and the status say how each
test commanded the set ("via regelaar / via controller", "via startrelais / via relay"; "-" for
an outage credit, which commanded nothing). Times in the tables are in the site's
zone ([site] timezone); --json prints the API's JSON as it is (UTC).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from typing import Any

import httpx

from edge_server.config import ConfigError, load_config
from edge_server.localtime import for_people

TOKEN_ENV = "NSP_EDGE_TOKEN"
TIMEOUT_S = 10.0


def _when(text: str | None, zone: str, *, offset: bool = False) -> str:
    return for_people(None if text is None else datetime.fromisoformat(text), zone,
                      offset=offset)


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


# how a test commanded the set (GenTestRecord.commanded_via); an outage credit had no command
VIA_WORDS = {"controller": "via regelaar / via controller",
             "relay": "via startrelais / via relay"}


def via_words(via: str | None) -> str:
    return VIA_WORDS.get(via or "", "-")


def _rows(pairs: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in pairs)


def list_table(tests: list[dict[str, Any]], zone: str) -> str:
    """The tests newest first: one line each, the outcome in words (NL / EN)."""
    if not tests:
        return "Nog geen aggregaattests / no generator tests yet"
    width = max(len(v) for v in VIA_WORDS.values())
    head = (f"{'nr':>5}  {'begonnen / started':16}  {'looptijd':>9}  {'door / by':12}  "
            f"{'bediend / commanded':{width}}  uitkomst / outcome")
    lines = [head]
    for t in tests:
        short = "  (korte oefening / short exercise)" if t.get("kind") == "short_exercise" else ""
        lines.append(f"{t['id']:>5}  {_when(t['started_at'], zone):16}  "
                     f"{_minutes(t.get('ran_s')):>9}  {t['started_by'][:12]:12}  "
                     f"{via_words(t.get('commanded_via')):{width}}  "
                     f"{t['outcome_nl']} / {t['outcome_en']}{short}")
    return "\n".join(lines)


def next_table(due: dict[str, Any], zone: str) -> str:
    """The NFPA 110 window of the next monthly test."""
    pairs = [("Status", f"{due['text_nl']} / {due['text_en']}"),
             ("Laatste geslaagde test / last passed", _when(due.get("last_test"), zone))]
    if due.get("last_test") is not None:
        pairs += [("Vanaf / earliest", _when(due["earliest"], zone)),
                  ("Streefdatum / target", _when(due["target"], zone)),
                  ("Uiterlijk / latest", _when(due["latest"], zone))]
    return _rows(pairs)


def status_table(st: dict[str, Any], zone: str) -> str:
    """The running test (with its progress), the last finished one, the next due, and what
    would refuse a start now."""
    pairs: list[tuple[str, str]] = []
    act = st.get("active")
    if act is None:
        pairs.append(("Nu / now", "geen test bezig / no test running"))
    else:
        pairs += [("Nu / now", f"test {act['id']} loopt / running ({act['phase']}), "
                               f"door / by {act['started_by']}"),
                  ("Begonnen / started", _when(act["started_at"], zone)),
                  ("Onder last / under load", f"{_minutes(act['ran_s'])} van / of "
                                              f"{_minutes(act['planned_s'])} "
                                              f"({act['progress'] * 100:.0f} %)"),
                  ("Bediend / commanded", via_words(act.get("commanded_via")))]
    last = st.get("last")
    if last is not None:
        pairs.append(("Vorige test / last test",
                      f"{last['id']}, {_when(last['started_at'], zone)}: {last['outcome_nl']} / "
                      f"{last['outcome_en']} ({via_words(last.get('commanded_via'))})"))
    nxt = st["next"]
    pairs.append(("Volgende / next", f"{nxt['text_nl']} / {nxt['text_en']}"
                  + ("" if nxt.get("last_test") is None
                     else f", uiterlijk / latest {_when(nxt['latest'], zone)}")))
    blocked = st.get("blocked")
    pairs.append(("Starten nu / start now", "kan / possible" if blocked is None
                  else f"geweigerd / refused: {blocked['text_nl']} / {blocked['text_en']}"))
    return _rows(pairs)


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file is not None:
        text: str = args.token_file.read_text()
        return text.strip()
    return os.environ.get(TOKEN_ENV) or None


def _fail(action: str, message: str) -> int:
    print(f"nsp-edge gentest {action}: {message}", file=sys.stderr)
    return 2


async def run_remote(args: argparse.Namespace,
                     transport: httpx.AsyncBaseTransport | None = None) -> int:
    """`start` or `status`; `transport` lets a test talk to an app in its own process."""
    action = args.gentest_action
    try:
        config = load_config(args.config)
        token = _token(args)
    except (ConfigError, OSError) as exc:
        return _fail(action, str(exc))
    url = args.url or f"http://{config.api.listen}"
    if action == "start" and token is None:
        return _fail(action, f"a start needs a technician's token: --token-file FILE or the "
                             f"environment variable {TOKEN_ENV} (nsp-edge users add ...)")
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    zone = config.site.timezone
    try:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=TIMEOUT_S,
                                     transport=transport) as client:
            if action == "start":
                r = await client.post("/api/v1/gentests", json={
                    "notes": args.notes, "short_exercise": args.short_exercise})
            else:
                r = await client.get("/api/v1/gentests/status")
    except httpx.HTTPError as exc:
        return _fail(action, f"no answer from the edge service at {url} ({exc.__class__.__name__}"
                             f"): is it running (systemctl status nsp-edge)? Or give --url")
    try:
        body = r.json()
    except ValueError:
        body = None
    if r.status_code in (401, 403):
        return _fail(action, f"{r.status_code}: the token is not valid or its role may not do "
                             "this (a start needs technician or higher)")
    if r.status_code == 409 and isinstance(body, dict):
        print(json.dumps(body, ensure_ascii=False) if args.json else
              f"geweigerd / refused: {body.get('text_nl')} / {body.get('text_en')}")
        return 1
    if r.status_code >= 300 or not isinstance(body, dict):
        return _fail(action, f"HTTP {r.status_code}: {r.text[:200]}")
    if args.json:
        print(json.dumps(body, indent=2, ensure_ascii=False))
    elif action == "start":
        print(f"test {body['id']} gestart door / started by {body['started_by']} om / at "
              f"{_when(body['started_at'], zone)}; volg met / follow with: nsp-edge gentest "
              f"status --config {args.config}")
    else:
        print(status_table(body, zone))
    return 0
