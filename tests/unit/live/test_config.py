"""Worker settings: defaults, validation, security mapping, secrets kept out of logs."""

from __future__ import annotations

import ssl

import faust
import pytest

from caseclock.live.config import SETTINGS, Config, ConfigError, kafka_security


def test_defaults_are_the_documented_ones() -> None:
    cfg = Config.from_env({})
    assert cfg.bootstrap_servers == "127.0.0.1:19092"
    assert cfg.input_topics == (
        "case-opened",
        "case-noted",
        "eta-set",
        "case-resolved",
        "priority-changed",
        "status-changed",
        "case-reopened",
    )
    assert cfg.alert_topics == {
        "ack-due": "ack-due",
        "update-due": "update-due",
        "elevate-to-l2": "elevate-to-l2",
    }
    assert cfg.web_host == "127.0.0.1"  # metrics bind to loopback unless configured
    assert cfg.retention_us == 7 * 86400 * 10**6
    assert cfg.store == "rocksdb://" and cfg.partitions == 8
    assert cfg.input_partitioner == "murmur2"  # the Java client's
    assert len({s.env for s in SETTINGS}) == len(SETTINGS)


def test_combined_input_topic() -> None:
    assert Config.from_env({"CASECLOCK_INPUT_TOPICS": "support-events"}).input_topics == (
        "support-events",
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CASECLOCK_PARTITONS": "4"}, "unknown setting"),
        ({"CASECLOCK_PARTITIONS": "four"}, "CASECLOCK_PARTITIONS"),
        ({"CASECLOCK_PARTITIONS": "0"}, "at least 1"),
        ({"CASECLOCK_TICK_INTERVAL": "0"}, "CASECLOCK_TICK_INTERVAL"),
        ({"CASECLOCK_SECURITY_PROTOCOL": "KERBEROS"}, "not supported"),
        ({"CASECLOCK_SASL_MECHANISM": "GSSAPI"}, "not supported"),
        ({"CASECLOCK_RETENTION": "soon"}, "CASECLOCK_RETENTION"),
        ({"CASECLOCK_INPUT_TOPICS": " , "}, "names no topic"),
        ({"CASECLOCK_CREATE_TOPICS": "maybe"}, "boolean"),
        ({"CASECLOCK_INPUT_PARTITIONER": "fnv1a"}, "not one of murmur2, crc32, any"),
    ],
)
def test_bad_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_env(env)


@pytest.mark.parametrize("value", ["murmur2", "crc32", "any", " CRC32 "])
def test_input_partitioner_values(value: str) -> None:
    cfg = Config.from_env({"CASECLOCK_INPUT_PARTITIONER": value})
    assert cfg.input_partitioner == value.strip().lower()


def test_password_never_appears_in_logs_or_repr() -> None:
    cfg = Config.from_env(
        {"CASECLOCK_SECURITY_PROTOCOL": "SASL_SSL", "CASECLOCK_SASL_PASSWORD": "hunter2-secret"}
    )
    assert "hunter2-secret" not in repr(cfg)
    assert "hunter2-secret" not in str(cfg.redacted())
    assert cfg.redacted()["sasl_password"] == "***"
    assert cfg.sasl_password == "hunter2-secret"


def test_sasl_ssl_maps_to_aiokafka_and_faust_credentials() -> None:
    cfg = Config.from_env(
        {
            "CASECLOCK_SECURITY_PROTOCOL": "SASL_SSL",
            "CASECLOCK_SASL_MECHANISM": "SCRAM-SHA-512",
            "CASECLOCK_SASL_USERNAME": "svc",
            "CASECLOCK_SASL_PASSWORD": "pw",
        }
    )
    args = kafka_security(cfg)
    assert args["security_protocol"] == "SASL_SSL"
    assert args["sasl_mechanism"] == "SCRAM-SHA-512"
    assert args["sasl_plain_username"] == "svc" and args["sasl_plain_password"] == "pw"
    assert isinstance(args["ssl_context"], ssl.SSLContext)

    from caseclock.core.policy import load_policy
    from caseclock.live.faust_app import CaseClock

    creds = CaseClock(cfg, load_policy()).app.conf.broker_credentials
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.username == "svc" and creds.ssl_context is not None
    assert str(creds.mechanism.value) == "SCRAM-SHA-512"


def test_plaintext_has_no_credentials_and_ssl_has_a_context() -> None:
    assert kafka_security(Config.from_env({})) == {"security_protocol": "PLAINTEXT"}
    ssl_args = kafka_security(Config.from_env({"CASECLOCK_SECURITY_PROTOCOL": "SSL"}))
    assert isinstance(ssl_args["ssl_context"], ssl.SSLContext)
    assert "sasl_mechanism" not in ssl_args


def test_failpoints_are_not_refused_as_an_unknown_setting() -> None:
    """CASECLOCK_FAILPOINTS is read by `live.failpoints`, not a setting: a worker armed for a
    fault scenario must start (the first kill-then-move runs exited 2 on it)."""
    Config.from_env({"CASECLOCK_FAILPOINTS": "revoke:2"})
    with pytest.raises(ConfigError, match="CASECLOCK_FAILPOINT"):
        Config.from_env({"CASECLOCK_FAILPOINT": "revoke"})  # a typo is still refused
