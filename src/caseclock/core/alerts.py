"""What the core decides: an alert (one obligation falling due), its identity, and what
counts as a breach. Replay summaries and live metrics both classify breaches with
:func:`breach_clock`, so they cannot disagree.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any, Final, Literal

import orjson

from caseclock.core.timeutil import from_us

ALERT_NAMESPACE: Final = uuid.UUID("6f1c2a59-0d3e-5b6a-9a53-cac5ec10c4ed")

AlertType = Literal["ack-due", "update-due", "elevate-to-l2"]
Stage = Literal["warning", "breach", "action"]
Reason = Literal["no-acknowledgement", "interval", "eta-passed", "no-eta-or-workaround"] | str
ALERT_TYPES: Final = ("ack-due", "update-due", "elevate-to-l2")


class Alert:
    """An alert as the engine emits it: the contract's fields, times kept as integers.

    A plain slotted object rather than the pydantic model: the engine creates one per alert on
    the hot path, and datetimes are only materialised when read or serialised.
    """

    __slots__ = (
        "alert_id",
        "calendar",
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
        calendar: str = "24x7",
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
        self.calendar = calendar
        """The calendar the alert's window counted in, so a notifier can say "4 business hours"."""

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
            "calendar": self.calendar,
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


def alert_id(case_id: str, type_: str, stage: str, reason: str, due: int) -> str:
    """The identity of an obligation.

    Acknowledgement stages and the elevation happen at most once per case, so their identity
    is the case and the stage alone (a priority change moves their deadline, not their
    identity). Update points are many: their deadline is part of who they are.
    """
    if type_ == "update-due":
        name = f"{case_id}\x1f{type_}\x1f{stage}\x1f{reason}\x1f{due}"
    elif type_ == "ack-due":
        name = f"{case_id}\x1f{type_}\x1f{stage}"
    else:
        name = f"{case_id}\x1f{type_}"
    # uuid.uuid5 without its overhead (same bytes: SHA-1 of namespace + name, version 5).
    h = bytearray(hashlib.sha1(_NS_BYTES + name.encode()).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


_NS_BYTES: Final = ALERT_NAMESPACE.bytes


def breach_clock(a: Alert) -> str | None:
    """The SLA clock an alert reports a breach of (ack, update, elevation), or None.

    An acknowledgement or update breach is a breach of its clock; the timed elevation (no ETA
    or workaround within the window) is a breach of the elevation promise; warnings and the
    immediate elevation on entering a P1-like priority are not breaches."""
    if a.stage == "breach":
        return "ack" if a.type == "ack-due" else "update"
    if a.reason == "no-eta-or-workaround":
        return "elevation"
    return None
