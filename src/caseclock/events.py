"""The event contracts: what upstream ticketing systems send and what caseclock emits.

Inbound events are validated strictly (no silent coercion of "1" into 1, no naive timestamps)
because a wrong deadline is worse than a rejected message: a rejected message is visible in the
dead-letter topic, a wrong deadline is a silent SLA breach.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from .policy import Policy

# --- timestamps ----------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?P<tz>[Zz]|[+-]\d{2}:\d{2})?$"
)


def _rfc3339(v: Any) -> Any:
    """Accept only RFC 3339 date-times with an offset.

    pydantic alone would take unix numbers and naive strings; both hide timezone bugs upstream.
    """
    if isinstance(v, datetime):
        if v.tzinfo is None:
            raise PydanticCustomError(
                "naive_timestamp", "naive timestamp: a UTC offset is required"
            )
        return v
    if not isinstance(v, str):
        raise PydanticCustomError("timestamp_type", "timestamp must be an RFC 3339 string")
    m = _RFC3339.match(v)
    if m is None:
        raise PydanticCustomError(
            "timestamp_format", "not an RFC 3339 timestamp (e.g. 2026-01-31T09:30:00Z)"
        )
    if m.group("tz") is None:
        raise PydanticCustomError(
            "naive_timestamp", "naive timestamp '{value}': a UTC offset is required", {"value": v}
        )
    try:
        return datetime.fromisoformat(v)
    except ValueError:
        raise PydanticCustomError(
            "timestamp_format", "not a valid date-time: '{value}'", {"value": v}
        ) from None


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=256)]

# --- inbound -------------------------------------------------------------------------------

INBOUND_TYPES: Final = ("case-opened", "case-noted", "eta-set", "case-resolved", "priority-changed")


class _Event(BaseModel):
    # Unknown fields are ignored: upstream systems add fields, and that must not dead-letter them.
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    event_id: NonEmpty = Field(description="Unique per event; duplicates are ignored.")
    case_id: NonEmpty = Field(description="The case; must equal the Kafka message key.")
    occurred_at: Timestamp = Field(description="When it happened (RFC 3339 with offset).")


class CaseOpened(_Event):
    type: Literal["case-opened"]
    priority: int = Field(description="Priority; must exist in the plan.")
    plan: NonEmpty = Field("support-plus", description="Response plan name.")
    reported_at: Timestamp | None = Field(None, description="When the problem was first notified.")
    customer_id: str | None = Field(None, max_length=256)
    subject: str | None = Field(None, max_length=1024)


class CaseNoted(_Event):
    type: Literal["case-noted"]
    author: Literal["support", "customer", "system"]
    visibility: Literal["public", "internal"]
    workaround: bool = False


class EtaSet(_Event):
    type: Literal["eta-set"]
    eta: Timestamp = Field(description="When a fix or restoration is expected.")


class CaseResolved(_Event):
    type: Literal["case-resolved"]
    resolution: str | None = Field(None, max_length=1024)


class PriorityChanged(_Event):
    type: Literal["priority-changed"]
    priority: int = Field(description="The new priority.")


InboundEvent = CaseOpened | CaseNoted | EtaSet | CaseResolved | PriorityChanged
INBOUND_MODELS: Final[dict[str, type[_Event]]] = {
    "case-opened": CaseOpened,
    "case-noted": CaseNoted,
    "eta-set": EtaSet,
    "case-resolved": CaseResolved,
    "priority-changed": PriorityChanged,
}
_INBOUND: TypeAdapter[InboundEvent] = TypeAdapter(
    Annotated[InboundEvent, Field(discriminator="type")]
)

# --- outbound ------------------------------------------------------------------------------

AlertType = Literal["ack-due", "update-due", "elevate-to-l2"]
Stage = Literal["warning", "breach", "action"]
Reason = Literal["no-acknowledgement", "interval", "eta-passed", "no-eta-or-workaround"] | str
ALERT_TYPES: Final = ("ack-due", "update-due", "elevate-to-l2")


class Alert(BaseModel):
    """One obligation falling due. `alert_id` is stable across restarts, replays and workers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alert_id: str = Field(description="Deterministic id of the obligation; drop repeats by it.")
    type: AlertType
    stage: Stage
    reason: str = Field(
        description="no-acknowledgement | interval | eta-passed | no-eta-or-workaround | "
        "priority-<n> (elevation on entering an 'immediately' priority)"
    )
    case_id: str
    priority: int
    plan: str
    due_at: datetime = Field(description="The deadline this alert is about.")
    fired_at: datetime = Field(description="When it was emitted.")
    opened_at: datetime
    customer_id: str | None = None
    subject: str | None = None
    eta: datetime | None = Field(None, description="The ETA in force, if any.")
    catch_up: bool = Field(
        False,
        description="True when this alert stands for several past-due ones (after downtime "
        "or a late fact): only the most recent breach of the clock is emitted.",
    )

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(), option=orjson.OPT_UTC_Z)


# --- decoding with reasons -----------------------------------------------------------------

DEFAULT_MAX_MESSAGE_BYTES: Final = 64 * 1024

REJECT_REASONS: Final = (
    "invalid-json",
    "invalid-event",
    "unknown-type",
    "unknown-plan",
    "unknown-priority",
    "naive-timestamp",
    "key-mismatch",
    "oversized",
)


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
        plan = policy.plans.get(ev.plan)
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


def event_to_json(ev: InboundEvent) -> bytes:
    return orjson.dumps(ev.model_dump(exclude_none=True), option=orjson.OPT_UTC_Z)
