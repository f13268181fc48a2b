"""`caseclock replay` as a user runs it: a file (or stdin) in, JSON lines out, summary on stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from tests.factories import ts

LINES = [
    {"type": "case-opened", "event_id": "1", "case_id": "C1", "occurred_at": ts(0), "priority": 1},
    {"type": "case-opened", "event_id": "2", "case_id": "C2", "occurred_at": ts(0), "priority": 2},
    "this is not json",
    {
        "type": "case-noted",
        "event_id": "3",
        "case_id": "C2",
        "occurred_at": ts(1),
        "author": "support",
        "visibility": "public",
    },
    {"type": "case-noted", "event_id": "4", "case_id": "C1", "occurred_at": ts(2)},
]


def write(tmp_path: Path) -> Path:
    f = tmp_path / "events.jsonl"
    f.write_bytes(b"\n".join(x.encode() if isinstance(x, str) else orjson.dumps(x) for x in LINES))
    return f


def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "caseclock.cli", *args],
        input=stdin,
        capture_output=True,
        check=False,
        timeout=60,
    )


def test_replay_prints_alerts_in_order_and_summary(tmp_path: Path) -> None:
    res = cli("replay", str(write(tmp_path)), "--until", ts(9))
    assert res.returncode == 0, res.stderr
    alerts = [orjson.loads(x) for x in res.stdout.splitlines()]
    keys = [(a["fired_at"], a["due_at"], a["case_id"], a["type"], a["stage"]) for a in alerts]
    assert keys == sorted(keys)
    assert ("C1", "elevate-to-l2", "action") in {
        (a["case_id"], a["type"], a["stage"]) for a in alerts
    }
    assert ("C1", "ack-due", "breach") in {(a["case_id"], a["type"], a["stage"]) for a in alerts}
    assert ("C2", "elevate-to-l2", "action") in {
        (a["case_id"], a["type"], a["stage"]) for a in alerts
    }
    err = res.stderr.decode()
    assert "line 3: invalid-json" in err
    assert "line 5: invalid-event" in err and "author" in err
    assert "events: 3 applied, 0 duplicate, 2 invalid" in err
    assert "breaches by priority: P1=1" in err


def test_replay_reads_stdin_and_default_horizon_is_latest_event(tmp_path: Path) -> None:
    res = cli("replay", "-", stdin=write(tmp_path).read_bytes())
    assert res.returncode == 0
    alerts = [orjson.loads(x) for x in res.stdout.splitlines()]
    assert max(a["fired_at"] for a in alerts) <= ts(1)


def test_strict_makes_invalid_lines_fatal(tmp_path: Path) -> None:
    res = cli("replay", "--strict", str(write(tmp_path)))
    assert res.returncode == 2
    assert b"line 3: invalid-json" in res.stderr


def test_bad_until_and_bad_policy_are_usage_errors(tmp_path: Path) -> None:
    assert cli("replay", str(write(tmp_path)), "--until", "2026-01-05T09:00:00").returncode == 2
    bad = tmp_path / "p.toml"
    bad.write_text("[plans.x.priorities.1]\nacknowledge='1h'\n")
    res = cli("replay", str(write(tmp_path)), "--policy", str(bad))
    assert res.returncode == 2 and b"update_every" in res.stderr


def test_replay_writes_the_final_status_of_every_case(tmp_path: Path) -> None:
    out = tmp_path / "status.jsonl"
    res = cli("replay", str(write(tmp_path)), "--until", ts(9), "--status", str(out))
    assert res.returncode == 0, res.stderr
    docs = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert [d["case_id"] for d in docs] == ["C1", "C2"]
    c1, c2 = ({c["clock"]: c for c in d["clocks"]} for d in docs)
    # C1 (P1) never acknowledged: breached at 1 h; elevated at once (an action, no clock).
    assert (c1["ack"]["state"], c1["ack"]["at"]) == ("breached", ts(1))
    assert docs[0]["elevated"] and "elevation" not in c1
    # C2 (P2) acknowledged at 1 h: in time; its update due at 49 h; elevated at 8 h.
    assert (c2["ack"]["state"], c2["ack"]["at"]) == ("fulfilled", ts(1))
    assert (c2["update"]["state"], c2["update"]["deadline"]) == ("running", ts(49))
    assert (c2["elevation"]["state"], c2["elevation"]["at"]) == ("breached", ts(8))
    assert all(d["as_of"] == ts(9) for d in docs)


def test_replay_writes_every_clock_transition(tmp_path: Path) -> None:
    out = tmp_path / "sla.jsonl"
    res = cli("replay", str(write(tmp_path)), "--until", ts(9), "--sla-events", str(out))
    assert res.returncode == 0, res.stderr
    docs = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    c2 = [(d["obligation"], d["transition"], d["at"]) for d in docs if d["case_id"] == "C2"]
    assert c2[:4] == [
        ("ack", "started", ts(0)),
        ("elevation", "started", ts(0)),
        ("ack", "fulfilled", ts(1)),
        (f"update@{ts(1)}", "started", ts(1)),
    ]
    assert ("elevation", "breached", ts(8)) in c2
    assert len({d["event_id"] for d in docs}) == len(docs)


def test_replay_reports_attainment_against_the_objectives(tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text(
        '[plans.support-plus.priorities.1]\nacknowledge = "1h"\nupdate_every = "4h"\n'
        'elevate = "immediately"\nobjectives = { ack = 0.95 }\n'
        '[plans.support-plus.priorities.2]\nacknowledge = "4h"\nupdate_every = "48h"\n'
        'elevate = "8h"\nobjectives = { ack = 0.5, elevation = 0.9 }\n'
    )
    res = cli(
        "replay", str(write(tmp_path)), "--until", ts(9), "--policy", str(policy), "--attainment"
    )
    assert res.returncode == 0, res.stderr
    text = res.stderr.decode()
    assert "support-plus P1 ack (24x7): 0/1 = 0.0%, objective 95.0% BELOW" in text
    assert "support-plus P2 ack (24x7): 1/1 = 100.0%, objective 50.0%\n" in text
    assert "support-plus P2 elevation (24x7): 0/1 = 0.0%, objective 90.0% BELOW" in text
