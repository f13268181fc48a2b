"""Response plans: what a support organisation promised, as data.

A policy file holds one or more plans; each plan maps a priority to its windows. The engine only
ever sees validated, integer-microsecond windows, so a typo in a policy fails at start-up with
the offending field named, never at 3 a.m. when a deadline is computed.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from caseclock.core.timeutil import parse_duration

if TYPE_CHECKING:
    from caseclock.core.calendars import Calendar

DEFAULT_POLICY_RESOURCE = "support-plus.toml"

ElevateMode = Literal["immediately", "never", "after"]


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the field."""


@dataclass(frozen=True, slots=True)
class PriorityRule:
    """The windows of one priority, in microseconds."""

    priority: int
    acknowledge: int
    update_every: int
    time_to_open: int | None
    elevate: ElevateMode
    elevate_after: int | None
    """For elevate == "after": elevate this long after opening unless an ETA or workaround."""
    calendar: Calendar
    """The calendar every window of this priority counts in (the plan's unless overridden)."""


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    warn_fraction: float | None
    priorities: Mapping[int, PriorityRule]
    pause_statuses: frozenset[str] = frozenset()
    """Upstream statuses that stop every clock of the plan (spec section 7)."""
    pause_digests: frozenset[int] = frozenset()
    """The same statuses as the state stores them (`state.status_digest`)."""


@dataclass(frozen=True, slots=True)
class Policy:
    plans: Mapping[str, Plan]
    default_plan: str

    @property
    def all_priorities(self) -> frozenset[int]:
        return frozenset(pr for plan in self.plans.values() for pr in plan.priorities)

    @property
    def calendar_names(self) -> frozenset[str]:
        """The calendars some priority counts in (metric label values are created for them)."""
        return frozenset(
            r.calendar.name for plan in self.plans.values() for r in plan.priorities.values()
        )

    def windows_seconds(self) -> dict[str, list[float]]:
        """Every ack and time-to-open window, in seconds (for histogram buckets)."""
        ack = sorted(
            {r.acknowledge / 1e6 for p in self.plans.values() for r in p.priorities.values()}
        )
        tto = sorted(
            {
                r.time_to_open / 1e6
                for p in self.plans.values()
                for r in p.priorities.values()
                if r.time_to_open is not None
            }
        )
        return {"acknowledge": ack, "time_to_open": tto}


# --- the file format, validated by pydantic -------------------------------------------------


def _duration(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, str | int):
        raise ValueError("expected a duration string such as '4h'")
    if isinstance(v, int):
        raise ValueError(f"bare number {v} is ambiguous: write a unit, e.g. '{v}h' or '{v}s'")
    us = parse_duration(v)
    if us <= 0:
        raise ValueError("duration must be positive")
    return us


class _PriorityDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    acknowledge: int
    update_every: int
    time_to_open: int | None = None
    elevate: str = "never"
    calendar: str | None = None

    @field_validator("acknowledge", "update_every", mode="before")
    @classmethod
    def _window(cls, v: Any) -> int:
        return _duration(v)

    @field_validator("time_to_open", mode="before")
    @classmethod
    def _tto(cls, v: Any) -> int | None:
        return None if v is None else _duration(v)

    @field_validator("elevate")
    @classmethod
    def _elevate(cls, v: str) -> str:
        if v in ("immediately", "never"):
            return v
        try:
            _duration(v)
        except ValueError as e:
            raise ValueError(f"'immediately', 'never' or a duration such as '8h' ({e})") from e
        return v


class _PlanDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    warn_fraction: float | None = 0.75
    calendar: str = "24x7"
    pause_statuses: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] = []
    priorities: dict[int, _PriorityDoc] = Field(min_length=1)

    @field_validator("warn_fraction", mode="before")
    @classmethod
    def _fraction(cls, v: Any) -> float | None:
        # TOML has no null: `warn_fraction = false` is how a TOML plan turns warnings off.
        if v is None or v is False:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 < v < 1.0:
            raise ValueError(
                "warn_fraction must be between 0 and 1 (exclusive), or false for no warnings"
            )
        return float(v)


