"""The service layer against in-memory fakes of its ports: batching, at-least-once order,
per-case fault isolation, timers that fall behind, gauges and acknowledgement outcomes."""

from __future__ import annotations

import pytest
from aiokafka.errors import (
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    TopicAuthorizationFailedError,
)

from caseclock.core.timeutil import to_us
from caseclock.live.handlers import CaseService, OutputFailure
from caseclock.live.ports import DEAD_LETTERS, Origin
from caseclock.live.rows import decode_row
from tests.factories import T0, note, opened, reprioritised, resolved
from tests.unit.live.fakes import FakeClock, FakeOutbox, inbound, service

H = 3600 * 10**6
S = 10**6


def sample(svc: object, name: str, labels: dict[str, str] | None = None) -> float:
    registry = svc.metrics.registry  # type: ignore[attr-defined]
    return registry.get_sample_value(name, labels or {}) or 0.0


async def test_a_case_is_loaded_and_written_once_per_batch() -> None:
    svc, store, _, _ = service(to_us(T0))
    batch = [inbound(opened("A", 0, 1))] + [
        inbound(note("A", i / 60, author="customer")) for i in range(1, 50)
    ]
    await svc.on_inputs(batch)
    assert store.puts == 1
    assert sample(svc, "caseclock_events_consumed_total", {"type": "case-noted"}) == 49
    assert svc.next_deadline([0]) is not None


async def test_a_due_batch_is_sent_before_any_acknowledgement_is_awaited() -> None:
    svc, store, box, clock = service(to_us(T0))
    await svc.on_inputs([inbound(opened(c, 0, 1), 0) for c in ("A", "B", "C")])
    puts = store.puts
    clock.now = to_us(T0) + 60 * S  # the three elevations (due at opening) are due
    [(p, entries)] = svc.due(clock.now, [0])
    await svc.on_due([(p, entries)])
    sends = [i for i, (what, _) in enumerate(box.log) if what == "send"]
    acks = [i for i, (what, _) in enumerate(box.log) if what == "ack"]
    assert len(sends) == 3 and max(sends) < min(acks)
    assert store.puts == puts + 3  # recorded after the acknowledgements
    assert {a["case_id"] for a in box.records("elevate-to-l2")} == {"A", "B", "C"}


async def test_a_timer_that_fell_behind_still_sends_the_warning() -> None:
    """The warning (45 min) and the breach (1 h) are both past when the timer gets to the
    case: the warning must go out as itself, then the breach, no catch-up."""
    svc, _, box, clock = service(to_us(T0))
    await svc.on_inputs([inbound(opened("A", 0, 1))])
    for p, entries in svc.due(clock.now, [0]):  # the timer serves the partition from T0 on
        await svc.on_due([(p, entries)])
    clock.now = to_us(T0) + 2 * H  # ...and then falls two hours behind
    for _ in range(3):
        await svc.on_due(svc.due(clock.now, [0]))
    acks = box.records("ack-due")
    assert [(a["stage"], a["catch_up"]) for a in acks] == [("warning", False), ("breach", False)]


async def test_a_case_learned_after_its_deadlines_catches_up() -> None:
    svc, _, box, clock = service(to_us(T0) + 2 * H)  # the case arrives 2 h after it opened
    await svc.on_inputs([inbound(opened("A", 0, 1))])
    await svc.on_due(svc.due(clock.now, [0]))
    acks = box.records("ack-due")
    assert [(a["stage"], a["catch_up"]) for a in acks] == [("breach", True)]


async def test_a_deadline_past_when_learned_waits_for_the_other_topics_facts() -> None:
    """The case-opened comes 2 h late, and its acknowledging note is on another topic, read
    in the next batch: the past-due ack clock is evaluated only CASECLOCK_INPUT_SKEW after the
    case was learned, so the note is applied first and nothing fires."""
    svc, _, box, clock = service(to_us(T0) + 2 * H, env={"CASECLOCK_INPUT_SKEW": "0.25"})
    await svc.on_inputs([inbound(opened("A", 0, 1))])
    assert svc.due(clock.now, [0]) == []  # not yet
    clock.now += 20_000  # 20 ms later: the note's batch
    await svc.on_inputs([inbound(note("A", 0.01))])
    clock.now += 300_000
    await svc.on_due(svc.due(clock.now, [0]))
    assert box.records("ack-due") == []
    # Without the note, the clock fires once the skew has passed.
    await svc.on_inputs([inbound(opened("B", 0, 1))])
    assert svc.due(clock.now, [0]) == []
    clock.now += 250_000
    await svc.on_due(svc.due(clock.now, [0]))
    assert [a["case_id"] for a in box.records("ack-due")] == ["B"]
    # The wait is by design, not a late timer: the lateness histogram does not count it.
    count = sample(svc, "caseclock_alert_lateness_seconds_count", {"type": "ack-due"})
    total = sample(svc, "caseclock_alert_lateness_seconds_sum", {"type": "ack-due"})
    assert count == 1 and total == 0


