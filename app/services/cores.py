"""Fair timing under load: a machine never runs more sandbox evaluations at once than it has
CPU cores, and each one runs pinned to its own core(s).

``core_lease()`` takes a free core (waiting while all are taken), and with ``spare`` also the
cores free at that moment, and pins the calling thread to them; the sandbox processes it
starts inherit that affinity (Linux gives a child its parent thread's CPU mask), so the
harness, which pins both sides of every timing pair to one CPU of its affinity set, measures on
that core alone and runs its other work on the rest. A core is taken with an exclusive
``flock`` on a per-core file under the temp directory, so the lease holds across every
perfloop process on the machine (the app's pool and any number of ``python -m app worker``),
not only across the threads of one. (The docker backend runs in the engine's cgroup and is not
pinned this way.)
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Seconds between two looks for a free core while all are taken.
POLL_S = 0.02


def cores() -> list[int]:
    """The CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def lock_dir() -> Path:
    path = Path(tempfile.gettempdir()) / f"perfloop-cores-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _take(candidates: list[int]) -> tuple[int, int]:
    while True:
        for cpu in candidates:
            fd = _try_take(cpu)
            if fd is not None:
                return cpu, fd
        time.sleep(POLL_S)


def _try_take(cpu: int) -> int | None:
    fd = os.open(lock_dir() / f"cpu{cpu}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@contextmanager
def core_lease(spare: int = 0) -> Iterator[int]:
    """``with core_lease() as cpu:`` — this thread (and what it starts) runs on ``cpu`` only,
    and no other perfloop evaluation on this machine uses ``cpu`` meanwhile.

    ``spare=N``: also up to N more cores that are free *now* (never waited for), leased the
    same way. The sandbox times on one core of its set and runs everything else (the tests
    beside the timing, the next round's processes) on the others, so an evaluation with a
    spare core is about twice as fast; under load each gets one core, as before."""
    before = set(cores())
    cpu, fd = _take(sorted(before))
    fds = [fd]
    mine = {cpu}
    for other in sorted(before - {cpu}):
        if len(mine) > spare:
            break
        extra = _try_take(other)
        if extra is not None:
            fds.append(extra)
            mine.add(other)
    pinned = hasattr(os, "sched_setaffinity")
    try:
        if pinned:
            os.sched_setaffinity(0, mine)
        yield cpu
    finally:
        try:
            if pinned:
                os.sched_setaffinity(0, before)
        finally:
            for held in fds:
                fcntl.flock(held, fcntl.LOCK_UN)
                os.close(held)
