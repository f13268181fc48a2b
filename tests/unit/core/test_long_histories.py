"""Long histories: pauses and resolutions are counted exactly, however many a case has
(spec section 7, as amended; issue 21, 3), while the state stays bounded.

The reference is the same engine with every bound lifted: it keeps every fact. The bound may
drop only what no open or future window can reach, so the two must agree on every alert."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caseclock.core import engine as engine_module
from caseclock.core.alerts import Alert
from caseclock.core.facts import InboundEvent
from caseclock.core.state import MAX_STATUS_FACTS
from caseclock.core.timeutil import to_us
from caseclock.replay import Replayer, alert_sort_key
from tests.factories import T0, eta, hours_of, note, opened, reopened, reprioritised, resolved
from tests.factories import status as status_changed
from tests.unit.core.test_engine_properties import PROPERTY_POLICY

_BOUNDS = ("TRIM_FROM", "MAX_STATUS_FACTS", "MAX_RESOLUTION_FACTS")


@contextmanager
def keeping_everything() -> Iterator[None]:
    """The engine with no bound on the status and resolution histories."""
    saved = {name: getattr(engine_module, name) for name in _BOUNDS}
    for name in _BOUNDS:
        setattr(engine_module, name, 10**9)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(engine_module, name, value)


def run(events: Sequence[InboundEvent], until_h: float) -> tuple[list[Alert], Replayer]:
    r = Replayer(PROPERTY_POLICY)
    out: list[Alert] = []
    for e in events:
        out.extend(r.feed(e))
    out.extend(r.finish(to_us(T0) + round(until_h * 3600e6)))
    return sorted(out, key=alert_sort_key), r


def brief(alerts: Sequence[Alert]) -> list[tuple[str, str, float, float]]:
    return [(a.type, a.stage, hours_of(a.due_at), hours_of(a.fired_at)) for a in alerts]


def test_twenty_pauses_in_one_update_window_each_extend_it() -> None:
    """Issue 21, 3: 20 pauses of 30 minutes within a P3's 120 h update window move its breach
    by 10 h (the bound once forgot the oldest four, and the breach came 2 h early)."""
    events = [opened("L", 0, 3), note("L", 1)]
    for i in range(20):
        events += [status_changed("L", 2 + i, "pending"), status_changed("L", 2.5 + i, "open")]
    out, _ = run(events, until_h=200)
    breaches = [b for b in brief(out) if b[:2] == ("update-due", "breach")]
    assert breaches[0][2] == 1 + 120 + 10


def test_ten_resolve_reopen_cycles_before_the_acknowledgement_each_stop_its_window() -> None:
    """... and 10 resolve/reopen cycles of 20 minutes move a P3's ack breach by 200 minutes."""
    events = [opened("R", 0, 3)]
    for i in range(10):
        events += [resolved("R", 0.5 + i / 2), reopened("R", 0.5 + i / 2 + 1 / 3)]
    out, _ = run(events, until_h=20)
    breaches = [a for a in out if (a.type, a.stage) == ("ack-due", "breach")]
    due = to_us(T0) + 8 * 3600 * 10**6 + 10 * 20 * 60 * 10**6
    assert [(a.due_us, a.fired_us) for a in breaches] == [(due, due)]


def test_hundreds_of_pauses_before_an_acknowledgement_are_all_counted() -> None:
    """A window may reach back to the opening as long as nobody answered: 200 pauses before
    the acknowledgement, the time to acknowledge counts none of them."""
    events = [opened("M", 0, 3, plan="biz", policy=PROPERTY_POLICY)]
    for i in range(200):
        events += [status_changed("M", i / 10, "pending"), status_changed("M", i / 10 + 0.05, "x")]
    _, bounded = run(events, until_h=1000)
    with keeping_everything():
        _, reference = run(events, until_h=1000)
    b, ref = bounded.states["M"], reference.states["M"]
    assert len(b.statuses) == len(ref.statuses) == 400 <= MAX_STATUS_FACTS
    assert bounded.engine.next_due(b) == reference.engine.next_due(ref)


@st.composite
def long_history(draw: st.DrawFn) -> list[InboundEvent]:
    """One case with hundreds of status changes and tens of resolve/reopen cycles over a few
    weeks, on a 24x7 or a business-hours plan, with notes, ETAs and priority changes among
    them, and some facts arriving late (up to a few days)."""
    rnd = random.Random(draw(st.integers(0, 2**32)))
    plan = draw(st.sampled_from(["support-plus", "biz"]))
    span_h = 24 * draw(st.integers(3, 30))
    events: list[InboundEvent] = [
        opened("H", 0, rnd.randint(1, 3), plan=plan, policy=PROPERTY_POLICY, event_id="o")
    ]
    n = draw(st.integers(150, 600))
    statuses = ["pending", "on-hold", "open", "in-progress"]
    for i in range(n):
        t = rnd.uniform(0, span_h)
        kind = rnd.random()
        eid = f"e{i}"
        if kind < 0.6:
            events.append(status_changed("H", t, rnd.choice(statuses), event_id=eid))
        elif kind < 0.8:
            flip = resolved if rnd.random() < 0.5 else reopened
            events.append(flip("H", t, event_id=eid))
        elif kind < 0.95:
            author = rnd.choice(["support", "support", "customer"])
            events.append(note("H", t, author=author, event_id=eid))
        elif kind < 0.98:
            events.append(eta("H", t, t + rnd.uniform(-2, 60), event_id=eid))
        else:
            events.append(reprioritised("H", t, rnd.randint(1, 3), event_id=eid))

    # Mostly in time order, a few late by up to three days.
    def arrival(e: InboundEvent) -> float:
        late = rnd.uniform(0, 72) if rnd.random() < 0.05 else 0.0
        return hours_of(e.occurred_at) + late

    events.sort(key=arrival)
    return events


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(long_history())
def test_the_bounded_state_gives_the_alerts_of_one_that_keeps_everything(
    events: list[InboundEvent],
) -> None:
    last = max(hours_of(e.occurred_at) for e in events)
    bounded, _ = run(events, until_h=last + 400)
    with keeping_everything():
        reference, kept = run(events, until_h=last + 400)
    assert [a.alert_id for a in bounded] == [a.alert_id for a in reference]
    assert bounded == reference
    # Long enough that the old bound (the latest 32 status facts) would have forgotten some.
    assert len(kept.states["H"].statuses) > 32