async def test_facts_that_keep_coming_do_not_push_a_due_case_back() -> None:
    """A P1 raised to priority 1 is due for elevation at once; its facts keep coming every
    50 ms. The elevation waits the input skew once, not the skew after each fact."""
    svc, _, box, clock = service(to_us(T0), env={"CASECLOCK_INPUT_SKEW": "0.25"})
    await svc.on_inputs([inbound(opened("A", 0, 1))])
    fired_at = None
    for i in range(20):
        clock.now += 50_000
        await svc.on_inputs([inbound(note("A", i / 3600, author="system", visibility="internal"))])
        await svc.on_due(svc.due(clock.now, [0]))
        if box.records("elevate-to-l2") and fired_at is None:
            fired_at = clock.now
    assert fired_at == to_us(T0) + 250_000  # the skew after the case-opened, once


async def test_a_rebuilt_partition_catches_up_what_fell_due_before() -> None:
    svc, store, box, clock = service(to_us(T0))
    await svc.on_inputs([inbound(opened("A", 0, 1))])
    clock.now = to_us(T0) + 2 * H  # the worker was down; its successor rebuilds now
    svc.begin_rebuild([0])
    assert sum(svc.index_row(k, row) for (_, k), row in store.rows.items()) == 1
    svc.finish_rebuild()
    await svc.on_due(svc.due(clock.now, [0]))
    assert [(a["stage"], a["catch_up"]) for a in box.records("ack-due")] == [("breach", True)]


async def test_a_state_over_the_bound_is_dead_lettered_and_the_rest_applied() -> None:
    svc, store, box, _ = service(to_us(T0), env={"CASECLOCK_MAX_STATE_BYTES": "1024"})
    heavy = inbound(opened("H", 0, 1, subject="s" * 1000))
    await svc.on_inputs([heavy, inbound(opened("OK", 0, 1)), inbound(note("H", 0.1))])
    [dl] = box.records(DEAD_LETTERS)
    assert dl["reason"] == "state-too-large" and dl["partition"] == 0
    assert (0, b"OK") in store.rows and (0, b"H") in store.rows  # the note still applied
    assert sample(svc, "caseclock_dead_letters_total", {"reason": "state-too-large"}) == 1


async def test_an_alert_refused_for_good_is_dead_lettered_and_counts_as_emitted() -> None:
    def refuse_elevations(channel: str, key: bytes | None, value: bytes) -> BaseException | None:
        return MessageSizeTooLargeError() if channel == "elevate-to-l2" else None

    svc, store, box, clock = service(to_us(T0), outbox=FakeOutbox(fail=refuse_elevations))
    await svc.on_inputs([inbound(opened("A", 0, 1))])
    await svc.on_due(svc.due(clock.now, [0]))
    [dl] = box.records(DEAD_LETTERS)
    assert dl["reason"] == "alert-undeliverable" and dl["offset"] == -1  # never written
    assert dl["topic"] == svc.cfg.alert_topics["elevate-to-l2"] and dl["partition"] == 0
    assert "MessageSizeTooLargeError" in str(dl["detail"])
    # Recorded as emitted: the case's next deadline is its ack warning, not the elevation.
    row = store.get(0, b"A")
    assert row is not None
    assert svc.engine.next_due(decode_row(row)[0]) == to_us(T0) + round(0.75 * H)


