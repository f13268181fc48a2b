"""Worker configuration, from environment variables (twelve-factor).

Every setting has one variable, one default and one line of documentation here; the README's
table, the docker-compose file and the Kubernetes manifests are checked against `SETTINGS` by
tests, so they cannot drift from what the worker actually reads.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final

from caseclock.core.timeutil import parse_duration
from caseclock.live.partitioning import PARTITIONERS

INPUT_TOPICS = (
    "case-opened,case-noted,eta-set,case-resolved,priority-changed,status-changed,case-reopened"
)


@dataclass(frozen=True)
class Setting:
    env: str
    default: str
    help: str
    secret: bool = False


TABLE_STORES: Final = ("memory://", "rocksdb://")
"""The Faust table stores caseclock runs on (CASECLOCK_STORE): RocksDB in production, memory
for tests and the demo. Every test that is about the store runs over all of them."""


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "CASECLOCK_BOOTSTRAP_SERVERS",
        "127.0.0.1:19092",
        "Kafka bootstrap servers, comma-separated.",
    ),
    Setting(
        "CASECLOCK_SECURITY_PROTOCOL", "PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    ),
    Setting(
        "CASECLOCK_SASL_MECHANISM", "PLAIN", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_* only)."
    ),
    Setting("CASECLOCK_SASL_USERNAME", "", "SASL username."),
    Setting("CASECLOCK_SASL_PASSWORD", "", "SASL password (never logged).", secret=True),
    Setting("CASECLOCK_SSL_CAFILE", "", "CA bundle to verify the brokers (SSL, SASL_SSL)."),
    Setting("CASECLOCK_SSL_CERTFILE", "", "Client certificate for mutual TLS."),
    Setting("CASECLOCK_SSL_KEYFILE", "", "Client private key for mutual TLS."),
    Setting("CASECLOCK_APP_ID", "caseclock", "Consumer group and prefix of internal topics."),
    Setting(
        "CASECLOCK_INPUT_TOPICS",
        INPUT_TOPICS,
        "Inbound topics: one per type, or one combined topic.",
    ),
    Setting("CASECLOCK_ACK_TOPIC", "ack-due", "Topic for acknowledgement alerts."),
    Setting("CASECLOCK_UPDATE_TOPIC", "update-due", "Topic for update alerts."),
    Setting("CASECLOCK_ELEVATE_TOPIC", "elevate-to-l2", "Topic for elevation alerts."),
    Setting(
        "CASECLOCK_DEAD_LETTER_TOPIC", "caseclock-dead-letters", "Topic for rejected messages."
    ),
    Setting(
        "CASECLOCK_POLICY_FILE", "", "Policy file (TOML); empty: the built-in support-plus plan."
    ),
    Setting(
        "CASECLOCK_PARTITIONS",
        "8",
        "Partitions of the input and changelog topics (fixed up front).",
    ),
    Setting(
        "CASECLOCK_INPUT_PARTITIONER",
        "murmur2",
        "How the producers of every input topic place a key: murmur2 (Java clients, Kafka "
        "Streams, aiokafka, kafka-python), crc32 (librdkafka's default: confluent-kafka, "
        "kcat) or any (not checked); a message on another partition than its key's is "
        "dead-lettered (misrouted).",
    ),
    Setting(
        "CASECLOCK_REPLICATION_FACTOR", "1", "Replication factor of the topics caseclock creates."
    ),
    Setting(
        "CASECLOCK_CREATE_TOPICS",
        "true",
        "Create missing input, alert and dead-letter topics at start.",
    ),
    Setting(
        "CASECLOCK_STORE",
        "rocksdb://",
        "Table store: rocksdb:// (production) or memory:// (tests).",
    ),
    Setting("CASECLOCK_DATA_DIR", ".local/caseclock-data", "Where the RocksDB store lives."),
    Setting(
        "CASECLOCK_ROCKSDB_WRITE_BUFFER_MB",
        "8",
        "RocksDB write buffer per owned partition, MiB; up to two are held in memory before "
        "they go to disk (Faust's default: three of 64 MiB).",
    ),
    Setting(
        "CASECLOCK_ROCKSDB_BLOCK_CACHE_MB",
        "8",
        "RocksDB block cache per owned partition, MiB (Faust's default: 2 GiB each); rows "
        "read more often stay in the operating system's page cache anyway.",
    ),
    Setting(
        "CASECLOCK_TICK_INTERVAL",
        "1.0",
        "Longest the timer sleeps, in seconds, when no deadline is nearer (it wakes at each "
        "deadline); also paces the timer gauges and sets the retry delay, max(5 s, 5 x "
        "this): alerts acknowledged later than that mean a broker outage, and a due case "
        "whose evaluation failed is tried again after it.",
    ),
    Setting(
        "CASECLOCK_INPUT_SKEW",
        "0.25",
        "Seconds a case's deadlines already past when a fact is applied wait before they are "
        "evaluated, so that facts of the same case on the other input topics, produced with "
        "it and read in a later batch, are applied first.",
    ),
    Setting("CASECLOCK_RETENTION", "7d", "How long resolved and never-opened cases are kept."),
    Setting("CASECLOCK_MAX_MESSAGE_BYTES", "65536", "Larger inbound messages are dead-lettered."),
    Setting(
        "CASECLOCK_RECOVERY_TIMEOUT",
        "60",
        "Seconds a table recovery may go without progress before the worker exits to be "
        "restarted (status 75); a long recovery that progresses is left alone.",
    ),
    Setting(
        "CASECLOCK_COMMIT_STALL_TIMEOUT",
        "60",
        "Seconds a message the worker read may stay uncommitted at the broker (Faust's commit "
        "bookkeeping stuck behind a hole) before the worker exits to be restarted (status 75) "
        "and re-reads from the committed offset.",
    ),
    Setting(
        "CASECLOCK_FAUST_EVENT_METRICS",
        "false",
        "Also count every stream event and table read/write in Faust's own metrics "
        "(caseclock_faust_total_events and the like): up to a fifth of the worker's CPU at "
        "full ingest (bench/results/live-sensors-2026-12-01.json), for nothing caseclock's "
        "dashboard or alerts read.",
    ),
    Setting(
        "CASECLOCK_RECOVERY_DELAY",
        "3",
        "Seconds to wait after a rebalance before recovering tables, so that quick successive "
        "rebalances cost one recovery; not before the worker's first recovery, which makes "
        "it ready.",
    ),
    Setting(
        "CASECLOCK_SNAPSHOT_INTERVAL",
        "30",
        "Seconds between index snapshots (rocksdb:// only): a worker killed rather than "
        "stopped restarts from its latest one and reads again only the rows changed since, "
        "instead of every row; 0 saves them only at a clean stop.",
    ),
    Setting(
        "CASECLOCK_GROUP_INSTANCE_ID",
        "",
        "Static group membership id, unique per worker (the StatefulSet pod name): a restart "
        "within the session timeout causes no rebalance. Empty: dynamic membership.",
    ),
    Setting(
        "CASECLOCK_MAX_STATE_BYTES",
        "65536",
        "Largest stored row of one case; an event that would make it larger is dead-lettered "
        "(state-too-large) and the case keeps its previous state.",
    ),
    Setting(
        "CASECLOCK_SESSION_TIMEOUT", "30", "Consumer session timeout, seconds (failover time)."
    ),
    Setting("CASECLOCK_WEB_HOST", "127.0.0.1", "Address the metrics/health server binds to."),
    Setting("CASECLOCK_WEB_PORT", "6066", "Port of /metrics, /healthz and /readyz."),
    Setting("CASECLOCK_LOG_LEVEL", "info", "Log level."),
)

SETTINGS_BY_ENV = {s.env: s for s in SETTINGS}
NOT_SETTINGS = frozenset({"CASECLOCK_FAILPOINTS"})
"""CASECLOCK_ variables that are not the worker's settings, so not refused as unknown: the
test-only failpoints (`live.failpoints`, which the worker announces when armed)."""


class ConfigError(ValueError):
    pass


def _boolean(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{name}={text!r} is not a boolean")
    return value in ("true", "1", "yes")


@dataclass(frozen=True)
class Config:
    bootstrap_servers: str
    security_protocol: str
    sasl_mechanism: str
    sasl_username: str
    sasl_password: str = field(repr=False)
    ssl_cafile: str
    ssl_certfile: str
    ssl_keyfile: str
    app_id: str
    input_topics: tuple[str, ...]
    ack_topic: str
    update_topic: str
    elevate_topic: str
    dead_letter_topic: str
    policy_file: str | None
    partitions: int
    input_partitioner: str
    replication_factor: int
    create_topics: bool
    store: str
    data_dir: str
    rocksdb_write_buffer_mb: int
    rocksdb_block_cache_mb: int
    tick_interval: float
    input_skew: float
    retention_us: int
    max_message_bytes: int
    session_timeout: float
    recovery_timeout: float
    commit_stall_timeout: float
    faust_event_metrics: bool
    recovery_delay: float
    snapshot_interval: float
    group_instance_id: str
    max_state_bytes: int
    web_host: str
    web_port: int
    log_level: str

    @property
    def alert_topics(self) -> dict[str, str]:
        return {
            "ack-due": self.ack_topic,
            "update-due": self.update_topic,
            "elevate-to-l2": self.elevate_topic,
        }

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        unknown = sorted(
            k
            for k in env
            if k.startswith("CASECLOCK_") and k not in SETTINGS_BY_ENV and k not in NOT_SETTINGS
        )
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")

        def get(name: str) -> str:
            return env.get(name, SETTINGS_BY_ENV[name].default).strip()

        def number(name: str, kind: type[int] | type[float], minimum: float) -> Any:
            raw = get(name)
            try:
                v = kind(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a {kind.__name__}") from None
            if v < minimum:
                raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
            return v

        protocol = get("CASECLOCK_SECURITY_PROTOCOL").upper()
        if protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            raise ConfigError(f"CASECLOCK_SECURITY_PROTOCOL={protocol!r} is not supported")
        mechanism = get("CASECLOCK_SASL_MECHANISM").upper()
        if mechanism not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            raise ConfigError(f"CASECLOCK_SASL_MECHANISM={mechanism!r} is not supported")
        topics = tuple(t.strip() for t in get("CASECLOCK_INPUT_TOPICS").split(",") if t.strip())
        if not topics:
            raise ConfigError("CASECLOCK_INPUT_TOPICS names no topic")
        try:
            retention = parse_duration(get("CASECLOCK_RETENTION"))
        except ValueError as e:
            raise ConfigError(f"CASECLOCK_RETENTION: {e}") from None
        partitioner = get("CASECLOCK_INPUT_PARTITIONER").lower()
        if partitioner not in PARTITIONERS:
            raise ConfigError(
                f"CASECLOCK_INPUT_PARTITIONER={partitioner!r} is not one of "
                f"{', '.join(PARTITIONERS)}"
            )
        create = _boolean("CASECLOCK_CREATE_TOPICS", get("CASECLOCK_CREATE_TOPICS"))
        event_metrics = _boolean(
            "CASECLOCK_FAUST_EVENT_METRICS", get("CASECLOCK_FAUST_EVENT_METRICS")
        )
        return cls(
            bootstrap_servers=get("CASECLOCK_BOOTSTRAP_SERVERS"),
            security_protocol=protocol,
            sasl_mechanism=mechanism,
            sasl_username=get("CASECLOCK_SASL_USERNAME"),
            sasl_password=env.get("CASECLOCK_SASL_PASSWORD", ""),
            ssl_cafile=get("CASECLOCK_SSL_CAFILE"),
            ssl_certfile=get("CASECLOCK_SSL_CERTFILE"),
            ssl_keyfile=get("CASECLOCK_SSL_KEYFILE"),
            app_id=get("CASECLOCK_APP_ID"),
            input_topics=topics,
            ack_topic=get("CASECLOCK_ACK_TOPIC"),
            update_topic=get("CASECLOCK_UPDATE_TOPIC"),
            elevate_topic=get("CASECLOCK_ELEVATE_TOPIC"),
            dead_letter_topic=get("CASECLOCK_DEAD_LETTER_TOPIC"),
            policy_file=get("CASECLOCK_POLICY_FILE") or None,
            partitions=number("CASECLOCK_PARTITIONS", int, 1),
            input_partitioner=partitioner,
            replication_factor=number("CASECLOCK_REPLICATION_FACTOR", int, 1),
            create_topics=create,
            store=get("CASECLOCK_STORE"),
            data_dir=get("CASECLOCK_DATA_DIR"),
            rocksdb_write_buffer_mb=number("CASECLOCK_ROCKSDB_WRITE_BUFFER_MB", int, 1),
            rocksdb_block_cache_mb=number("CASECLOCK_ROCKSDB_BLOCK_CACHE_MB", int, 1),
            tick_interval=number("CASECLOCK_TICK_INTERVAL", float, 0.01),
            input_skew=number("CASECLOCK_INPUT_SKEW", float, 0),
            retention_us=retention,
            max_message_bytes=number("CASECLOCK_MAX_MESSAGE_BYTES", int, 256),
            session_timeout=number("CASECLOCK_SESSION_TIMEOUT", float, 6),
            recovery_timeout=number("CASECLOCK_RECOVERY_TIMEOUT", float, 5),
            commit_stall_timeout=number("CASECLOCK_COMMIT_STALL_TIMEOUT", float, 5),
            faust_event_metrics=event_metrics,
            recovery_delay=number("CASECLOCK_RECOVERY_DELAY", float, 0),
            snapshot_interval=number("CASECLOCK_SNAPSHOT_INTERVAL", float, 0),
            group_instance_id=get("CASECLOCK_GROUP_INSTANCE_ID"),
            max_state_bytes=number("CASECLOCK_MAX_STATE_BYTES", int, 1024),
            web_host=get("CASECLOCK_WEB_HOST"),
            web_port=number("CASECLOCK_WEB_PORT", int, 1),
            log_level=get("CASECLOCK_LOG_LEVEL").lower(),
        )

    def redacted(self) -> dict[str, Any]:
        """The configuration as it may be logged: secrets replaced."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if out["sasl_password"]:
            out["sasl_password"] = "***"
        return out

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.security_protocol not in ("SSL", "SASL_SSL"):
            return None
        ctx = ssl.create_default_context(cafile=self.ssl_cafile or None)
        if self.ssl_certfile:
            ctx.load_cert_chain(self.ssl_certfile, self.ssl_keyfile or None)
        return ctx


def kafka_security(cfg: Config) -> dict[str, object]:
    """aiokafka client arguments for the configured security protocol."""
    out: dict[str, object] = {"security_protocol": cfg.security_protocol}
    ctx = cfg.ssl_context()
    if ctx is not None:
        out["ssl_context"] = ctx
    if cfg.security_protocol.startswith("SASL"):
        out.update(
            sasl_mechanism=cfg.sasl_mechanism,
            sasl_plain_username=cfg.sasl_username,
            sasl_plain_password=cfg.sasl_password,
        )
    return out
