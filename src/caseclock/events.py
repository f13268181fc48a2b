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
from .timeutil import from_us

# --- timestamps ----------------------------------------------------------------------------


def _rfc3339(v: Any) -> Any:
    """Accept only RFC 3339 date-times with an offset.

    pydantic alone would take unix numbers ("1700000000") and naive strings; both hide
    timezone bugs upstream. A character-level shape check keeps this off the profile.
    """
    if type(v) is not str:
        if isinstance(v, datetime):
            if v.tzinfo is None:
                raise PydanticCustomError(
                    "naive_timestamp", "naive timestamp: a UTC offset is required"
                )
            return v
        raise PydanticCustomError("timestamp_type", "timestamp must be an RFC 3339 string")
    if (
        len(v) < 19
        or v[4] != "-"
        or v[7] != "-"
        or v[10] not in "Tt "
        or v[13] != ":"
        or v[16] != ":"
    ):
        raise PydanticCustomError(
            "timestamp_format", "not an RFC 3339 timestamp (e.g. 2026-01-31T09:30:00Z)"
        )
    last = v[-1]
    if last not in "Zz" and not (len(v) >= 25 and v[-6] in "+-" and v[-3] == ":"):
        if _OFFSET.search(v, 19) is None:
            raise PydanticCustomError(
                "naive_timestamp",
                "naive timestamp '{value}': a UTC offset is required",
                {"value": v},
            )
        raise PydanticCustomError(
            "timestamp_format",
            "not an RFC 3339 offset in '{value}' (use Z or +hh:mm)",
            {"value": v},
        )
    try:
        return datetime.fromisoformat(v)
    except ValueError:
        raise PydanticCustomError(
            "timestamp_format", "not a valid date-time: '{value}'", {"value": v}
        ) from None


_OFFSET = re.compile(r"[+-]|[Zz]")


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
    plan: NonEmpty | None = Field(
        None, description="Response plan name; absent: the policy's default_plan."
    )
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


class AlertModel(BaseModel):
    """The outbound contract: one obligation falling due (JSON Schema source, validation).

    `alert_id` is stable across restarts, replays and workers."""

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


class Alert:
    """An alert as the engine emits it: the contract's fields, times kept as integers.

    A plain slotted object rather than the pydantic model: the engine creates one per alert on
    the hot path, and datetimes are only materialised when read or serialised.
    """

    __slots__ = (
        "alert_id",
        "case_id",
        "catch_up",
        "customer_id",
        "due_us",
        "eta_us",
        "fired_us",
        "opened_us",
        "plan",
        "priority",
        "reason",
        "stage",
        "subject",
        "type",
    )

    def __init__(
        self,
        alert_id: str,
        type: AlertType,
        stage: Stage,
        reason: str,
        case_id: str,
        priority: int,
        plan: str,
        due_us: int,
        fired_us: int,
        opened_us: int,
        customer_id: str | None = None,
        subject: str | None = None,
        eta_us: int | None = None,
        catch_up: bool = False,
    ) -> None:
        self.alert_id = alert_id
        self.type = type
        self.stage = stage
        self.reason = reason
        self.case_id = case_id
        self.priority = priority
        self.plan = plan
        self.due_us = due_us
        self.fired_us = fired_us
        self.opened_us = opened_us
        self.customer_id = customer_id
        self.subject = subject
        self.eta_us = eta_us
        self.catch_up = catch_up

    @property
    def due_at(self) -> datetime:
        return from_us(self.due_us)

    @property
    def fired_at(self) -> datetime:
        return from_us(self.fired_us)

    @property
    def opened_at(self) -> datetime:
        return from_us(self.opened_us)

    @property
    def eta(self) -> datetime | None:
        return None if self.eta_us is None else from_us(self.eta_us)

    def to_dict(self) -> dict[str, Any]:
        """The contract's fields, in its order (AlertModel)."""
        return {
            "alert_id": self.alert_id,
            "type": self.type,
            "stage": self.stage,
            "reason": self.reason,
            "case_id": self.case_id,
            "priority": self.priority,
            "plan": self.plan,
            "due_at": self.due_at,
            "fired_at": self.fired_at,
            "opened_at": self.opened_at,
            "customer_id": self.customer_id,
            "subject": self.subject,
            "eta": self.eta,
            "catch_up": self.catch_up,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_UTC_Z)

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Alert) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Alert({self.to_dict()!r})"


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
    "state-too-large",
    "alert-undeliverable",
    "processing-failed",
)
"""Why a message went to the dead-letter topic. The first eight are bad input (spec section
5); the last three are per-case faults of the service that must not stop it: a state that
would exceed CASECLOCK_MAX_STATE_BYTES, an alert the broker refused for good (the tick's
record carries the alert), and an unexpected error while applying a valid-looking event."""


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


def event_to_json(ev: InboundEvent) -> bytes:
    return orjson.dumps(ev.model_dump(exclude_none=True), option=orjson.OPT_UTC_Z)