async def test_an_alert_refused_for_a_reason_not_its_own_is_not_emitted_and_stops_the_line() -> (
    None
):
    """An ACL change (TopicAuthorizationFailed) refuses every alert of a topic for good: that
    is the worker's environment, not the record. The alert is not recorded as emitted (its
    row is not written), the case is tried again after the retry delay, the failure is
    counted and reported (`output_failure`: the adapter stops acknowledging input), and
    the first send that works again clears it."""
    refusing = True

    def acl(channel: str, key: bytes | None, value: bytes) -> BaseException | None:
        return TopicAuthorizationFailedError() if refusing and channel == "elevate-to-l2" else None

    svc, store, box, clock = service(to_us(T0), outbox=FakeOutbox(fail=acl))
    await svc.on_inputs([inbound(opened("A", 0, 1))])
    before = store.get(0, b"A")
    await svc.on_due(svc.due(clock.now, [0]))
    assert box.records(DEAD_LETTERS) == [] and box.records("elevate-to-l2") == []
    assert store.get(0, b"A") == before  # nothing recorded as emitted
    assert svc.output_failure is not None and "TopicAuthorization" in svc.output_failure
    assert sample(svc, "caseclock_send_failures_total", {"record": "alert"}) == 1
    assert not sample(svc, "caseclock_alerts_emitted_total", {"type": "elevate-to-l2"})
    assert svc.next_deadline([0]) == clock.now + svc.retry_us  # re-armed for a retry
    refusing = False
    clock.now += svc.retry_us
    await svc.on_due(svc.due(clock.now, [0]))
    assert [a["type"] for a in box.records("elevate-to-l2")] == ["elevate-to-l2"]
    assert svc.output_failure is None


async def test_a_dead_letter_refused_for_good_stops_its_input_from_being_acknowledged() -> None:
    def refuse(channel: str, key: bytes | None, value: bytes) -> BaseException | None:
        return TopicAuthorizationFailedError() if channel == DEAD_LETTERS else None

    svc, _, _, _ = service(to_us(T0), outbox=FakeOutbox(fail=refuse))
    bad = inbound(opened("A", 0, 1))._replace(value=b"{not json")
    with pytest.raises(OutputFailure):
        await svc.on_inputs([bad])
    assert svc.output_failure is not None


async def test_a_dead_letter_too_large_for_its_topic_is_sent_again_truncated() -> None:
    """A dead-letter topic whose max.message.bytes is below the input's refuses the dead letter
    of a large bad message for its size: that message must not stop the worker, so it goes
    again with only the start of its value, flagged as truncated."""

    def small_topic(channel: str, key: bytes | None, value: bytes) -> BaseException | None:
        return MessageSizeTooLargeError() if channel == DEAD_LETTERS and len(value) > 4000 else None

    svc, _, box, _ = service(to_us(T0), outbox=FakeOutbox(fail=small_topic))
    junk = b"\xff" * 6000
    await svc.on_inputs([inbound(opened("A", 0, 1))._replace(value=junk)])
    [dl] = box.records(DEAD_LETTERS)
    assert dl["value_truncated"] is True and dl["value_size"] == 6000
    assert svc.output_failure is None
    assert sample(svc, "caseclock_send_failures_total", {"record": "dead-letter"}) == 1


async def test_a_rebalance_abandons_the_wait_for_a_broker_that_is_away() -> None:
    """The revocation waits for the timer chunk in progress, so the chunk must not wait for
    the broker for ever once a rebalance began: the sends are abandoned, the alerts are not
    recorded as emitted (the new owner sends them), and no failure is reported."""
    svc, store, box, clock = service(
        to_us(T0), outbox=FakeOutbox(fail=lambda c, k, v: KafkaTimeoutError())
    )
    await svc.on_inputs([inbound(opened("A", 0, 1))])
    before = store.get(0, b"A")
    attempts = 0

    def abandon() -> bool:
        nonlocal attempts
        attempts += 1
        return attempts > 3

    svc.abandon = abandon
    await svc.on_due(svc.due(clock.now, [0]))
    assert attempts == 4 and box.records("elevate-to-l2") == []
    assert store.get(0, b"A") == before
    assert svc.output_failure is None


async def test_transient_send_failures_are_retried_until_they_succeed() -> None:
    failures = iter([KafkaTimeoutError(), KafkaTimeoutError()])

    def flaky(channel: str, key: bytes | None, value: bytes) -> BaseException | None:
        return next(failures, None)

    svc, _, box, clock = service(to_us(T0), outbox=FakeOutbox(fail=flaky))
    await svc.on_inputs([inbound(opened("A", 0, 1))])
    await svc.on_due(svc.due(clock.now, [0]))
    assert [a["type"] for a in box.records("elevate-to-l2")] == ["elevate-to-l2"]
    assert box.records(DEAD_LETTERS) == []
    assert sample(svc, "caseclock_send_failures_total", {"record": "alert"}) == 2
    assert sample(svc, "caseclock_send_failures_total", {"record": "dead-letter"}) == 0


