"""Response plans: what a support organisation promised, as data.

A policy file holds one or more plans; each plan maps a priority to its windows. The engine only
ever sees validated, integer-microsecond windows, so a typo in a policy fails at start-up with
the offending field named, never at 3 a.m. when a deadline is computed. Every window is bounded
(MAX_WINDOW_US, MAX_WINDOW_SPAN_DAYS) for the same reason. A window written in business days
("2bd") is the one whose length depends on where it starts; `PriorityRule.window` gives it.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from fractions import Fraction
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from caseclock.core.timeutil import US, parse_duration

if TYPE_CHECKING:
    from caseclock.core.calendars import Calendar

DEFAULT_POLICY_RESOURCE = "support-plus.toml"

ElevateMode = Literal["immediately", "never", "after"]

WINDOWS: Final = ("acknowledge", "update_every", "time_to_open", "elevate_after")
"""The windows of a priority, by the name of their PriorityRule field (`PriorityRule.window`)."""

_DAY_US: Final = 86_400 * US
MAX_WINDOW_US: Final = 366 * _DAY_US
"""The longest window a policy may set, in counted time (calendar time on 24x7, business time
on a business calendar): a year and a day. Longer is a typo (`100000000h`), and it would carry
deadlines past the last date Python knows; with the range of input instants
(`caseclock.core.timeutil.MAX_INSTANT_US`) this keeps every deadline centuries from it."""
MAX_WINDOW_SPAN_DAYS: Final = 3650
"""The longest a window may take in calendar time, in days (10 years): on a business calendar
a window counts only open time, so 366 days of it can take decades of a calendar that is
open an hour a week. The span is judged over the calendar's weekly hours (holidays ignored):
a window of W counted takes W / (open time a week) weeks, and one of N business days takes
N / (open days a week) weeks. On a calendar where every instant counts the span is the
window itself, which MAX_WINDOW_US already bounds."""


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the field."""


def _no_business_days() -> Mapping[str, int]:
    return MappingProxyType({})


def _no_objectives() -> Mapping[str, float]:
    return MappingProxyType({})


OBJECTIVE_CLOCKS: Final = ("ack", "update", "elevation", "time_to_open")
"""The clocks a priority may state an attainment objective for (docs/semantics.md 8)."""


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
    business_days: Mapping[str, int] = field(default_factory=_no_business_days, hash=False)
    """The windows written in business days ("2bd"): window name (one of WINDOWS) -> N.

    Such a window's counted length depends on where it starts (`window`); its int field holds
    the nominal N x the calendar's longest open day, so that figures made from the fields
    alone (histogram buckets) stay of the right size. Compared, so that a policy fingerprint
    tells "2bd" from "16h" on a calendar of 8-hour days; not hashed (a mapping is not)."""
    objectives: Mapping[str, float] = field(default_factory=_no_objectives, hash=False)
    """Attainment objectives: clock (one of OBJECTIVE_CLOCKS) -> the fraction of its
    obligations to be met in time (0.95: 95% of acknowledgements on time). Deadlines do not
    depend on them; attainment is judged against them."""

    def __post_init__(self) -> None:
        days = MappingProxyType(dict(self.business_days))
        for name, n in days.items():
            if name not in WINDOWS:
                raise ValueError(f"business_days: unknown window {name!r} (have {WINDOWS})")
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"business_days.{name}: a number of days >= 1, got {n!r}")
            if getattr(self, name) is None:
                raise ValueError(f"business_days.{name}: the priority has no such window")
        object.__setattr__(self, "business_days", days)
        object.__setattr__(self, "objectives", MappingProxyType(dict(self.objectives)))

    def window(self, name: str, start: int) -> int:
        """The counted length (us) of window `name` (one of WINDOWS) when it starts at
        `start`: the field itself, or for a window written in business days the open time to
        the same local time that many open days later (`Calendar.open_days_span`).

        A window of business days is as long as the days it spans: two business days from
        Monday are 16 business hours on 09:00-17:00, from Thursday 12 when Friday closes at
        13:00. The length is fixed where the window starts (`start`: the opening for the
        acknowledgement, the anchor for updates, whose periodic windows repeat that counted
        length); pauses then extend it like any window. Raises ValueError for an unknown name
        or a window the priority does not have (no time_to_open, no timed elevation)."""
        n = self.business_days.get(name)
        if n is not None:
            return self.calendar.open_days_span(start, n)
        us: int | None = getattr(self, name) if name in WINDOWS else None
        if us is None:
            if name not in WINDOWS:
                raise ValueError(f"unknown window {name!r}; expected one of {', '.join(WINDOWS)}")
            raise ValueError(f"priority {self.priority} has no {name} window")
        return us


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


