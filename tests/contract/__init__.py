"""Contract tests: a port's suite run over every implementation of it (no broker)."""
