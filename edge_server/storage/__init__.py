"""Storage of readings, aggregates, events and accounts: SQLite (default), optional InfluxDB."""