@dataclass(frozen=True, slots=True)
class _Written:
    """A window as the policy file writes it, checked for syntax; what it means may depend
    on the calendar, which is resolved after the whole file is read (`_resolve`)."""

    text: str
    us: int
    """The duration, for a window not written in business days."""
    business_days: int = 0
    """N of "Nbd"; 0 for any other window."""
    parts: tuple[tuple[Fraction, str], ...] = ()
    """(number, unit) of each part of a duration ("1w2d": (1, "w"), (2, "d"))."""

    @property
    def day_units(self) -> bool:
        """Written with days or weeks, which on a business calendar are ambiguous."""
        return any(unit in ("d", "w") for _, unit in self.parts)


_BUSINESS_DAYS = re.compile(r"(\d{1,18})bd")
_PARTS = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def _duration(v: Any) -> _Written:
    if isinstance(v, bool) or not isinstance(v, str | int):
        raise ValueError("expected a duration string such as '4h'")
    if isinstance(v, int):
        raise ValueError(f"bare number {v} is ambiguous: write a unit, e.g. '{v}h' or '{v}s'")
    compact = v.strip().lower().replace(" ", "")
    if "bd" in compact:
        m = _BUSINESS_DAYS.fullmatch(compact)
        if m is None:
            raise ValueError(
                f"{v!r}: business days are written alone, as a whole number such as '2bd' "
                "(not combined with other units, not a fraction); for a window that is not "
                "a whole number of business days, write business hours such as '20h'"
            )
        n = int(m.group(1))
        if n < 1:
            raise ValueError("a number of business days must be at least 1 ('1bd')")
        return _Written(v, 0, business_days=n)
    us = parse_duration(v, longest=None)  # bounded by _resolve, which names the bound
    if us <= 0:
        raise ValueError("duration must be positive")
    parts = tuple((Fraction(num), unit) for num, unit in _PARTS.findall(compact))
    return _Written(v, us, parts=parts)


