"""The outbound contract: the alert message as JSON Schema and validation model."""

from __future__ import annotations

from datetime import datetime

import orjson
from pydantic import BaseModel, ConfigDict, Field

from caseclock.core.alerts import AlertType, Stage


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
    calendar: str = Field(
        "24x7",
        description="The calendar the window counted in (the policy's [calendars.NAME], or "
        "the built-in 24x7), so a notifier can say '4 business hours'.",
    )

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(), option=orjson.OPT_UTC_Z)
