"""Policy files: the built-in plan matches the table of docs/semantics.md; errors name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from caseclock.core.policy import PolicyError, load_policy, policy_from_toml
from caseclock.core.timeutil import parse_duration

H = 3600 * 10**6


def test_builtin_support_plus_matches_the_spec_table() -> None:
    plan = load_policy().plans["support-plus"]
    assert plan.warn_fraction == 0.75
    p1, p2, p3 = (plan.priorities[i] for i in (1, 2, 3))
    assert (p1.time_to_open, p1.acknowledge, p1.update_every, p1.elevate) == (
        H,
        H,
        4 * H,
        "immediately",
    )
    assert (p2.time_to_open, p2.acknowledge, p2.update_every) == (4 * H, 4 * H, 48 * H)
    assert (p2.elevate, p2.elevate_after) == ("after", 8 * H)
    assert (p3.time_to_open, p3.acknowledge, p3.update_every, p3.elevate) == (
        8 * H,
        8 * H,
        120 * H,
        "never",
    )


@pytest.mark.parametrize(
    ("text", "us"),
    [
        ("4h", 4 * H),
        ("48h", 48 * H),
        ("1h30m", 90 * 60 * 10**6),
        ("250ms", 250_000),
        ("2d", 48 * H),
        ("1.5s", 1_500_000),
        ("1w", 168 * H),
    ],
)
def test_readable_durations(text: str, us: int) -> None:
    assert parse_duration(text) == us


@pytest.mark.parametrize("bad", ["", "4", "4x", "h4", "4h-", "-1h"])
def test_bad_durations_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_durations_are_exact_decimals() -> None:
    # A float would make 0.1 s 100000.00000000001 us and 1.001 h a neighbour of it.
    assert parse_duration("0.1s") == 100_000
    assert parse_duration("1.001h") == 3_603_600_000
    assert parse_duration("0.0000015s") == 2  # rounded once, to the nearest (even) microsecond
    assert parse_duration("1.5h30m") == 2 * H


@pytest.mark.parametrize(
    ("absurd", "says"),
    [
        ("1e400h", "invalid duration"),  # no exponents
        ("9" * 400 + "h", "too many digits"),  # a float would be inf, round(inf) an OverflowError
        ("1" + "0" * 18 + "ms", "too many digits"),
        ("0." + "0" * 30 + "1s", "too many digits"),
        ("300000d", "longer than the range of instants"),
        ("4000000h", "1970-01-01T00:00:00Z..2200-01-01T00:00:00Z"),
    ],
)
def test_absurd_durations_are_refused_with_a_value_error(absurd: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_duration(absurd)


def test_the_longest_duration_is_the_range_of_instants() -> None:
    from caseclock.core.timeutil import MAX_DURATION_US

    days = MAX_DURATION_US // (86400 * 10**6)
    assert MAX_DURATION_US % (86400 * 10**6) == 0
    assert parse_duration(f"{days}d") == MAX_DURATION_US
    with pytest.raises(ValueError, match="longer than"):
        parse_duration(f"{days}d1ms")


def test_several_plans_per_file_with_own_warn_fraction(tmp_path: Path) -> None:
    f = tmp_path / "policy.toml"
    f.write_text(
        """
