"""Machine-readable contracts: JSON Schemas for every message and an AsyncAPI 3 document.

`caseclock schemas` writes them to ``schemas/`` (checked in); `caseclock schemas --check` fails
when the checked-in files no longer match the code, so the contracts cannot drift from the
pydantic models they are generated from.

Files (all JSON, serialised deterministically: sorted keys, 2-space indent, trailing newline):

* ``<type>.schema.json`` for each inbound event (``case-opened`` ... ``priority-changed``),
  from the models' *validation* schema;
* ``<topic>.schema.json`` for each alert topic (``ack-due``, ``update-due``, ``elevate-to-l2``),
  from :class:`~caseclock.contracts.alerts.AlertModel`'s *serialisation* schema, narrowed to
  that topic's
  ``type``, stages and reasons;
* ``dead-letter.schema.json`` for :class:`~caseclock.contracts.deadletter.DeadLetter`;
* ``asyncapi.json``: the AsyncAPI 3.0.0 document describing every topic. It is JSON rather than
  YAML to keep the runtime free of a YAML dependency; JSON is valid YAML, so any AsyncAPI tool
  reads it as is.

The schemas are JSON Schema draft 2020-12. Besides ``"format": "date-time"`` (an annotation only,
for most validators), every timestamp carries a ``pattern`` requiring an RFC 3339 date-time with
a UTC offset, so a plain schema validator rejects naive timestamps as caseclock does.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import orjson
from pydantic import BaseModel

from caseclock import __version__
from caseclock.contracts.alerts import AlertModel
from caseclock.contracts.deadletter import DEAD_LETTER_TOPIC, DeadLetter
from caseclock.contracts.inbound import REJECT_REASONS
from caseclock.core.alerts import ALERT_TYPES
from caseclock.core.facts import INBOUND_MODELS, INBOUND_TYPES
from caseclock.core.timeutil import INSTANT_RANGE

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_BASE: Final = "https://caseclock.dev/schemas/"
ASYNCAPI_FILE: Final = "asyncapi.json"
DEAD_LETTER_SCHEMA: Final = "dead-letter.schema.json"
#: Internal topic of timer ticks (co-partitioned with the inbound topics).
TICK_TOPIC: Final = "caseclock-ticks"

#: RFC 3339 date-time with a mandatory offset (the same grammar caseclock accepts on input).
TIMESTAMP_PATTERN: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_TIMESTAMPS: Final = (
    "Timestamps are RFC 3339 date-times with a UTC offset (e.g. 2026-01-31T09:30:00Z or "
    "2026-01-31T10:30:00+01:00); naive timestamps are invalid."
)
_INBOUND_RANGE: Final = (
    f"Every timestamp of an inbound event must lie in {INSTANT_RANGE} (the first instant "
    "included, the second not); one outside is dead-lettered as `timestamp-out-of-range`."
)

#: Alert topic -> (stages, JSON Schema of `reason`).
ALERT_VARIANTS: Final[Mapping[str, tuple[tuple[str, ...], dict[str, Any]]]] = {
    "ack-due": (("warning", "breach"), {"enum": ["no-acknowledgement"]}),
    "update-due": (("warning", "breach"), {"enum": ["interval", "eta-passed"]}),
    "elevate-to-l2": (
        ("action",),
        {
            "anyOf": [
                {"pattern": "^priority-[0-9]+$"},
                {"const": "no-eta-or-workaround"},
            ]
        },
    ),
}
_ALERT_SUMMARY: Final[Mapping[str, str]] = {
    "ack-due": "A case has not been acknowledged (no public support note or ETA): warning at "
    "the warn fraction of the acknowledge window, breach at its end.",
    "update-due": "A case owes the customer an update: warning and breach (reason `interval`) "
    "of the update window, or breach with reason `eta-passed` when the ETA in force has passed.",
    "elevate-to-l2": "A case must be elevated to Level 2: at once for an 'immediately' priority "
    "(reason `priority-<n>`), or when no ETA or workaround arrived in time "
    "(reason `no-eta-or-workaround`).",
}
_INBOUND_SUMMARY: Final[Mapping[str, str]] = {
    "case-opened": "A case was opened; starts its clocks.",
    "case-noted": "A note was added to a case; a public support note is a communication.",
    "eta-set": "An ETA for a fix or restoration was given; an ETA is a communication.",
    "case-resolved": "The case was resolved; stops every clock.",
    "priority-changed": "The case's priority changed; every clock is re-evaluated.",
    "status-changed": "The case's upstream status changed; a status in the plan's "
    "pause_statuses stops every clock until the status changes again.",
    "case-reopened": "A resolved case was reopened; its clocks restart, and an update is owed "
    "one full update window after the reopen.",
}
_KAFKA_BINDING_VERSION: Final = "0.5.0"
_CASE_ID_KEY: Final[dict[str, Any]] = {"type": "string", "description": "case_id"}


def schema_file(name: str) -> str:
    return f"{name}.schema.json"


def dumps(obj: Any) -> bytes:
    """The deterministic serialisation of every generated file."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def _with_timestamp_pattern(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _with_timestamp_pattern(v) for k, v in node.items()}
        if out.get("format") == "date-time" and "pattern" not in out:
            out["pattern"] = TIMESTAMP_PATTERN
        return out
    if isinstance(node, list):
        return [_with_timestamp_pattern(v) for v in node]
    return node


