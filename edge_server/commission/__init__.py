"""Commissioning a site's nodes (`nsp-edge commission`): read each node once, check it against
the site config and the register map, and say in Dutch or English what is wrong and how to fix it.

- texts.py: every sentence, including one per fault/status bit of registers.toml (NL + EN).
- assess.py: pure checks on a node's register image -> PASS / WARN / FAIL, text and JSON.
- probe.py: the reads (one FC03 per node through edge_server.modbus_client), scan and --watch.
docs/commissioning.md is the technician's guide.
"""
