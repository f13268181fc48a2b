"""caseclock: an SLA clock for support organisations, driven by Kafka events."""

__version__ = "0.1.0"
