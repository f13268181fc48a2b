"""The fault suite's no-storm check (tests/integration/fault_checks.check_faults) on made-up alerts:
it must flag a real storm after a takeover and pass what semantics 3.7 allows."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.fault_checks import check_faults
from tests.integration.times import US, iso

T0 = 1_800_000_000 * US


def alert(stage: str, due_s: float, fired_s: float, catch_up: bool = False) -> dict[str, Any]:
    return {
        "alert_id": f"A-ack-{stage}",
        "type": "ack-due",
        "stage": stage,
        "reason": "no-acknowledgement",
        "case_id": "A",
        "priority": 1,
        "due_at": iso(T0 + round(due_s * US)),
        "fired_at": iso(T0 + round(fired_s * US)),
        "catch_up": catch_up,
    }


EXPECTED = [alert("warning", 20, 20), alert("breach", 23, 23)]
FAULT = T0 + 10 * US
CUTOFF = T0 + 60 * US


def check(live: list[dict[str, Any]], takeover: tuple[float, float] | None) -> None:
    """check_faults with one fault at 10 s and, when given, the takeover's bounds (A, B)."""

    def bounds(i: int, case_id: str) -> tuple[int, int] | None:
        assert takeover is not None
        return T0 + round(takeover[0] * US), T0 + round(takeover[1] * US)

    check_faults(
        live,
        EXPECTED,
        t0_us=T0,
        faults_us=[FAULT],
        cutoff_us=CUTOFF,
        takeover=None if takeover is None else bounds,
    )


def test_a_lone_warning_behind_the_backlog_then_its_breach_is_no_storm() -> None:
    """Taken over between 21 s and 22 s: the warning (20 s) alone was past due, and the
    backlog delayed it past its breach (23 s), which then went out as itself."""
    live = [alert("warning", 20, 24.0), alert("breach", 23, 24.1)]
    check(live, takeover=(15, 21))
    with pytest.raises(AssertionError, match="alert storm"):  # what the F rule made of it
        check(live, takeover=None)


def test_a_warning_of_the_previous_owner_then_the_breach_is_no_storm() -> None:
    """The previous owner fired the warning before it let go (by 22 s); the breach came after
    the takeover, which began after 30 s."""
    live = [alert("warning", 20, 20.1), alert("breach", 23, 31)]
    check(live, takeover=(22, 30))


def test_both_points_past_due_at_the_takeover_and_both_emitted_is_a_storm() -> None:
    live = [alert("warning", 20, 31), alert("breach", 23, 31.1)]
    with pytest.raises(AssertionError, match="alert storm"):
        check(live, takeover=(22, 30))
    check([alert("breach", 23, 31, catch_up=True)], takeover=(22, 30))  # what is right
