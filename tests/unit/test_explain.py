"""`caseclock explain`: one case's status and timeline, in words (issue 22)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from caseclock.core.policy import load_policy
from caseclock.explain import explain
from tests.factories import T0, note, opened, ts

HISTORY = [
    {"type": "case-opened", "event_id": "1", "case_id": "A", "occurred_at": ts(1), "priority": 1},
    {"type": "case-opened", "event_id": "2", "case_id": "B", "occurred_at": ts(1.5), "priority": 2},
    {
        "type": "case-noted",
        "event_id": "3",
        "case_id": "A",
        "occurred_at": ts(3),
        "author": "support",
        "visibility": "public",
    },
]


def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "caseclock.cli", *args], capture_output=True, check=False, timeout=60
    )


def test_the_reasons_in_words(tmp_path: Path) -> None:
    f = tmp_path / "h.jsonl"
    f.write_bytes(b"\n".join(orjson.dumps(x) for x in HISTORY))
    res = cli("explain", "A", "--history", str(f), "--until", ts(8))
    assert res.returncode == 0, res.stderr
    text = res.stdout.decode()
    assert "ack breach: no public support note between 10:00 and 11:00 UTC, 1 h on 24x7" in text
    assert (
        "update breach: no update to the customer since 12:00, due 16:00 UTC, 4 h on 24x7" in text
    )
    assert "elevate to L2: priority 1 since 2026-01-05 10:00 UTC (elevated at once)" in text
    assert "acknowledgement breached" in text and "update: breached" in text


def test_the_json_document(tmp_path: Path) -> None:
    f = tmp_path / "h.jsonl"
    f.write_bytes(b"\n".join(orjson.dumps(x) for x in HISTORY))
    res = cli("explain", "B", "--history", str(f), "--until", ts(10), "--json")
    assert res.returncode == 0, res.stderr
    doc = orjson.loads(res.stdout)
    assert doc["case_id"] == "B" and doc["facts_total"] == 1
    assert [a["type"] for a in doc["alerts"]] == ["ack-due", "ack-due", "elevate-to-l2"]
    assert doc["alerts"][-1]["words"].startswith("elevate to L2: no ETA or workaround between")
    assert {c["clock"]: c["state"] for c in doc["status"]["clocks"]} == {
        "ack": "breached",
        "elevation": "breached",
    }
    missing = cli("explain", "Z", "--history", str(f))
    assert missing.returncode == 1 and b"no fact of it" in missing.stdout


def test_a_long_history_keeps_the_latest_facts() -> None:
    policy = load_policy()
    events = [opened("M", 0, 3)] + [note("M", i / 60, author="customer") for i in range(500)]
    ex = explain(events, policy, "M")
    assert ex.facts_seen == 501 and len(ex.facts) == 200
    assert ex.facts[-1][1].occurred_at > T0
