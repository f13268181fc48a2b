"""`caseclock worker`: check the topics, then run the Faust worker."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from caseclock.core.policy import PolicyError, load_policy
from caseclock.live.config import Config, ConfigError, kafka_security

log = logging.getLogger("caseclock")


class TopicError(RuntimeError):
    pass


async def ensure_topics(cfg: Config) -> None:
    """Create missing topics and refuse to start on a partition-count mismatch.

    Co-partitioning is what makes a case's events and table row meet in one worker:
    an input topic with another partition count would silently split a case's facts, so the
    worker stops with a clear message instead (Faust would only notice for its own topics).
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap_servers, **kafka_security(cfg))
    await admin.start()
    try:
        meta = await admin.describe_topics()
        have = {t["topic"]: len(t["partitions"]) for t in meta if not t.get("error_code")}
        copartitioned = list(cfg.input_topics)
        outputs = [*cfg.alert_topics.values(), cfg.dead_letter_topic]
        wrong = {t: have[t] for t in copartitioned if t in have and have[t] != cfg.partitions}
        if wrong:
            raise TopicError(
                f"CASECLOCK_PARTITIONS={cfg.partitions} but "
                + ", ".join(f"{t} has {n}" for t, n in sorted(wrong.items()))
                + ": the input topics must all have that partition count"
            )
        missing = [t for t in dict.fromkeys(copartitioned + outputs) if t not in have]
        if missing and not cfg.create_topics:
            raise TopicError(
                f"missing topics: {', '.join(missing)} (CASECLOCK_CREATE_TOPICS=false)"
            )
        if missing:
            await admin.create_topics(
                [NewTopic(t, cfg.partitions, cfg.replication_factor) for t in missing]
            )
            log.info("caseclock: created topics %s", ", ".join(missing))
    finally:
        await admin.close()


def run_worker(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    try:
        cfg = Config.from_env(env)
        policy = load_policy(cfg.policy_file)
    except (ConfigError, PolicyError) as e:
        print(f"caseclock worker: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=cfg.log_level.upper(), format="[%(asctime)s] %(levelname)s %(name)s: %(message)s"
    )
    log.info("caseclock: starting with %s", cfg.redacted())
    try:
        asyncio.run(ensure_topics(cfg))
    except TopicError as e:
        print(f"caseclock worker: {e}", file=sys.stderr)
        return 2
    Path(cfg.data_dir).mkdir(parents=True, exist_ok=True)
    from faust import Worker

    from caseclock.live.faust_app import RECOVERY_STUCK_EXIT, CaseClock
    from caseclock.live.logs import RepeatFilter

    repeats = RepeatFilter()

    class QuietWorker(Worker):
        """Faust's worker, with repeated warnings rate-limited on whatever handlers Faust
        sets up (it replaces the root logger's handlers when it starts)."""

        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            for handler in logger.handlers:
                handler.addFilter(repeats)

    from caseclock.live import failpoints

    if failpoints.armed():
        log.warning(
            "caseclock: failpoints armed (a test run, never production): %s", failpoints.armed()
        )
    svc = CaseClock(cfg, policy)
    worker = QuietWorker(svc.app, loglevel=cfg.log_level, quiet=True)
    try:
        worker.execute_from_commandline()  # exits the process when the worker stops
    except SystemExit as done:  # mode's worker ends with sys.exit(1) after a crash
        reason = worker.crash_reason or svc.app.crash_reason
        if done.code in (0, None) or reason is None or not store_failure(reason):
            raise
        # A data volume that is full or read-only when the worker (re)starts: Faust crashes
        # opening RocksDB. Status 75 (restart me), as when the store fails while running.
        print(f"caseclock worker: the local store cannot be written: {reason}", file=sys.stderr)
        return RECOVERY_STUCK_EXIT
    return 0


DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EIO, errno.EDQUOT})


def store_failure(exc: BaseException) -> bool:
    """Whether a crash came from the local store's disk: RocksDB's IO errors (rocksdict
    raises them as plain exceptions, "IO error: No space left on device: ..."), or the OS's
    for a full, read-only or failing volume."""
    for e in (exc, exc.__cause__, exc.__context__):
        if e is None:
            continue
        if str(e).startswith("IO error") or (isinstance(e, OSError) and e.errno in DISK_ERRNOS):
            return True
    return False