class _PolicyDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_plan: str = "support-plus"
    calendars: dict[str, Any] | None = None
    plans: dict[str, _PlanDoc] = Field(min_length=1)


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid policy {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def policy_from_mapping(doc: Mapping[str, Any], source: str = "<mapping>") -> Policy:
    # Imported here: calendars imports PolicyError from this module.
    from caseclock.core.calendars import lookup_calendar, parse_calendars
    from caseclock.core.state import status_digest

    try:
        parsed = _PolicyDoc.model_validate(doc)
    except ValidationError as e:
        raise PolicyError(_format_errors(e, source)) from None
    try:
        calendars = parse_calendars(parsed.calendars)
    except PolicyError as e:
        raise PolicyError(f"invalid policy {source}:\n  " + str(e).replace("\n", "\n  ")) from None
    plans: dict[str, Plan] = {}
    errors: list[str] = []
    for name, pd in parsed.plans.items():
        rules: dict[int, PriorityRule] = {}
        try:
            plan_cal = lookup_calendar(calendars, pd.calendar, f"plans.{name}.calendar")
        except PolicyError as e:
            errors.append(str(e))  # go on: the priorities' own calendars are checked too
            plan_cal = calendars["24x7"]
        for prio, rd in pd.priorities.items():
            cal = plan_cal
            if rd.calendar is not None:
                where = f"plans.{name}.priorities.{prio}.calendar"
                try:
                    cal = lookup_calendar(calendars, rd.calendar, where)
                except PolicyError as e:
                    errors.append(str(e))
                    continue
            after = None if rd.elevate in ("immediately", "never") else _duration(rd.elevate)
            mode: ElevateMode = "after" if after is not None else rd.elevate  # type: ignore[assignment]
            rules[prio] = PriorityRule(
                priority=prio,
                acknowledge=rd.acknowledge,
                update_every=rd.update_every,
                time_to_open=rd.time_to_open,
                elevate=mode,
                elevate_after=after,
                calendar=cal,
            )
        statuses = frozenset(pd.pause_statuses)
        plans[name] = Plan(
            name=name,
            warn_fraction=pd.warn_fraction,
            priorities=rules,
            pause_statuses=statuses,
            pause_digests=frozenset(status_digest(x) for x in statuses),
        )
    if errors:
        raise PolicyError(f"invalid policy {source}:\n  " + "\n  ".join(errors))
    if parsed.default_plan not in plans:
        raise PolicyError(
            f"invalid policy {source}:\n  default_plan: {parsed.default_plan!r} is not one of "
            f"the plans ({', '.join(sorted(plans))})"
        )
    return Policy(plans=plans, default_plan=parsed.default_plan)


def policy_from_toml(text: str, source: str = "<string>") -> Policy:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PolicyError(f"invalid policy {source}: not valid TOML: {e}") from None
    return policy_from_mapping(doc, source)


BUILTIN_PREFIX = "builtin:"


def load_policy(path: str | Path | None = None) -> Policy:
    """Load a policy file; None means the built-in support-plus policy, and "builtin:NAME"
    one of the policies shipped in the package (e.g. builtin:demo), so containers need no
    policy file mounted for the defaults."""
    if path is None or str(path).startswith(BUILTIN_PREFIX):
        name = (
            DEFAULT_POLICY_RESOURCE if path is None else f"{str(path)[len(BUILTIN_PREFIX) :]}.toml"
        )
        res = resources.files("caseclock.policies").joinpath(name)
        if not res.is_file():
            raise PolicyError(
                f"no built-in policy {path!r} (have builtin:support-plus, builtin:demo)"
            )
        return policy_from_toml(res.read_text(), f"<{path or BUILTIN_PREFIX + 'support-plus'}>")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise PolicyError(f"cannot read policy {p}: {e.strerror}") from None
    return policy_from_toml(text, str(p))


def _canonical(v: Any) -> Any:
    """A form of a policy value whose repr is the same in every process: dataclasses by their
    compared fields, mappings by key, sets sorted (their iteration order follows string and
    date hashes, which are randomised per process)."""
    if is_dataclass(v) and not isinstance(v, type):
        return (
            type(v).__name__,
            tuple((f.name, _canonical(getattr(v, f.name))) for f in fields(v) if f.compare),
        )
    if isinstance(v, Mapping):
        return tuple(sorted((repr(_canonical(k)), _canonical(x)) for k, x in v.items()))
    if isinstance(v, (set, frozenset)):
        return tuple(sorted(repr(_canonical(x)) for x in v))
    if isinstance(v, (list, tuple)):
        return tuple(_canonical(x) for x in v)
    return v


def policy_fingerprint(policy: Policy, salt: str = "") -> str:
    """A short digest of everything in the policy that decides deadlines (and of `salt`):
    equal for equal policies in any process, different as soon as a window, calendar, plan
    or pause status changes. Facts derived from a state and the policy, stored beside the
    state, are valid only under the fingerprint they were stored with."""
    text = repr((salt, _canonical(policy))).encode()
    return hashlib.blake2b(text, digest_size=6).hexdigest()