async def test_an_unexpected_error_on_one_case_dead_letters_its_messages_only() -> None:
    svc, store, box, _ = service(to_us(T0))
    real_apply = svc.engine.apply

    def apply(state, ev, now, t=None):  # type: ignore[no-untyped-def]
        if ev.case_id == "BAD":
            raise RuntimeError("boom")
        return real_apply(state, ev, now, t)

    svc.engine.apply = apply  # type: ignore[method-assign]
    await svc.on_inputs([inbound(opened("BAD", 0, 1)), inbound(opened("GOOD", 0, 1))])
    [dl] = box.records(DEAD_LETTERS)
    assert dl["reason"] == "processing-failed" and "RuntimeError: boom" in str(dl["detail"])
    assert (0, b"GOOD") in store.rows and (0, b"BAD") not in store.rows


async def test_bad_messages_are_dead_lettered_with_their_reason() -> None:
    svc, _, box, _ = service(to_us(T0))
    good = inbound(opened("A", 0, 1))
    tomb = type(good)(good.origin, None)
    junk = type(good)(good.origin, b"\xff not json")
    keyless = type(good)(Origin("case-opened", 0, 9, None), good.value)
    await svc.on_inputs([tomb, junk, keyless, good])
    reasons = [d["reason"] for d in box.records(DEAD_LETTERS)]
    assert reasons == ["invalid-json", "invalid-json", "key-mismatch"]
    assert sample(svc, "caseclock_dead_letters_total", {"reason": "invalid-json"}) == 2


def acks(svc: object, outcome: str) -> float:
    return sample(svc, "caseclock_acknowledgements_total", {"priority": "1", "outcome": outcome})


async def test_acknowledgement_outcomes_are_counted_once_per_case() -> None:
    svc, _, _, clock = service(to_us(T0))
    await svc.on_inputs([inbound(opened("A", 0, 1))])
    await svc.on_inputs([inbound(note("A", 1.0))])  # exactly at the window: inclusive
    assert (acks(svc, "in_time"), acks(svc, "late")) == (1, 0)

    await svc.on_inputs([inbound(opened("B", 0, 1)), inbound(note("B", 1.5))])  # known late
    assert (acks(svc, "in_time"), acks(svc, "late")) == (1, 1)

    # The breach fired (counted late when emitted); the acknowledgement after it is not
    # counted a second time.
    await svc.on_inputs([inbound(opened("C", 0, 1))])
    clock.now = to_us(T0) + 2 * H
    for _ in range(3):
        await svc.on_due(svc.due(clock.now, [0]))
    assert (acks(svc, "in_time"), acks(svc, "late")) == (1, 2)
    await svc.on_inputs([inbound(note("C", 3))])
    assert (acks(svc, "in_time"), acks(svc, "late")) == (1, 2)


async def test_forgetting_partitions_drops_their_gauges_at_once() -> None:
    svc, _, _, _ = service(to_us(T0))
    svc.begin_rebuild([0, 1])
    svc.finish_rebuild()
    await svc.on_inputs([inbound(opened("A", 0, 1), 0), inbound(opened("B", 0, 2), 1)])
    assert sample(svc, "caseclock_partitions_owned") == 2
    assert sample(svc, "caseclock_open_cases", {"priority": "1", "plan": "support-plus"}) == 1
    svc.forget_partitions()
    assert sample(svc, "caseclock_partitions_owned") == 0
    assert (
        svc.metrics.registry.get_sample_value(
            "caseclock_open_cases", {"priority": "1", "plan": "support-plus"}
        )
        is None
    )


async def test_a_case_twice_in_a_due_batch_is_evaluated_once() -> None:
    """Ticks re-delivered after a restart and a retried dispatch can name one case several
    times in a batch; its alerts must go out once."""
    svc, _, box, clock = service(to_us(T0))
    await svc.on_inputs([inbound(opened("A", 0, 1))])
    clock.now = to_us(T0) + 60 * S
    [(p, entries)] = svc.due(clock.now, [0])
    await svc.on_due([(p, entries * 3)])
    assert [a["case_id"] for a in box.records("elevate-to-l2")] == ["A"]


