"""Fair timing under load: a process never runs more sandbox evaluations at once than it has
CPU cores, and each one runs pinned to its own core.

``core_lease()`` takes a free core from this process's affinity set (waiting while all are
taken) and pins the calling thread to it; the sandbox processes it starts inherit that
affinity (Linux gives a child its parent thread's CPU mask), so the harness, which pins the
two sides of every timing pair to a CPU of its affinity set, measures on that core alone and
two concurrent users never time on one core. The lease is process-wide, whatever ``Context``
asks. (The docker backend runs in the engine's cgroup and is not pinned this way.)
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_free: queue.Queue[int] | None = None
_lock = threading.Lock()


def cores() -> list[int]:
    """The CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _pool() -> queue.Queue[int]:
    global _free
    with _lock:
        if _free is None:
            _free = queue.Queue()
            for cpu in cores():
                _free.put(cpu)
        return _free


@contextmanager
def core_lease() -> Iterator[int]:
    """``with core_lease() as cpu:`` — this thread (and what it starts) runs on ``cpu`` only."""
    free = _pool()
    cpu = free.get()
    pinned = hasattr(os, "sched_setaffinity")
    before = os.sched_getaffinity(0) if pinned else None
    try:
        if pinned:
            os.sched_setaffinity(0, {cpu})
        yield cpu
    finally:
        if pinned and before is not None:
            os.sched_setaffinity(0, before)
        free.put(cpu)