default_plan = "gold"
[plans.gold]
warn_fraction = 0.5
[plans.gold.priorities.1]
acknowledge = "15m"
update_every = "1h"
elevate = "immediately"
[plans.basic]
[plans.basic.priorities.4]
acknowledge = "2d"
update_every = "1w"
"""
    )
    pol = load_policy(f)
    assert set(pol.plans) == {"gold", "basic"} and pol.default_plan == "gold"
    assert pol.plans["gold"].warn_fraction == 0.5
    assert pol.plans["basic"].warn_fraction == 0.75
    assert pol.plans["basic"].priorities[4].elevate == "never"
    assert pol.all_priorities == {1, 4}


@pytest.mark.parametrize(
    ("toml", "names"),
    [
        (
            '[plans.x.priorities.1]\nacknowledge = "4x"\nupdate_every = "1h"\n',
            "plans.x.priorities.1.acknowledge",
        ),
        ('[plans.x.priorities.1]\nacknowledge = "4h"\n', "plans.x.priorities.1.update_every"),
        (
            '[plans.x]\nwarn_fraction = 1.5\n[plans.x.priorities.1]\nacknowledge = "1h"\n'
            'update_every = "1h"\n',
            "plans.x.warn_fraction",
        ),
        (
            '[plans.x.priorities.1]\nacknowledge = "1h"\nupdate_every = "1h"\nelevate = "soon"\n',
            "plans.x.priorities.1.elevate",
        ),
        (
            '[plans.x.priorities.1]\nacknowledge = "1h"\nupdate_every = "1h"\nescalate = "1h"\n',
            "plans.x.priorities.1.escalate",
        ),
        ('[plans.x.priorities.1]\nacknowledge = "1h"\nupdate_every = "1h"\n', "default_plan"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_errors_name_the_offending_field(toml: str, names: str) -> None:
    with pytest.raises(PolicyError) as exc:
        policy_from_toml(toml, "test.toml")
    assert names in str(exc.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy"):
        load_policy(tmp_path / "nope.toml")


def test_builtin_policies_by_name() -> None:
    assert load_policy("builtin:support-plus") == load_policy()
    demo = load_policy("builtin:demo")
    assert demo.plans["support-plus"].priorities[1].acknowledge == 20 * 10**6
    with pytest.raises(PolicyError, match="no built-in policy"):
        load_policy("builtin:gold")


def test_warn_fraction_false_turns_warnings_off_in_toml() -> None:
    from caseclock.core.policy import policy_from_toml

    pol = policy_from_toml(
        'default_plan = "quiet"\n[plans.quiet]\nwarn_fraction = false'
        "\n[plans.quiet.priorities.1]\n"
        'acknowledge = "1h"\nupdate_every = "4h"\n',
        "quiet.toml",
    )
    assert pol.plans["quiet"].warn_fraction is None
    with pytest.raises(PolicyError, match=r"plans\.x\.warn_fraction"):
        policy_from_toml(
            "[plans.x]\nwarn_fraction = true\n[plans.x.priorities.1]\n"
            'acknowledge = "1h"\nupdate_every = "4h"\n'
        )


def test_a_case_opened_without_plan_gets_the_policys_default_plan() -> None:
    import orjson

    from caseclock.contracts.inbound import decode_event

    pol = policy_from_toml(
        'default_plan = "gold"\n[plans.gold.priorities.1]\nacknowledge = "1h"\n'
        'update_every = "4h"\n'
    )
    raw = orjson.dumps(
        {
            "type": "case-opened",
            "event_id": "e1",
            "case_id": "C1",
            "occurred_at": "2026-01-05T09:00:00Z",
            "priority": 1,
        }
    )
    assert decode_event(raw, pol).plan == "gold"  # type: ignore[union-attr]


def test_objectives_are_fractions_of_clocks_the_priority_has() -> None:
    import pytest

    from caseclock.core.policy import PolicyError, policy_from_toml

    base = (
        'default_plan = "p"\n[plans.p.priorities.1]\nacknowledge = "1h"\nupdate_every = "4h"\n'
        'elevate = "immediately"\n'
    )
    ok = policy_from_toml(base + "objectives = { ack = 0.95, update = 1 }\n", "<t>")
    assert dict(ok.plans["p"].priorities[1].objectives) == {"ack": 0.95, "update": 1.0}
    for bad, says in [
        ("objectives = { ack = 95 }", "above 0 and at most 1 (0.95 for 95%)"),
        ("objectives = { elevation = 0.9 }", "only a timed elevation"),
        ("objectives = { time_to_open = 0.9 }", "no time_to_open window"),
        ("objectives = { nope = 0.9 }", "plans.p.priorities.1.objectives"),
    ]:
        with pytest.raises(PolicyError, match=r"plans\.p\.priorities\.1") as e:
            policy_from_toml(base + bad + "\n", "<t>")
        assert says in str(e.value)
