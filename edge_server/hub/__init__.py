"""The C-NSP hub: receives signed uplink messages from NSP sites and shows a readiness board.

app.py (HTTP API + board), store.py (SQLite), keys.py (site keys encrypted at rest under a
master key file), testing.py (start a real hub for tests/demo).
"""