async def test_a_rebuild_indexes_owned_rows_only_and_resolved_cases_for_their_purge() -> None:
    svc, store, _, _ = service(to_us(T0))
    await svc.on_inputs(
        [
            inbound(opened("OPEN", 0, 1), 0),
            inbound(opened("DONE", 0, 1), 0),
            inbound(resolved("DONE", 0.5), 0),
            inbound(opened("OTHER", 0, 1), 1),
        ]
    )
    expected = {c: at for c, at in svc.indexes[0].items()}
    svc.begin_rebuild([0])
    assert (
        sum(svc.index_row(k, row) for (_, k), row in store.rows.items()) == 2
    )  # partition 1 skipped
    svc.finish_rebuild()
    assert dict(svc.indexes[0].items()) == expected
    assert expected["DONE"] == to_us(T0) + svc.cfg.retention_us  # its purge, not an alert
    assert sample(svc, "caseclock_open_cases", {"priority": "1", "plan": "support-plus"}) == 1


async def test_a_retried_dispatch_carries_the_original_deadline() -> None:
    """A tick lost on its way is re-dispatched `retry_us` later; the retry must be evaluated
    as of the deadline it stands for, or a lost tick would turn a warning into catch-up."""
    svc, _, box, clock = service(to_us(T0))
    await svc.on_inputs([inbound(opened("A", 0, 1))])
    for p, entries in svc.due(clock.now, [0]):
        await svc.on_due([(p, entries)])  # the elevation; the ack warning is next (45 min)
    clock.now = to_us(T0) + 2 * H
    [(_, first)] = svc.due(clock.now, [0])  # dispatched... and lost
    clock.now += svc.retry_us
    [(p, retried)] = svc.due(clock.now, [0])
    assert retried == first == [("A", to_us(T0) + round(0.75 * H))]
    await svc.on_due([(p, retried)])
    assert [(a["stage"], a["catch_up"]) for a in box.records("ack-due")] == [("warning", False)]


async def test_a_failed_evaluation_leaves_the_gauges_as_they_were() -> None:
    svc, _, _, clock = service(to_us(T0))
    await svc.on_inputs([inbound(opened("A", 0, 1))])
    labels = {"priority": "1", "plan": "support-plus"}
    assert sample(svc, "caseclock_open_cases", labels) == 1

    def broken(state: object, now: int, fired_at: int | None = None) -> list[object]:
        raise RuntimeError("boom")

    svc.engine.evaluate = broken  # type: ignore[method-assign,assignment]
    await svc.on_due(svc.due(clock.now, [0]))
    assert sample(svc, "caseclock_open_cases", labels) == 1


async def _serving_a_p1_case(
    box: FakeOutbox | None = None,
) -> tuple[CaseService, FakeOutbox, FakeClock]:
    """A service serving partition 0 with one P1 case open, its elevation sent."""
    svc, _, box, clock = service(to_us(T0), outbox=box)
    await svc.on_inputs([inbound(opened("A", 0, 1))])
    assert not await svc.on_due(svc.due(clock.now, [0]))
    return svc, box, clock


async def test_alerts_held_through_a_broker_outage_make_what_follows_catch_up() -> None:
    """The broker goes down as the P1's elevation (due at opening) is sent: it waits in the
    producer through a 2-hour outage, the group survives (no rebalance, no rebuild). The
    elevation went out (late). When the broker is back the ack warning (45 min) and breach
    (1 h) are both past: the outage is downtime, not a timer that fell behind, so only the
    breach goes out, as catch-up (not the warning and then the breach)."""
    clocks: list[FakeClock] = []

    def outage(channel: str, key: bytes | None, value: bytes) -> None:
        if channel == "elevate-to-l2":
            clocks[0].now += 2 * H  # acknowledged only once the broker is back

    svc, _, box, clock = service(to_us(T0), outbox=FakeOutbox(on_ack=outage))
    clocks.append(clock)
    await svc.on_inputs([inbound(opened("A", 0, 1))])
    assert await svc.on_due(svc.due(clock.now, [0]))  # cut off
    # The adapter serves the partition again once its input is read; then the clock's due.
    assert not await svc.on_due(svc.due(clock.now, [0]))
    assert len(box.records("elevate-to-l2")) == 1
    assert [(a["stage"], a["catch_up"]) for a in box.records("ack-due")] == [("breach", True)]


