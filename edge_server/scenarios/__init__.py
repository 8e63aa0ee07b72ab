"""Scenarios: scripted situations (fridge power loss, fuel leak, ...) run against the real
virtual nodes, the real poller and the rules, on accelerated, injected time.

    nsp-edge scenario list
    nsp-edge scenario run fridge-power-loss --out result.json

library.py holds the scenarios, runner.py runs one, world.py drives the simulated site.
"""
