"""At least 10,000 hypothesis-generated bad messages interleaved with valid traffic.

The corpus is drawn with hypothesis strategies (see `bad_message`): random bytes, truncated
JSON, fields of the wrong type, deep nesting, huge strings and numbers, invalid UTF-8, naive
timestamps, unknown types, plans and priorities, JSON that is not an object, keys that disagree
with case_id (another case's key, junk, no key at all), empty values and tombstones. Each one is
judged by the same decoding the worker uses (`decode_event`, with the worker's size limit) plus
the README's rules for what Kafka adds (a tombstone is an empty message; a message without a key
cannot equal its case_id): the expected reason. A drawn message the decoder accepts is not bad
and is left out, so that every message sent as bad must be dead-lettered.

One worker; the load (support.LoadGenerator) runs in full for SEED_S, then goes quiet (new
cases and notes that are not communications, so the alerts do not depend on how long the bad
messages hold up the valid ones) while the corpus is interleaved at BAD_RATE per second. Then:
every bad message is on the dead-letter topic exactly once, with its reason, its source
(topic, partition, offset) and its original key and bytes (the first 512 KiB of larger ones);
`caseclock_dead_letters_total` counts them by reason; every valid message was applied (events
consumed + duplicates = valid messages sent) and the alerts equal replay of the exact bytes
sent; the worker never stopped.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from caseclock.contracts.deadletter import MAX_DEAD_LETTER_VALUE_BYTES, DeadLetter
from caseclock.contracts.inbound import (
    DEFAULT_MAX_MESSAGE_BYTES,
    REJECT_REASONS,
    Rejected,
    decode_event,
)
from caseclock.core.policy import Policy
from tests.integration.deployment import INPUT_TOPICS, Deployment, WorkerProcess, run
from tests.integration.expectations import load_test_policy
from tests.integration.faults.comparison import compare_with_replay
from tests.integration.faults.figures import Figures, elapsed_s, run_checks, scaled
from tests.integration.faults.load import FAULT_POLICY, LoadGenerator, Outgoing, staged_fault
from tests.integration.kafka_io import read_alerts, read_all
from tests.integration.metrics_text import metric_samples
from tests.integration.scripts import Sent
from tests.integration.times import US, now_us, sleep_until, wait_until

BAD = scaled(10_000)
BAD_RATE = 500.0
SEED_S = 3.0
TAIL_S = 5.0
CORPUS_SEED = 20261201
BATCH = 50
CASES = [f"X-{i:03d}" for i in range(200)]
"""Case ids of the bad messages (the load's cases are L-nnnnn)."""

# --- the corpus ------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=12,
)
ID_MARK = "@id@"
"""Replaced in each drawn message by its number (see draw_corpus), where it survived."""
OFFSETS = [timezone(timedelta(minutes=m)) for m in (0, 330, -480, 840, -720)]
instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1))
timestamps = st.builds(
    lambda d, tz: d.replace(tzinfo=tz).isoformat(), instants, st.sampled_from(OFFSETS)
)
naive_timestamps = st.builds(
    datetime.strftime,
    instants,
    st.sampled_from(
        ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M"]
    ),
)


@st.composite
def valid_doc(draw: st.DrawFn, case_id: str) -> dict[str, Any]:
    """A valid inbound event for `case_id` (the material the defects are made of)."""
    type_ = draw(st.sampled_from(INPUT_TOPICS))
    doc: dict[str, Any] = {
        "event_id": ID_MARK + draw(st.text(max_size=30)),
        "type": type_,
        "case_id": case_id,
        "occurred_at": draw(timestamps),
    }
    if type_ == "case-opened":
        doc["priority"] = draw(st.sampled_from([1, 2, 3]))
        doc["subject"] = draw(st.text(max_size=100))
    elif type_ == "case-noted":
        doc["author"] = draw(st.sampled_from(["support", "customer", "system"]))
        doc["visibility"] = draw(st.sampled_from(["public", "internal"]))
    elif type_ == "eta-set":
        doc["eta"] = draw(timestamps)
    elif type_ == "priority-changed":
        doc["priority"] = draw(st.sampled_from([1, 2, 3]))
    elif type_ == "status-changed":
        doc["status"] = draw(st.sampled_from(["open", "pending", "on-hold", "solved"]))
    return doc


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


_FAMILIES = (
    *("random-bytes", "truncated-json", "wrong-type", "missing-field", "deep-nesting"),
    *("huge-string", "huge-number", "invalid-utf8", "naive-timestamp", "unknown-value"),
    *("not-an-object", "key-mismatch", "empty"),
)
FAMILIES = _FAMILIES * 10 + ("giant-string",) + _FAMILIES * 10
"""Each family 20 times, and the giant strings (up to 900 KB) once, in the middle (hypothesis
favours the ends of a range): they are what costs."""


