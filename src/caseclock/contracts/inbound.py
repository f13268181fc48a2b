"""The inbound wire contract: one Kafka message to a fact, or a reason it is refused."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field, TypeAdapter, ValidationError

from caseclock.core.facts import INBOUND_TYPES, CaseOpened, InboundEvent, PriorityChanged
from caseclock.core.policy import Policy

_INBOUND: TypeAdapter[InboundEvent] = TypeAdapter(
    Annotated[InboundEvent, Field(discriminator="type")]
)


# --- decoding with reasons -----------------------------------------------------------------

DEFAULT_MAX_MESSAGE_BYTES: Final = 64 * 1024

REJECT_REASONS: Final = (
    "invalid-json",
    "invalid-event",
    "unknown-type",
    "unknown-plan",
    "unknown-priority",
    "naive-timestamp",
    "timestamp-out-of-range",
    "key-mismatch",
    "oversized",
    "misrouted",
    "state-too-large",
    "alert-undeliverable",
    "processing-failed",
)
"""Why a message went to the dead-letter topic. The first ten are bad input (spec section
5): nine in the message itself (among them `timestamp-out-of-range`, an instant outside
1970-01-01T00:00:00Z..2200-01-01T00:00:00Z, see `caseclock.core.timeutil.MAX_INSTANT_US`), and
`misrouted`, a message on another partition than the one CASECLOCK_INPUT_PARTITIONER gives its
key (its producer's partitioner differs); the last three are per-case faults of the service
that must not stop it: a state that would exceed CASECLOCK_MAX_STATE_BYTES, an alert the
broker refused for good (the tick's record carries the alert), and an unexpected error while
applying a valid-looking event."""


class Rejected(Exception):
    """A message caseclock cannot accept, with a reason code (bounded) and a human detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _describe(err: ValidationError) -> Rejected:
    errors = err.errors(include_url=False)
    for e in errors:
        if e["type"] == "json_invalid":
            return Rejected("invalid-json", f"not valid JSON: {e['ctx'].get('error', e['msg'])}")
        if e["type"] == "union_tag_invalid":
            found = e.get("ctx", {}).get("tag", "?")
            return Rejected(
                "unknown-type",
                f"unknown type {found!r}; expected one of {', '.join(INBOUND_TYPES)}",
            )
        if e["type"] == "naive_timestamp":
            loc = ".".join(str(p) for p in e["loc"][1:])
            return Rejected("naive-timestamp", f"{loc}: {e['msg']}")
        if e["type"] == "timestamp_out_of_range":
            loc = ".".join(str(p) for p in e["loc"][1:])
            return Rejected("timestamp-out-of-range", f"{loc} {e['msg']}")
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(p) for p in e["loc"][1:]) if e["type"] != "union_tag_not_found" else ""
        msg = "missing field 'type'" if e["type"] == "union_tag_not_found" else e["msg"]
        parts.append(f"{loc}: {msg}" if loc else msg)
    if errors and errors[0]["type"] in ("model_type", "model_attributes_type", "dict_type"):
        return Rejected("invalid-event", "the message must be a JSON object")
    return Rejected("invalid-event", "; ".join(parts))


def decode_event(
    raw: bytes,
    policy: Policy,
    *,
    key: bytes | None = None,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> InboundEvent:
    """Validate one message. Raises Rejected with a reason code from REJECT_REASONS."""
    if len(raw) > max_bytes:
        raise Rejected("oversized", f"{len(raw)} bytes exceeds the limit of {max_bytes}")
    try:
        ev = _INBOUND.validate_json(raw)
    except ValidationError as e:
        raise _describe(e) from None
    if isinstance(ev, CaseOpened):
        if ev.plan is None:
            ev = ev.model_copy(update={"plan": policy.default_plan})
        plan = policy.plans.get(ev.plan or policy.default_plan)
        if plan is None:
            raise Rejected(
                "unknown-plan", f"plan {ev.plan!r} is not in the policy ({', '.join(policy.plans)})"
            )
        if ev.priority not in plan.priorities:
            raise Rejected(
                "unknown-priority",
                f"priority {ev.priority} is not in plan {ev.plan!r} "
                f"({', '.join(map(str, sorted(plan.priorities)))})",
            )
    elif isinstance(ev, PriorityChanged) and ev.priority not in policy.all_priorities:
        raise Rejected("unknown-priority", f"priority {ev.priority} is not in any plan")
    if key is not None and key != ev.case_id.encode():
        raise Rejected(
            "key-mismatch", f"message key {key[:64]!r} disagrees with case_id {ev.case_id!r}"
        )
    return ev
