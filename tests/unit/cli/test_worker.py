"""`caseclock worker`: a crash on a full or read-only data volume exits 75 (restart me)."""

from __future__ import annotations

import errno

from caseclock.cli.worker import store_failure


def test_disk_errors_are_store_failures_and_others_are_not() -> None:
    rocks = Exception("IO error: No space left on device: While appending to file: 000004.log")
    assert store_failure(rocks)
    assert store_failure(OSError(errno.ENOSPC, "No space left on device"))
    assert store_failure(OSError(errno.EROFS, "Read-only file system"))
    wrapped = RuntimeError("crashed")
    wrapped.__cause__ = rocks
    assert store_failure(wrapped)
    assert not store_failure(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    assert not store_failure(ValueError("a bug"))
