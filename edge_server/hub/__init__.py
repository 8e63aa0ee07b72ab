"""The C-NSP hub: receives signed uplink messages from NSP sites and shows a readiness board.

app.py (HTTP API + board), store.py (SQLite), testing.py (start a real hub for tests/demo).
"""