class _PriorityDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    acknowledge: _Written
    update_every: _Written
    time_to_open: _Written | None = None
    elevate: str = "never"
    calendar: str | None = None
    objectives: dict[Literal["ack", "update", "elevation", "time_to_open"], float] = {}

    @field_validator("objectives", mode="before")
    @classmethod
    def _objectives(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for clock, x in v.items():
                if isinstance(x, bool) or not isinstance(x, int | float) or not 0 < x <= 1:
                    raise ValueError(
                        f"{clock}: an objective is a fraction of obligations met in time, "
                        f"above 0 and at most 1 (0.95 for 95%), got {x!r}"
                    )
        return v

    @model_validator(mode="after")
    def _objectives_have_clocks(self) -> _PriorityDoc:
        if "time_to_open" in self.objectives and self.time_to_open is None:
            raise ValueError("objectives.time_to_open: the priority has no time_to_open window")
        if "elevation" in self.objectives and self.elevate in ("immediately", "never"):
            raise ValueError(
                'objectives.elevation: only a timed elevation (elevate = "8h") can be met or missed'
            )
        return self

    @field_validator("acknowledge", "update_every", mode="before")
    @classmethod
    def _window(cls, v: Any) -> _Written:
        return _duration(v)

    @field_validator("time_to_open", mode="before")
    @classmethod
    def _tto(cls, v: Any) -> _Written | None:
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


_UNIT_US: Final = {"ms": 1_000, "s": US, "m": 60 * US, "h": 3600 * US}
_NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _in_words(n: int) -> str:
    return _NUMBERS[n] if n < len(_NUMBERS) else str(n)


def _readable(us: int | Fraction) -> str:
    """A duration as a policy would write it ("16h", "7h30m", "45s"), for the suggestions
    and figures in error messages."""
    us = Fraction(us)
    out = []
    for unit, size in (("h", 3600 * US), ("m", 60 * US)):
        k = int(us // size)
        if k:
            out.append(f"{k}{unit}")
            us -= k * size
    if us:
        seconds = us / US
        out.append(f"{seconds.numerator}s" if seconds.denominator == 1 else f"{float(seconds)}s")
    return "".join(out) or "0s"


def _ambiguous(w: _Written, cal: Calendar, where: str) -> str:
    """The error for days or weeks on a business calendar, with both readings spelled out:
    a day is an open day (the `bd` unit) or the calendar's longest open day of hours."""
    hours = Fraction(0)
    days = 0
    whole = True
    for number, unit in w.parts:
        if unit == "d":
            hours += number * cal.longest_day_us
        elif unit == "w":
            hours += number * cal.weekly_us
        else:
            hours += number * _UNIT_US[unit]
        whole = whole and unit in ("d", "w") and number.denominator == 1
        days += int(number) * (cal.open_weekdays if unit == "w" else 1)
    if whole:
        plural = "s" if days != 1 else ""
        as_days = (
            f"'{days}bd' for {_in_words(days)} business day{plural} (the same local time "
            f"{_in_words(days)} open day{plural} later)"
        )
    else:
        as_days = "whole business days such as '2bd' (the same local time two open days later)"
    count = hours / (3600 * US)
    as_hours = (
        f"'{count.numerator}h' for {count.numerator} business hour{'s' if count != 1 else ''}"
        if count.denominator == 1
        else f"'{_readable(hours)}' of business hours"
    )
    return (
        f"{where}: {w.text!r} on business calendar {cal.name!r} is ambiguous: write {as_days} "
        f"or {as_hours}"
    )


def _resolve(w: _Written, cal: Calendar, where: str) -> tuple[int, int]:
    """A window written in a policy, in its calendar: (microseconds, business days or 0).

    Business days ("2bd") count open days of the calendar; their microseconds are the nominal
    N x the longest open day. Days and weeks ("2d", "1w") are refused on a calendar with
    closed time, where a day could mean an open day or 24 hours of business time. Every
    window is bounded (MAX_WINDOW_US of counted time, MAX_WINDOW_SPAN_DAYS of calendar time),
    so a typo is an error naming the field, not a deadline beyond the year 9999."""
    too_long = (
        f"{where}: {w.text!r} is longer than the longest window caseclock accepts "
        f"({MAX_WINDOW_US // _DAY_US} days of counted time)"
    )
    if w.business_days:
        n = w.business_days
        nominal = n * cal.longest_day_us
        if nominal > MAX_WINDOW_US:
            raise PolicyError(too_long)
        # n open days take n / (open days a week) weeks of the calendar.
        if n * 7 > MAX_WINDOW_SPAN_DAYS * cal.open_weekdays:
            weekly = f"{cal.open_weekdays} day{'s' if cal.open_weekdays != 1 else ''}"
            raise PolicyError(_too_wide(w, cal, where, weekly, -(-n * 7 // cal.open_weekdays)))
        return nominal, n
    if w.day_units and not cal.always_open:
        raise PolicyError(_ambiguous(w, cal, where))
    if w.us > MAX_WINDOW_US:
        raise PolicyError(too_long)
    # W of counted time takes W / (open time a week) weeks of the calendar.
    if w.us * 7 > MAX_WINDOW_SPAN_DAYS * cal.weekly_us:
        days = -(-w.us * 7 // cal.weekly_us)
        raise PolicyError(_too_wide(w, cal, where, _readable(cal.weekly_us), days))
    return w.us, 0


def _too_wide(w: _Written, cal: Calendar, where: str, weekly: str, days: int) -> str:
    return (
        f"{where}: {w.text!r} on calendar {cal.name!r} ({weekly} open a week) takes {days} days "
        "of calendar time: longer than the longest window caseclock accepts "
        f"({MAX_WINDOW_SPAN_DAYS} days, {MAX_WINDOW_SPAN_DAYS // 365} years, of calendar time)"
    )


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
            windows: dict[str, int] = {}
            days: dict[str, int] = {}
            at = f"plans.{name}.priorities.{prio}"
            written = (
                ("acknowledge", "acknowledge", rd.acknowledge),
                ("update_every", "update_every", rd.update_every),
                ("time_to_open", "time_to_open", rd.time_to_open),
                ("elevate_after", "elevate", after),
            )
            for window, key, w in written:
                if w is None:
                    continue
                try:
                    windows[window], n = _resolve(w, cal, f"{at}.{key}")
                except PolicyError as e:
                    errors.append(str(e))
                    continue
                if n:
                    days[window] = n
            if len(windows) < sum(w is not None for _, _, w in written):
                continue
            rules[prio] = PriorityRule(
                priority=prio,
                acknowledge=windows["acknowledge"],
                update_every=windows["update_every"],
                time_to_open=windows.get("time_to_open"),
                elevate=mode,
                elevate_after=windows.get("elevate_after"),
                calendar=cal,
                business_days=days,
                objectives={k: float(x) for k, x in rd.objectives.items()},
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
