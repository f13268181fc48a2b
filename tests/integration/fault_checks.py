"""What must hold after faults the service recovered from: nothing lost, spurious or stormed.

`check_faults` (and `check_outage`, its one-kill case) compares every alert copy read from the
alert topics with replay's prediction; the failover, restart and fault suites all use it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.integration.expectations import MARGIN_US, alert_key, describe, due, fired
from tests.integration.times import US


@dataclass
class OutageReport:
    repeats: int
    catch_ups: int
    skipped: int
    """Predicted alerts that a catch-up alert stood for (so they were not emitted themselves)."""


def check_outage(
    live: Sequence[Mapping[str, Any]],
    expected: Sequence[Mapping[str, Any]],
    *,
    t0_us: int,
    kill_us: int,
    cutoff_us: int,
    context: str = "",
) -> OutageReport:
    """What must hold when a worker was SIGKILLed at `kill_us` (measured once it was dead) and
    its cases were picked up again (by a restarted worker, or by a survivor): check_faults
    with that one fault."""
    return check_faults(
        live, expected, t0_us=t0_us, faults_us=[kill_us], cutoff_us=cutoff_us, context=context
    )


def check_faults(
    live: Sequence[Mapping[str, Any]],
    expected: Sequence[Mapping[str, Any]],
    *,
    t0_us: int,
    faults_us: Sequence[int],
    cutoff_us: int,
    context: str = "",
    explain: Callable[[str], str] | None = None,
    takeover: Callable[[int, str], tuple[int, int] | None] | None = None,
) -> OutageReport:
    """What must hold after faults at `faults_us` (a SIGKILL measured once the worker was dead,
    a broker stop, a membership change) from which the service recovered, given every alert
    copy read from the alert topics (`live`) and what replay says (`expected`, horizon =
    `cutoff_us`). Alerts due within the margin before the cut-off are not compared. A failure
    message shows `context`, and `explain(case_id)` when given (what was sent for the case).
    `takeover(i, case_id)`, when given, bounds the instant R at which a worker began serving
    the case again after fault i: (A, B) with every alert fired at or after A fired after R
    (the case's previous owner had stopped serving it by A), and R after B (its next owner was
    not ready yet at B); None when the samples cannot tell (a rebalance between two of them).

    * every alert fired at or after its due_at;
    * a repeat carries the same alert_id and content as its first copy (apart from fired_at and
      the catch_up flag), at most once per fault, and one obligation never gets two ids;
    * nothing spurious: every live alert is one replay predicts (id, type, stage, reason, case,
      priority, due_at);
    * nothing lost: a predicted alert missing live must have been stood for by a catch-up: the
      first alert of its clock (case and type) fired at or after its due_at has catch_up set;
    * no storm: for each fault, per clock, of the alerts fired after the takeover (from A), at
      most one is for what was already due before it (by B); when a breach fell due between
      the fault and B (and was not fired before A) and one is, it is the most recent such
      breach. Everything due by B was
      past due when the worker rebuilt or learned the case, so catch-up folds it into one
      alert. What fell due after B may come out point by point (a timer behind its backlog
      emits each as itself, semantics 3.7, even once a backlog delays it past the next
      deadline), and what the previous owner fired before it let go is none of the takeover's
      doing. Without `takeover`, A is the fault and B the first alert after it (F): good
      enough for one fault, a short backlog and a worker that stops serving at once (a kill),
      but with several faults F can lie far beyond the fault checked, behind a long backlog a
      lone warning fired after its breach fell due reads as a storm, and so does a warning
      the previous owner fired before a rebalance, followed by the breach after it.
    """
    upto = cutoff_us - MARGIN_US
    live_c = [a for a in live if due(a) <= upto]
    exp_c = [a for a in expected if due(a) <= upto]

    def where(case_id: str) -> str:
        """Live and replay alerts (only the case's, when there are many) for a failure."""
        if len(live) + len(exp_c) > 200:
            mine = [a for a in live if a["case_id"] == case_id]
            theirs = [a for a in exp_c if a["case_id"] == case_id]
            head = f"\n(case {case_id} only, of {len(live)} live and {len(exp_c)} predicted)"
        else:
            mine, theirs, head = list(live), exp_c, ""
        told = f"\nsent for {case_id}:\n{explain(case_id)}" if explain is not None else ""
        return (
            f"{head}\nlive:\n{describe(mine, t0_us)}\nreplay:\n{describe(theirs, t0_us)}"
            f"{told}\n{context}"
        )

    bad = [a for a in live if fired(a) < due(a)]
    assert not bad, f"fired before due:\n{describe(bad, t0_us)}"

    copies: dict[str, list[Mapping[str, Any]]] = {}
    for a in live:
        copies.setdefault(a["alert_id"], []).append(a)
    repeats = 0
    for aid, group in copies.items():
        assert len(group) <= 1 + len(faults_us), (
            f"{aid} emitted {len(group)} times{where(group[0]['case_id'])}"
        )
        strip = [{k: v for k, v in a.items() if k not in ("fired_at", "catch_up")} for a in group]
        assert all(s == strip[0] for s in strip), f"repeat of {aid} differs: {group}"
        repeats += len(group) - 1
    ids_of: dict[tuple[Any, ...], set[str]] = {}
    for a in live:
        ids_of.setdefault(alert_key(a)[1:], set()).add(a["alert_id"])
    two = {k: v for k, v in ids_of.items() if len(v) > 1}
    assert not two, f"one obligation, several ids: {two}"

    exp_keys = {alert_key(a) for a in exp_c}
    spurious = [a for a in live_c if alert_key(a) not in exp_keys]
    assert not spurious, (
        f"alerts replay does not predict:\n{describe(spurious, t0_us)}"
        f"{where(spurious[0]['case_id']) if spurious else ''}"
    )

    by_clock: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for a in sorted(live, key=fired):
        by_clock.setdefault((a["case_id"], a["type"]), []).append(a)
    skipped = 0
    for m in exp_c:
        if m["alert_id"] in copies:
            continue
        clock = by_clock.get((m["case_id"], m["type"]), [])
        first_after = next((a for a in clock if fired(a) >= due(m)), None)
        assert first_after is not None and first_after.get("catch_up"), (
            f"lost (no catch-up stands for it): {m}{where(m['case_id'])}"
        )
        skipped += 1

    exp_breaches: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for a in exp_c:
        if a["stage"] == "breach":
            exp_breaches.setdefault((a["case_id"], a["type"]), []).append(a)
    for i, fault_us in enumerate(faults_us):
        fault_s = (fault_us - t0_us) / US
        for (case_id, type_), clock in sorted(by_clock.items()):
            post = [a for a in clock if fired(a) >= fault_us]
            if not post:
                continue
            if takeover is None:
                a_us, b_us = fault_us, fired(post[0])
            else:
                bounds = takeover(i, case_id)
                if bounds is None:
                    continue
                a_us, b_us = bounds
                post = [a for a in post if fired(a) >= a_us]
            label = (
                f"{case_id} {type_} (fault at {fault_s:.2f}s, taken over after "
                f"{(b_us - t0_us) / US:.2f}s, fired from {(a_us - t0_us) / US:.2f}s)"
            )
            caught = {a["alert_id"] for a in post if due(a) <= b_us}
            assert len(caught) <= 1, (
                f"{label}: alert storm:\n{describe(post, t0_us)}{where(case_id)}"
            )
            fired_before = {a["alert_id"] for a in clock if fired(a) < a_us}  # previous owner
            breaches = [
                a
                for a in exp_breaches.get((case_id, type_), [])
                if fault_us < due(a) <= b_us and a["alert_id"] not in fired_before
            ]
            if breaches and caught:  # (none caught: the catch-up is for a breach due after B)
                latest = max(breaches, key=due)
                assert caught == {latest["alert_id"]}, (
                    f"{label}: catch-up is not the latest breach {latest}{where(case_id)}"
                )
    catch_ups = sum(1 for a in live if a.get("catch_up"))
    return OutageReport(repeats=repeats, catch_ups=catch_ups, skipped=skipped)
