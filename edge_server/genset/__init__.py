"""Generator controllers on Modbus, described by profile files (docs/generators.md)."""