def _document(name: str, title: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    doc = _with_timestamp_pattern(schema)
    assert isinstance(doc, dict)
    doc["$schema"] = JSON_SCHEMA_DIALECT
    doc["$id"] = SCHEMA_ID_BASE + schema_file(name)
    doc["title"] = title
    doc["description"] = f"{description} {_TIMESTAMPS}"
    return doc


def _outbound(model: type[BaseModel]) -> dict[str, Any]:
    """Serialisation schema; `to_json()` dumps every field (nulls included), so all are required."""
    schema = model.model_json_schema(mode="serialization")
    schema["required"] = list(schema["properties"])
    return schema


def inbound_schema(event_type: str) -> dict[str, Any]:
    schema = INBOUND_MODELS[event_type].model_json_schema(mode="validation")
    doc = _document(
        event_type,
        f"caseclock inbound event: {event_type}",
        f"{_INBOUND_SUMMARY[event_type]} Consumed from topic `{event_type}` (or a combined "
        "inbound topic), one JSON object per message, keyed by `case_id`. Unknown fields are "
        "ignored.",
        schema,
    )
    # The range is not in the pattern: an offset moves an instant across a bound (and a
    # pattern that guessed would reject what caseclock accepts), so it is stated instead.
    doc["description"] += f" {_INBOUND_RANGE}"
    return doc


def alert_schema(topic: str) -> dict[str, Any]:
    stages, reason = ALERT_VARIANTS[topic]
    schema = _outbound(AlertModel)
    props = schema["properties"]
    props["type"] = {"const": topic, "title": "Type", "type": "string"}
    props["stage"] = {**props["stage"], "enum": list(stages)}
    props["reason"] = {**props["reason"], "type": "string", **reason}
    return _document(
        topic,
        f"caseclock alert: {topic}",
        f"{_ALERT_SUMMARY[topic]} Published to topic `{topic}`, keyed by `case_id`. "
        "`alert_id` is deterministic: drop repeats by it.",
        schema,
    )


def dead_letter_schema() -> dict[str, Any]:
    schema = _outbound(DeadLetter)
    assert schema["properties"]["reason"]["enum"] == list(REJECT_REASONS)
    return _document(
        "dead-letter",
        "caseclock dead-letter record",
        f"A message caseclock could not accept, published to topic `{DEAD_LETTER_TOPIC}`: the "
        "reason code, a human detail, where it came from and the original key and value bytes "
        "(base64, standard alphabet with padding).",
        schema,
    )


# --- AsyncAPI ------------------------------------------------------------------------------


def _message(
    name: str, summary: str, payload: dict[str, Any], key: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": "application/json",
        "payload": payload,
        "bindings": {"kafka": {"key": key, "bindingVersion": _KAFKA_BINDING_VERSION}},
    }


def asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    def add(
        channel: str,
        description: str,
        message: dict[str, Any],
        actions: tuple[str, ...],
    ) -> None:
        messages[channel] = message
        channels[channel] = {
            "address": channel,
            "title": channel,
            "description": description,
            "messages": {channel: {"$ref": f"#/components/messages/{channel}"}},
        }
        for action in actions:
            operations[f"{action}-{channel}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{channel}"},
                "summary": f"caseclock {action}s on `{channel}`.",
                "messages": [{"$ref": f"#/channels/{channel}/messages/{channel}"}],
            }

    for t in INBOUND_TYPES:
        add(
            t,
            f"Inbound `{t}` events from the ticketing system. One topic per event type is the "
            "default; all the types may instead share a single combined topic, since every "
            "event names its `type`. The Kafka key must equal the event's `case_id`.",
            _message(t, _INBOUND_SUMMARY[t], {"$ref": f"./{schema_file(t)}"}, _CASE_ID_KEY),
            ("receive",),
        )
    for t in ALERT_TYPES:
        add(
            t,
            f"Alerts `{t}`. {_ALERT_SUMMARY[t]}",
            _message(t, _ALERT_SUMMARY[t], {"$ref": f"./{schema_file(t)}"}, _CASE_ID_KEY),
            ("send",),
        )
    add(
        DEAD_LETTER_TOPIC,
        "Messages caseclock rejected (invalid JSON or event, unknown type, plan or priority, "
        "naive or out-of-range timestamp, key mismatch, oversized, misrouted), with the reason "
        "and the original bytes. "
        "Processing goes on after a rejection.",
        _message(
            "dead-letter",
            "A rejected inbound message.",
            {"$ref": f"./{DEAD_LETTER_SCHEMA}"},
            {
                "type": "string",
                "description": "case_id: the original message's key, copied as is (for "
                "malformed input it may not be a valid case_id; absent if the original had none)",
            },
        ),
        ("send",),
    )
    add(
        TICK_TOPIC,
        "Internal: caseclock's timer ticks, co-partitioned with the inbound topics (same "
        "partition count). A tick names up to 500 due cases of one partition and is sent to "
        "that partition, so the cases' timers are handled by the worker that owns their "
        "state. Not a public interface; the payload may change in any release.",
        _message(
            "tick",
            "An internal timer tick: due cases of one partition.",
            {
                "type": "object",
                "description": "Internal timer tick (private format).",
                "properties": {
                    "cases": {
                        "type": "array",
                        "description": "[case_id, deadline in microseconds since the epoch]",
                        "items": {"type": "array", "minItems": 2, "maxItems": 2},
                        "maxItems": 500,
                    }
                },
                "required": ["cases"],
            },
            {
                "type": "null",
                "description": "none: the payload names the cases (all of the partition the "
                "tick is sent to, as the case_id key of their events places them)",
            },
        ),
        ("send", "receive"),
    )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "caseclock",
            "version": __version__,
            "description": "SLA clock service: consumes case events from Kafka and publishes "
            "acknowledgement, update and elevation alerts when they fall due. Every message is "
            "a JSON object keyed by `case_id` (internal ticks aside). "
            + _TIMESTAMPS
            + " Payloads reference the JSON Schema (draft 2020-12) files next to this document.",
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


