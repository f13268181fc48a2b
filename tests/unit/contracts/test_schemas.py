"""Unit tests for caseclock.contracts.schemas and caseclock.contracts.deadletter.

`jsonschema` is not a dependency, so the samples are checked with a small validator covering
exactly the keywords the generated schemas use (type, const, enum, pattern, anyOf, properties,
required, additionalProperties, min/maxLength). Each sample is also fed to the pydantic model
itself, so schema and code must agree on what is valid.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from caseclock.contracts.alerts import AlertModel
from caseclock.contracts.deadletter import DEAD_LETTER_TOPIC, DeadLetter
from caseclock.contracts.inbound import REJECT_REASONS
from caseclock.contracts.schemas import (
    ALERT_VARIANTS,
    ASYNCAPI_FILE,
    DEAD_LETTER_SCHEMA,
    TICK_TOPIC,
    drift,
    generate,
    main_schemas,
)
from caseclock.core.alerts import ALERT_TYPES
from caseclock.core.facts import INBOUND_MODELS, INBOUND_TYPES
from caseclock.live.metrics import ALERT_STAGES

CHECKED_IN = Path(__file__).resolve().parents[3] / "schemas"
FILES = generate()


def schema(name: str) -> dict[str, Any]:
    doc = orjson.loads(FILES[name])
    assert isinstance(doc, dict)
    return doc


# --- a minimal JSON Schema validator (the subset the generated schemas use) ----------------

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def errors(s: dict[str, Any], v: Any, at: str = "$") -> list[str]:
    known = {
        "$schema", "$id", "title", "description", "default", "format", "contentEncoding",
        "type", "const", "enum", "pattern", "anyOf", "properties", "required",
        "additionalProperties", "minLength", "maxLength",
    }  # fmt: skip
    assert set(s) <= known, f"validator does not support {set(s) - known}"
    if "anyOf" in s and not any(not errors(sub, v, at) for sub in s["anyOf"]):
        return [f"{at}: matches no alternative"]
    if "type" in s and not _is_type(v, s["type"]):
        return [f"{at}: not {s['type']}"]
    out = []
    if "const" in s and v != s["const"]:
        out.append(f"{at}: != {s['const']!r}")
    if "enum" in s and v not in s["enum"]:
        out.append(f"{at}: not in {s['enum']}")
    if isinstance(v, str):
        if "pattern" in s and not re.search(s["pattern"], v):
            out.append(f"{at}: does not match {s['pattern']}")
        if len(v) < s.get("minLength", 0) or len(v) > s.get("maxLength", len(v)):
            out.append(f"{at}: bad length")
    if isinstance(v, dict):
        props = s.get("properties", {})
        out += [f"{at}: missing {k}" for k in s.get("required", []) if k not in v]
        for k, item in v.items():
            if k in props:
                out += errors(props[k], item, f"{at}.{k}")
            elif s.get("additionalProperties") is False:
                out.append(f"{at}: unexpected {k}")
    return out


def valid(s: dict[str, Any], v: Any) -> bool:
    return not errors(s, v)


# --- drift ---------------------------------------------------------------------------------


def test_checked_in_schemas_match_the_code() -> None:
    problems = drift(CHECKED_IN, FILES)
    assert not problems, (
        "schemas/ is out of date with the models; run `caseclock schemas` and commit the "
        "result:\n" + "\n".join(problems)
    )


def test_generate_is_deterministic_and_complete() -> None:
    assert generate() == FILES
    expected = {f"{t}.schema.json" for t in (*INBOUND_TYPES, *ALERT_TYPES)}
    assert set(FILES) == expected | {DEAD_LETTER_SCHEMA, ASYNCAPI_FILE}
    for name, content in FILES.items():
        assert content.endswith(b"}\n")
        if name != ASYNCAPI_FILE:
            doc = schema(name)
            assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
            assert doc["$id"] == f"https://caseclock.dev/schemas/{name}"
            assert doc["title"]
            assert "RFC 3339" in doc["description"]


def test_main_schemas_writes_then_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main_schemas(str(out), check=True) == 1  # nothing there yet
    assert "missing:" in capsys.readouterr().err
    assert main_schemas(str(out), check=False) == 0
    assert {p.name for p in out.iterdir()} == set(FILES)
    assert main_schemas(str(out), check=True) == 0

    (out / "ack-due.schema.json").write_bytes(b"{}\n")
    (out / "stray.json").write_bytes(b"{}\n")
    (out / "old-type.schema.json").write_bytes(b"{}\n")
    (out / ASYNCAPI_FILE).unlink()
    assert main_schemas(str(out), check=True) == 1
    err = capsys.readouterr().err
    assert "differs:" in err and "ack-due.schema.json" in err
    assert "extra:" in err and "stray.json" in err
    assert "missing:" in err and ASYNCAPI_FILE in err
    assert "caseclock schemas" in err

    assert main_schemas(str(out), check=False) == 0
    assert not (out / "old-type.schema.json").exists()  # stale schema of ours: removed
    assert (out / "stray.json").exists()  # not ours: kept, with a warning
    assert drift(out, FILES) == [f"extra:   {out / 'stray.json'}"]


# --- inbound -------------------------------------------------------------------------------

T = "2026-01-31T09:30:00Z"
COMMON = {"event_id": "e1", "case_id": "C-1", "occurred_at": T}
VALID_INBOUND: dict[str, list[dict[str, Any]]] = {
    "case-opened": [
        {**COMMON, "type": "case-opened", "priority": 1},
        {
            **COMMON,
            "type": "case-opened",
            "priority": 2,
            "plan": "support-plus",
            "reported_at": "2026-01-31T08:00:00.123+01:00",
            "customer_id": "ACME",
            "subject": "down",
            "unknown_field": "is ignored",
        },
    ],
    "case-noted": [
        {**COMMON, "type": "case-noted", "author": "support", "visibility": "public"},
        {
            **COMMON,
            "type": "case-noted",
            "author": "customer",
            "visibility": "internal",
            "workaround": True,
        },
    ],
    "eta-set": [{**COMMON, "type": "eta-set", "eta": "2026-02-01T00:00:00+00:00"}],
    "case-resolved": [
        {**COMMON, "type": "case-resolved"},
        {**COMMON, "type": "case-resolved", "resolution": "fixed", "customer_id": None},
    ],
    "priority-changed": [{**COMMON, "type": "priority-changed", "priority": 3}],
    "status-changed": [
        {**COMMON, "type": "status-changed", "status": "pending"},
        {**COMMON, "type": "status-changed", "status": "x" * 256},
    ],
    "case-reopened": [{**COMMON, "type": "case-reopened"}],
}


def _without(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


def _invalid_inbound(t: str) -> list[dict[str, Any]]:
    base = VALID_INBOUND[t][0]
    bad = [
        _without(base, "event_id"),
        _without(base, "case_id"),
        _without(base, "occurred_at"),
        _without(base, "type"),
        {**base, "type": "something-else"},
        {**base, "occurred_at": "2026-01-31T09:30:00"},  # naive
        {**base, "occurred_at": 1769851800},  # unix time
        {**base, "event_id": ""},
        {**base, "case_id": 7},
    ]
    other = next(o for o in INBOUND_TYPES if o != t)
    bad.append({**base, "type": other})
    if t in ("case-opened", "priority-changed"):
        bad += [_without(base, "priority"), {**base, "priority": "1"}, {**base, "priority": True}]
    if t == "case-opened":
        bad += [{**base, "reported_at": "2026-01-31 08:00:00"}, {**base, "plan": ""}]
    if t == "case-noted":
        bad += [
            _without(base, "author"),
            _without(base, "visibility"),
            {**base, "author": "bot"},
            {**base, "visibility": "private"},
            {**base, "workaround": "yes"},
        ]
    if t == "eta-set":
        bad += [_without(base, "eta"), {**base, "eta": "tomorrow"}, {**base, "eta": None}]
    if t == "status-changed":
        bad += [
            _without(base, "status"),
            {**base, "status": ""},
            {**base, "status": "x" * 257},
            {**base, "status": 3},
            {**base, "status": None},
        ]
    return bad


@pytest.mark.parametrize("t", INBOUND_TYPES)
def test_inbound_schema_accepts_what_the_model_accepts(t: str) -> None:
    s = schema(f"{t}.schema.json")
    assert s["properties"]["type"]["const"] == t
    assert {"event_id", "case_id", "occurred_at", "type"} <= set(s["required"])
    for ev in VALID_INBOUND[t]:
        INBOUND_MODELS[t].model_validate_json(orjson.dumps(ev))
        assert valid(s, ev), errors(s, ev)


@pytest.mark.parametrize("t", INBOUND_TYPES)
def test_inbound_schema_rejects_what_the_model_rejects(t: str) -> None:
    s = schema(f"{t}.schema.json")
    for ev in _invalid_inbound(t):
        with pytest.raises(ValidationError):
            INBOUND_MODELS[t].model_validate_json(orjson.dumps(ev))
        assert not valid(s, ev), f"schema accepts {ev}"


# --- alerts --------------------------------------------------------------------------------


def _alert(topic: str, stage: str, reason: str, **kw: Any) -> dict[str, Any]:
    a = AlertModel(
        alert_id="a1",
        type=topic,
        stage=stage,
        reason=reason,
        case_id="C-1",
        priority=1,
        plan="support-plus",
        due_at=datetime(2026, 1, 31, 10, 30, tzinfo=UTC),
        fired_at=datetime(2026, 1, 31, 10, 30, 0, 250000, tzinfo=UTC),
        opened_at=datetime(2026, 1, 31, 9, 30, tzinfo=UTC),
        **kw,
    )
    out = orjson.loads(a.to_json())
    assert isinstance(out, dict)
    return out


GOOD_ALERTS = [
    ("ack-due", "warning", "no-acknowledgement"),
    ("ack-due", "breach", "no-acknowledgement"),
    ("update-due", "warning", "interval"),
    ("update-due", "breach", "interval"),
    ("update-due", "breach", "eta-passed"),
    ("elevate-to-l2", "action", "priority-1"),
    ("elevate-to-l2", "action", "priority-12"),
    ("elevate-to-l2", "action", "no-eta-or-workaround"),
]
ALERT_VARIANTS_SAMPLE = {t: (ALERT_VARIANTS[t][0][0], r) for t, _, r in GOOD_ALERTS}
BAD_ALERTS = [
    ("ack-due", "action", "no-acknowledgement"),
    ("ack-due", "breach", "interval"),
    ("update-due", "action", "interval"),
    ("update-due", "breach", "no-acknowledgement"),
    ("elevate-to-l2", "breach", "priority-1"),
    ("elevate-to-l2", "action", "priority-"),
    ("elevate-to-l2", "action", "priority-x"),
    ("elevate-to-l2", "action", "interval"),
]


@pytest.mark.parametrize(("topic", "stage", "reason"), GOOD_ALERTS)
def test_alert_schema_accepts_emitted_alerts(topic: str, stage: str, reason: str) -> None:
    s = schema(f"{topic}.schema.json")
    a = _alert(topic, stage, reason)
    assert a["due_at"] == "2026-01-31T10:30:00Z"
    assert valid(s, a), errors(s, a)
    full = _alert(
        topic,
        stage,
        reason,
        customer_id="ACME",
        subject="down",
        catch_up=True,
        eta=datetime(2026, 2, 1, tzinfo=UTC),
    )
    assert valid(s, full), errors(s, full)


@pytest.mark.parametrize(("topic", "stage", "reason"), BAD_ALERTS)
def test_alert_schema_rejects_wrong_stage_or_reason(topic: str, stage: str, reason: str) -> None:
    assert not valid(schema(f"{topic}.schema.json"), _alert(topic, stage, reason))


@pytest.mark.parametrize("topic", ALERT_TYPES)
def test_alert_schema_structure(topic: str) -> None:
    s = schema(f"{topic}.schema.json")
    assert s["properties"]["type"]["const"] == topic
    assert tuple(s["properties"]["stage"]["enum"]) == ALERT_STAGES[topic]
    assert s["additionalProperties"] is False
    # to_json() writes every field, so consumers may rely on all of them being present
    assert set(s["required"]) == set(AlertModel.model_fields)
    good = _alert(topic, *ALERT_VARIANTS_SAMPLE[topic])
    other = next(o for o in ALERT_TYPES if o != topic)
    for bad in (
        {**good, "type": other},
        _without(good, "fired_at"),
        _without(good, "alert_id"),
        {**good, "extra": 1},
        {**good, "due_at": "2026-01-31T10:30:00"},
        {**good, "priority": "1"},
    ):
        assert not valid(s, bad), bad


# --- dead letters --------------------------------------------------------------------------

RECEIVED = datetime(2026, 1, 31, 9, 30, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (b"C-1", b'{"type": "case-opened"'),
        (None, b""),
        (b"\xff\xfe", b"\x00\x01\x80\xff not utf-8 \xc3("),
        (b"", bytes(range(256)) * 300),
    ],
)
def test_dead_letter_round_trips_the_original_bytes(key: bytes | None, value: bytes) -> None:
    dl = DeadLetter.build(
        "invalid-json", "not valid JSON", "case-opened", 3, 42, key, value, RECEIVED
    )
    raw = dl.to_json()
    back = DeadLetter.model_validate_json(raw)
    assert back == dl
    assert back.original_key() == key
    assert back.original_value() == value
    doc = orjson.loads(raw)
    assert doc["received_at"] == "2026-01-31T09:30:01Z"
    assert doc["key_encoding"] == doc["value_encoding"] == "base64"
    s = schema(DEAD_LETTER_SCHEMA)
    assert valid(s, doc), errors(s, doc)


def test_dead_letter_schema() -> None:
    s = schema(DEAD_LETTER_SCHEMA)
    assert s["properties"]["reason"]["enum"] == list(REJECT_REASONS)
    assert set(s["required"]) == set(DeadLetter.model_fields)
    good = orjson.loads(
        DeadLetter.build("oversized", "too big", "eta-set", 0, 1, b"k", b"v", RECEIVED).to_json()
    )
    for bad in (
        {**good, "reason": "bogus"},
        {**good, "value": "not base64!"},
        {**good, "key": "abc"},  # bad padding
        {**good, "value_encoding": "utf-8"},
        {**good, "partition": "0"},
        {**good, "received_at": "2026-01-31T09:30:01"},
        _without(good, "value"),
        {**good, "extra": True},
    ):
        assert not valid(s, bad), bad
        with pytest.raises(ValidationError):
            DeadLetter.model_validate_json(orjson.dumps(bad))


def test_dead_letter_rejects_unknown_reason_and_naive_time() -> None:
    with pytest.raises(ValidationError):
        DeadLetter.build("bogus", "", "t", 0, 0, None, b"", RECEIVED)
    with pytest.raises(ValidationError):
        DeadLetter.build("oversized", "", "t", 0, 0, None, b"", datetime(2026, 1, 31))


# --- AsyncAPI ------------------------------------------------------------------------------


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/")
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_asyncapi_describes_every_topic() -> None:
    doc = schema(ASYNCAPI_FILE)
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    topics = {c["address"] for c in doc["channels"].values()}
    assert topics == {*INBOUND_TYPES, *ALERT_TYPES, DEAD_LETTER_TOPIC, TICK_TOPIC}
    for t in INBOUND_TYPES:
        assert "combined" in doc["channels"][t]["description"]
    payloads = set()
    for ch in doc["channels"].values():
        for ref in ch["messages"].values():
            msg = _resolve(doc, ref["$ref"])
            key = msg["bindings"]["kafka"]["key"]
            if ch["address"] == TICK_TOPIC:  # one tick names many cases of its partition
                assert key["type"] == "null" and "case_id" in key["description"]
            else:
                assert key["type"] == "string" and "case_id" in key["description"]
            if "$ref" in msg["payload"]:
                payloads.add(msg["payload"]["$ref"].removeprefix("./"))
    assert payloads == set(FILES) - {ASYNCAPI_FILE}

    actions: dict[str, set[str]] = {}
    for op in doc["operations"].values():
        ch = _resolve(doc, op["channel"]["$ref"])
        for m in op["messages"]:
            _resolve(doc, m["$ref"])
        actions.setdefault(ch["address"], set()).add(op["action"])
    assert all(actions[t] == {"receive"} for t in INBOUND_TYPES)
    assert all(actions[t] == {"send"} for t in (*ALERT_TYPES, DEAD_LETTER_TOPIC))
    assert actions[TICK_TOPIC] == {"send", "receive"}


def test_dead_letter_keeps_a_prefix_of_giant_values_and_says_so() -> None:
    from caseclock.contracts.deadletter import MAX_DEAD_LETTER_VALUE_BYTES

    small = DeadLetter.build("oversized", "x", "t", 0, 0, None, b"a" * 100, RECEIVED)
    assert (small.value_size, small.value_truncated) == (100, False)
    giant = bytes(range(256)) * (3 * MAX_DEAD_LETTER_VALUE_BYTES // 256)
    dl = DeadLetter.build("oversized", "x", "t", 0, 0, b"k", giant, RECEIVED)
    assert dl.value_truncated and dl.value_size == len(giant)
    assert dl.original_value() == giant[:MAX_DEAD_LETTER_VALUE_BYTES]
    assert len(dl.to_json()) < 1_000_000  # fits Kafka's default max message size