async def test_acknowledgements_within_the_retry_delay_are_no_outage() -> None:
    slow: list[FakeClock] = []

    def busy(channel: str, key: bytes | None, value: bytes) -> None:
        slow[0].now += S  # a busy broker: a second per acknowledgement, under the 5 s delay

    svc, _, clock = await _serving_a_p1_case(FakeOutbox(on_ack=busy))
    slow.append(clock)
    clock.now = to_us(T0) + 2 * H  # warning and breach both due: a timer that fell behind
    assert not await svc.on_due(svc.due(clock.now, [0]))
    assert not svc.cut_off(clock.now, clock.now - 4 * S)
    assert svc.cut_off(clock.now, clock.now - 5 * S)


# --- restarts from a snapshot taken while the worker ran -------------------------------------


async def test_a_duplicate_schedules_its_case_by_the_row_the_index_lacked() -> None:
    """After a kill, a row can be in RocksDB and not in the snapshot the index came from (nor
    in the changelog): the input that wrote it, read again, is a duplicate, and must still
    put the case back in the index."""
    svc, _, _, _ = service(to_us(T0))
    opening = inbound(opened("A", 0, 1))
    await svc.on_inputs([opening])
    due = svc.indexes[0].due_of("A")
    svc.indexes[0].remove("A")  # the snapshot's index, taken before the case was opened
    await svc.on_inputs([opening])
    assert svc.indexes[0].due_of("A") == due
    assert sample(svc, "caseclock_events_duplicate_total", {"type": "case-opened"}) == 1


async def test_a_due_case_without_a_row_leaves_the_index() -> None:
    svc, store, _, clock = service(to_us(T0))
    await svc.on_inputs([inbound(opened("A", 0, 1))])
    store.rows.clear()  # deleted meanwhile: the index still names it
    await svc.on_due(svc.due(clock.now, [0]))
    assert svc.indexes[0].due_of("A") is None


async def test_reindexing_a_restored_case_replaces_or_removes_its_deadline() -> None:
    svc, store, _, _ = service(to_us(T0))
    await svc.on_inputs([inbound(opened("A", 0, 1)), inbound(opened("B", 0, 1))])
    due = svc.indexes[0].due_of("A")
    svc.indexes[0].schedule("A", 1)  # what an older snapshot held
    svc.reindex(0, b"A", store.get(0, b"A"))
    svc.reindex(0, b"B", None)  # deleted since the snapshot
    assert svc.indexes[0].due_of("A") == due
    assert svc.indexes[0].due_of("B") is None


async def test_a_recount_ends_at_what_the_rows_hold_whatever_changes_meanwhile() -> None:
    """The recount reads a point-in-time view of the rows while the handlers go on: a case
    changed before its row is read and one changed after it both end counted once, as
    they are now."""
    svc, store, _, _ = service(to_us(T0))
    svc.begin_rebuild([0])
    svc.finish_rebuild()
    await svc.on_inputs([inbound(opened(c, 0, 1)) for c in ("A", "B", "C")])
    p1 = {"priority": "1", "plan": "support-plus"}
    p2 = {"priority": "2", "plan": "support-plus"}
    svc.open_counts[0][("1", "support-plus")] = 40  # a snapshot's counts, off by now
    view = [(key, row) for (_, key), row in store.rows.items()]  # the view the recount reads
    svc.begin_recount(0)
    await svc.on_inputs([inbound(resolved("A", 0.1))])  # before its row is read
    assert svc.recount_row(0, *view[0]) == 1
    svc.recount_row(0, *view[1])
    await svc.on_inputs([inbound(reprioritised("B", 0.2, 2))])  # after
    svc.recount_row(0, *view[2])
    assert sample(svc, "caseclock_open_cases", p1) == 38  # the snapshot's, changed since
    svc.finish_recount(0)
    assert sample(svc, "caseclock_open_cases", p1) == 1  # C
    assert sample(svc, "caseclock_open_cases", p2) == 1  # B
    svc.begin_recount(0)
    svc.forget_partitions()  # revoked meanwhile: the recount is dropped
    svc.finish_recount(0)
    assert svc.open_counts == {}