# --- files ---------------------------------------------------------------------------------


def generate() -> dict[str, bytes]:
    """File name -> content of every generated file."""
    files = {schema_file(t): dumps(inbound_schema(t)) for t in INBOUND_TYPES}
    files.update({schema_file(t): dumps(alert_schema(t)) for t in ALERT_TYPES})
    files[DEAD_LETTER_SCHEMA] = dumps(dead_letter_schema())
    files[ASYNCAPI_FILE] = dumps(asyncapi())
    return files


def drift(out_dir: Path, files: Mapping[str, bytes]) -> list[str]:
    """How `out_dir` differs from `files`: one line per differing, missing or extra *.json."""
    problems = []
    for name in sorted(files):
        path = out_dir / name
        if not path.is_file():
            problems.append(f"missing: {path}")
        elif path.read_bytes() != files[name]:
            problems.append(f"differs: {path}")
    if out_dir.is_dir():
        for path in sorted(out_dir.glob("*.json")):
            if path.name not in files:
                problems.append(f"extra:   {path}")
    return problems


def main_schemas(out_dir: str, check: bool) -> int:
    out = Path(out_dir)
    files = generate()
    if check:
        problems = drift(out, files)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print(
                f"caseclock: {out} is out of date; run `caseclock schemas --out {out}`",
                file=sys.stderr,
            )
            return 1
        print(f"{out}: {len(files)} files up to date")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    changed = 0
    for name, content in sorted(files.items()):
        path = out / name
        if not path.is_file() or path.read_bytes() != content:
            path.write_bytes(content)
            changed += 1
    for path in sorted(out.glob("*.json")):
        if path.name in files:
            continue
        if path.name.endswith(".schema.json"):  # a stale schema of ours (e.g. a renamed type)
            path.unlink()
            print(f"removed stale {path}")
        else:
            print(
                f"caseclock: warning: {path} is not generated; --check will fail", file=sys.stderr
            )
    print(f"{out}: {len(files)} files, {changed} written")
    return 0
