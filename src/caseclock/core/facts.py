"""The facts caseclock folds: the inbound events upstream ticketing systems send.

Validated strictly (no silent coercion of "1" into 1, no naive timestamps) because a wrong
deadline is worse than a rejected message: a rejected message is visible in the dead-letter
topic, a wrong deadline is a silent SLA breach. The wire decoding (bytes to a fact, with a
reason when it fails) is `caseclock.contracts.inbound`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from caseclock.core.timeutil import INSTANT_RANGE, MAX_INSTANT_US, MIN_INSTANT_US, from_us

# --- timestamps ----------------------------------------------------------------------------

_EARLIEST = from_us(MIN_INSTANT_US)
_END = from_us(MAX_INSTANT_US)


def _in_range(dt: datetime, shown: str) -> datetime:
    """Refuse an instant outside MIN_INSTANT_US..MAX_INSTANT_US (see `caseclock.core.timeutil`).

    A timestamp in the year 9999 is valid RFC 3339 but no real fact; accepted, it would
    carry the deadline arithmetic past the last date Python knows. Refused here, it is
    dead-lettered with its field named, like any other bad input.
    """
    if _EARLIEST <= dt < _END:
        return dt
    raise PydanticCustomError(
        "timestamp_out_of_range",
        "{value} is outside {range}",
        {"value": shown, "range": INSTANT_RANGE},
    )


def _rfc3339(v: Any) -> Any:
    """Accept only RFC 3339 date-times with an offset, within the accepted range of instants.

    pydantic alone would take unix numbers ("1700000000") and naive strings; both hide
    timezone bugs upstream. A character-level shape check keeps this off the profile.
    """
    if type(v) is not str:
        if isinstance(v, datetime):
            if v.tzinfo is None:
                raise PydanticCustomError(
                    "naive_timestamp", "naive timestamp: a UTC offset is required"
                )
            return _in_range(v, v.isoformat())
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
        dt = datetime.fromisoformat(v)
    except ValueError:
        raise PydanticCustomError(
            "timestamp_format", "not a valid date-time: '{value}'", {"value": v}
        ) from None
    return _in_range(dt, v)


_OFFSET = re.compile(r"[+-]|[Zz]")


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=256)]

# --- inbound -------------------------------------------------------------------------------

INBOUND_TYPES: Final = (
    "case-opened",
    "case-noted",
    "eta-set",
    "case-resolved",
    "priority-changed",
    "status-changed",
    "case-reopened",
)


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


class StatusChanged(_Event):
    type: Literal["status-changed"]
    status: NonEmpty = Field(
        description="The upstream system's status (e.g. open, pending, on-hold); a plan's "
        "pause_statuses stop its clocks."
    )


class CaseReopened(_Event):
    type: Literal["case-reopened"]


InboundEvent = (
    CaseOpened | CaseNoted | EtaSet | CaseResolved | PriorityChanged | StatusChanged | CaseReopened
)
INBOUND_MODELS: Final[dict[str, type[_Event]]] = {
    "case-opened": CaseOpened,
    "case-noted": CaseNoted,
    "eta-set": EtaSet,
    "case-resolved": CaseResolved,
    "priority-changed": PriorityChanged,
    "status-changed": StatusChanged,
    "case-reopened": CaseReopened,
}