@st.composite
def bad_message(draw: st.DrawFn) -> tuple[str, bytes | None, bytes | None, str]:
    """(input type, key, value, family): one message meant to be rejected."""
    family = FAMILIES[draw(st.integers(0, len(FAMILIES) - 1))]
    case = draw(st.sampled_from(CASES))
    key: bytes | None = case.encode()
    if family in ("random-bytes", "not-an-object", "empty"):
        type_ = draw(st.sampled_from(INPUT_TOPICS))
        if family == "random-bytes":
            return type_, key, draw(st.binary(min_size=1, max_size=600)), family
        if family == "not-an-object":
            return (
                type_,
                key,
                dumps(draw(st.one_of(json_scalars, st.lists(json_values, max_size=5)))),
                family,
            )
        return type_, key, draw(st.sampled_from([None, b""])), family
    doc = draw(valid_doc(case))
    type_ = doc["type"]
    value: bytes | None
    if family == "truncated-json":
        full = dumps(doc)
        value = full[: draw(st.integers(1, len(full) - 1))]
    elif family == "wrong-type":
        doc[draw(st.sampled_from(sorted(doc)))] = draw(json_values)
        value = dumps(doc)
    elif family == "missing-field":
        del doc[draw(st.sampled_from(sorted(doc)))]
        value = dumps(doc)
    elif family == "deep-nesting":
        depth = draw(st.integers(100, 30_000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        nested = opener * depth + draw(st.sampled_from(["1", "null", '"x"'])) + closer * depth
        field = draw(st.sampled_from(["subject", "priority", "extra", "case_id"]))
        value = dumps(doc)[:-1] + f', "{field}": {nested}}}'.encode()
    elif family in ("huge-string", "giant-string"):
        top = 900_000 if family == "giant-string" else 80_000  # bytes; Kafka takes up to 1 MB
        char = draw(st.characters(codec="utf-8", exclude_categories=["Cs"]))
        # Sized by the character's JSON encoding: a control character takes 6 bytes (\uXXXX).
        size = draw(st.integers(257, top // (len(dumps(char)) - 2)))
        field = draw(st.sampled_from([f for f in ("event_id", "case_id", "subject") if f in doc]))
        doc[field] = char * size
        value = dumps(doc)
    elif family == "huge-number":
        digits = draw(st.integers(20, 5_000))
        number = draw(
            st.sampled_from(["9" * digits, "-" + "1" * digits, f"1e{digits}", "1.5e-999"])
        )
        field = draw(st.sampled_from(["occurred_at", "case_id", *(set(doc) & {"priority", "eta"})]))
        doc.pop(field, None)
        value = dumps(doc)[:-1] + f', "{field}": {number}}}'.encode()
    elif family == "invalid-utf8":
        junk = draw(
            st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
        )
        full = dumps(doc)
        at = draw(st.integers(1, len(full) - 2))
        value = full[:at] + junk + full[at:]
    elif family == "naive-timestamp":
        field = "eta" if type_ == "eta-set" and draw(st.booleans()) else "occurred_at"
        doc[field] = draw(naive_timestamps)
        value = dumps(doc)
    elif family == "unknown-value":
        what = draw(st.sampled_from(["type", "plan", "priority"]))
        if what == "type":
            doc["type"] = draw(st.text(max_size=20).filter(lambda t: t not in INPUT_TOPICS))
        elif what == "plan":
            doc.update(type="case-opened", priority=1, plan=draw(st.text(min_size=1, max_size=20)))
        else:
            doc.update(type=draw(st.sampled_from(["case-opened", "priority-changed"])))
            doc["priority"] = draw(st.integers().filter(lambda p: p not in (1, 2, 3)))
        value = dumps(doc)
    else:  # key-mismatch
        key = draw(
            st.one_of(
                st.sampled_from(CASES).filter(lambda c: c != case).map(str.encode),
                st.binary(max_size=64).filter(lambda b: b != case.encode()),
                st.none(),
            )
        )
        value = dumps(doc)
    return type_, key, value, family


def draw_corpus(n: int, rng_seed: int) -> list[tuple[str, bytes | None, bytes | None, str]]:
    """`n` messages drawn by hypothesis, BATCH an example (generation only: no shrinking, no
    database; reproducible for a seed). Hypothesis repeats list elements on purpose, so the
    event_id mark is replaced by the message's number: the messages built from an event
    document differ even where hypothesis drew the same."""
    corpus: list[tuple[str, bytes | None, bytes | None, str]] = []

    @seed(rng_seed)
    @settings(
        max_examples=-(-n // BATCH),
        database=None,
        deadline=None,
        derandomize=False,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(bad_message(), min_size=BATCH, max_size=BATCH))
    def collect(batch: list[tuple[str, bytes | None, bytes | None, str]]) -> None:
        for type_, key, value, family in batch:
            if value is not None:
                value = value.replace(ID_MARK.encode(), f"bad{len(corpus)}-".encode(), 1)
            corpus.append((type_, key, value, family))

    collect()
    return corpus[:n]


def expected_reason(
    policy: Policy, key: bytes | None, value: bytes | None, limit: int
) -> str | None:
    """The reason the worker must give, or None for a message it must accept."""
    if value is None:
        return "invalid-json"  # a tombstone: an empty message
    if key is None:
        return "key-mismatch"  # checked before the value is decoded (docs/architecture.md)
    try:
        ev = decode_event(value, policy, key=key, max_bytes=limit)
    except Rejected as r:
        return r.reason
    return "key-mismatch" if key != ev.case_id.encode() else None


def split(
    dep: Deployment,
    draw: Callable[[int, int], list[tuple[str, bytes | None, bytes | None, str]]],
    n: int,
) -> tuple[list[Outgoing], dict[int, str], Counter[str]]:
    """`draw(n, CORPUS_SEED)`, split into the bad ones to send (label = family and number),
    their expected reasons by number, and the drawn messages that were valid after all."""
    drawn = draw(n, CORPUS_SEED)
    policy = load_test_policy(dep)
    out: list[Outgoing] = []
    reasons: dict[int, str] = {}
    dropped: Counter[str] = Counter()
    for type_, key, value, family in drawn:
        reason = expected_reason(policy, key, value, DEFAULT_MAX_MESSAGE_BYTES)
        if reason is None:
            dropped[family] += 1
            continue
        reasons[len(out)] = reason
        out.append(Outgoing(dep.topic(type_), key, value, 0, f"bad:{family}:{len(out)}"))
    return out, reasons, dropped


# --- the scenario --------------------------------------------------------------------------


def test_bad_messages(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path, figures: Figures
) -> None:
    dep = Deployment(kafka_bootstrap, unique_prefix, tmp_path, policy=FAULT_POLICY)
    worker = WorkerProcess(dep, "w1")
    load = LoadGenerator(dep, rate=80, seed=4)
    t_draw = time.monotonic()
    # Drawn in a process of its own while the worker starts and the load seeds (in a thread,
    # hypothesis would see the producers' use of the random module as the strategies').
    with ProcessPoolExecutor(1) as pool:
        drawing = pool.submit(split, dep, draw_corpus, BAD + BAD // 25)
        try:
            worker.start().wait_ready()
            t0 = now_us()
            load.start()
            time.sleep(SEED_S)
            corpus, reasons, dropped = drawing.result()
            corpus, reasons = corpus[:BAD], {i: r for i, r in reasons.items() if i < BAD}
            assert len(corpus) == BAD, f"drew only {len(corpus)} bad messages"
            figures.update(
                bad_messages=len(corpus),
                corpus_ready_after_s=round(time.monotonic() - t_draw, 1),
                distinct_bad_values=len({m.value for m in corpus}),
                bad_by_family=dict(Counter(m.label.split(":")[1] for m in corpus)),
                bad_by_reason=dict(Counter(reasons.values())),
                drawn_but_valid=dict(dropped),
                bad_bytes=sum(len(m.value or b"") for m in corpus),
            )
            with staged_fault(load) as fw:  # quiet: valid facts no delay can make disagree
                fw.start_us = now_us()
                load.inject(corpus, BAD_RATE)
                wait_until(load.extra_sent, 30 + 3 * BAD / BAD_RATE, 0.5, "the corpus sent")
                fw.recovered_us = now_us()
            sent = load.stop()
            cutoff = now_us() + round(TAIL_S * US)
            bad = {(s.topic, s.partition, s.offset): s for s in sent if s.label.startswith("bad:")}
            assert len(bad) == BAD
            records = wait_for_dead_letters(dep, worker, BAD)
            dead_lettered_us = now_us()
            sleep_until(cutoff)
            live = run(read_alerts(dep.bootstrap, dep, idle=0.5))
            assert worker.alive() and worker.restarts == 0, worker.log_tail()
            status, body = worker.get("/metrics")
            assert status == 200
        finally:
            load.stop()
            worker.stop()

    figures.update(
        messages_sent=len(sent),
        valid_messages=len(sent) - BAD,
        corpus_sent_s=elapsed_s(fw.start_us, fw.recovered_us),
        all_dead_lettered_after_s=elapsed_s(fw.start_us, dead_lettered_us),
        dead_letters=len(records),
    )
    metrics = body.decode()
    valid = [s for s in sent if not s.label.startswith("bad:")]

    def every_bad_one_dead_lettered() -> None:
        check_dead_letters(records, bad, reasons)

    def counted_by_reason() -> None:
        samples = metric_samples(metrics, "caseclock_dead_letters_total")
        counted = {dict(labels)["reason"]: v for labels, v in samples.items()}
        want = Counter(reasons.values())
        assert counted == {r: float(want.get(r, 0)) for r in REJECT_REASONS}, counted

    def all_valid_applied() -> None:
        applied = sum(metric_samples(metrics, "caseclock_events_consumed_total").values())
        repeats = sum(metric_samples(metrics, "caseclock_events_duplicate_total").values())
        figures.update(events_applied=applied, events_duplicate=repeats)
        assert applied + repeats == len(valid), (
            f"{applied} applied + {repeats} repeats != {len(valid)} valid messages sent"
        )

    def alerts_are_replays() -> None:
        compare_with_replay(
            dep, valid, live, figures, t0_us=t0, cutoff_us=cutoff, logs=[worker.log_path]
        )

    try:
        run_checks(
            figures,
            every_bad_one_dead_lettered,
            counted_by_reason,
            all_valid_applied,
            alerts_are_replays,
        )
    finally:
        print(f"\nbad messages: {figures.values}")


def wait_for_dead_letters(
    dep: Deployment, worker: WorkerProcess, n: int, still_s: float = 15.0
) -> list[tuple[str, int, int, bytes | None, bytes]]:
    """The dead-letter topic's records, once the worker counted `n` dead letters, or once its
    count stood still for `still_s` (the rest is not coming: the checks say which), or the
    worker is gone. Polls the counter: reading the topic again and again costs more."""
    last, since = -1.0, time.monotonic()
    deadline = time.monotonic() + 300  # a failure guard only
    while time.monotonic() < deadline and worker.alive():
        try:
            status, body = worker.get("/metrics")
        except OSError:
            status, body = 0, b""
        count = sum(metric_samples(body.decode(), "caseclock_dead_letters_total").values())
        if status == 200 and count >= n:
            break
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since > still_s:
            break
        time.sleep(1.0)
    records: list[tuple[str, int, int, bytes | None, bytes]]
    records = run(read_all(dep.bootstrap, [dep.dead_letter_topic], idle=1.0))
    return records


def check_dead_letters(
    records: Sequence[tuple[str, int, int, bytes | None, bytes]],
    bad: Mapping[tuple[str, int, int], Sent],
    reasons: Mapping[int, str],
) -> None:
    """Every bad message on the dead-letter topic once, with its reason, its source and its
    original key and bytes (their first 512 KiB, and their size, when larger)."""
    seen: set[tuple[str, int, int]] = set()
    wrong: list[str] = []
    for _, _, _, key, value in records:
        dl = DeadLetter.model_validate_json(value)
        where = (dl.topic, dl.partition, dl.offset)
        src = bad.get(where)
        assert src is not None, f"a dead letter for a message not sent as bad: {dl!r:.300}"
        assert where not in seen, f"dead-lettered twice: {src.label}"
        seen.add(where)
        want = reasons[int(src.label.rsplit(":", 1)[1])]
        original = src.value or b""
        if (
            dl.reason != want
            or dl.original_key() != src.key
            or key != src.key
            or dl.value_size != len(original)
            or dl.original_value() != original[:MAX_DEAD_LETTER_VALUE_BYTES]
            or dl.value_truncated != (len(original) > MAX_DEAD_LETTER_VALUE_BYTES)
        ):
            wrong.append(f"{src.label}: got {dl.reason} ({dl.detail[:80]}), want {want}")
    missing = Counter(s.label.split(":")[1] for w, s in bad.items() if w not in seen)
    null_keyed = sum(1 for w, s in bad.items() if w not in seen and s.key is None)
    assert not missing, (
        f"{sum(missing.values())} bad messages not dead-lettered ({null_keyed} without a key), "
        f"by family: {dict(missing)}"
    )
    assert not wrong, f"{len(wrong)} dead letters wrong, e.g. {wrong[:10]}"


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_the_material_of_the_defects_is_valid_for_every_input_type(data: st.DataObject) -> None:
    """The defects are made of valid events: an input type the generator does not know how to
    fill (a new event type) would turn its 'key-mismatch' messages into invalid ones."""
    from caseclock.core.policy import policy_from_toml

    policy = policy_from_toml(FAULT_POLICY)
    doc = data.draw(valid_doc(CASES[0]))
    ev = decode_event(dumps(doc), policy, key=CASES[0].encode())
    assert ev.type == doc["type"]


def test_the_generator_draws_every_input_type() -> None:
    seen: set[str] = set()

    @settings(max_examples=300, deadline=None, database=None)
    @given(valid_doc(CASES[0]))
    def draw(doc: dict[str, Any]) -> None:
        seen.add(doc["type"])

    draw()
    assert seen == set(INPUT_TOPICS)
