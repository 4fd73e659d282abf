"""The CPUs a process may use without being throttled.

Timing pins the measured pair to one CPU and prepares the next round, runs the tests and the
profile on the others (``timing.py``). That is only free of cross-talk while those others are
really there: a cgroup CPU quota smaller than the affinity mask (``docker --cpus=1`` on a
2-core host, a Kubernetes CPU limit) lets the spare-CPU work spend the timing CPU's share, and
the kernel then freezes the timed call mid-way until the next period (CFS bandwidth
throttling; seen as ``nr_throttled`` in 20 of 27 periods of a Docker sandbox with one CPU of
quota). :func:`usable_cpus` is the affinity mask cut to the whole CPUs of the quota, and the
one place both the host (which gives a sandbox its CPUs) and the supervisor (which shares them
out) read it.

The quota is the smallest one on the way from this process's cgroup up to the root of the
mounted hierarchy: cgroup v2 ``cpu.max`` (``"max 100000"`` or ``"<quota> <period>"``), cgroup v1
``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota ``-1`` is none). Where no hierarchy is
visible (inside bwrap, which mounts no ``/sys``), the affinity mask alone counts; the host cuts
it before it starts the sandbox.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

PROC_CGROUP = "/proc/self/cgroup"
PROC_MOUNTINFO = "/proc/self/mountinfo"


def affinity() -> list[int]:
    """This thread's CPUs, sorted (none where the platform has no affinity call)."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def usable_cpus(proc_cgroup: str = PROC_CGROUP, mountinfo: str = PROC_MOUNTINFO) -> list[int]:
    """The affinity mask, cut to ``floor(quota / period)`` CPUs (at least one) when a cgroup
    quota allows fewer CPUs than the mask holds (empty where the platform has no affinity)."""
    cpus = affinity()
    quota = cpu_quota(proc_cgroup, mountinfo)
    if quota is not None:
        cpus = cpus[: max(1, math.floor(quota + 1e-9))]
    return cpus


def cpu_quota(proc_cgroup: str = PROC_CGROUP, mountinfo: str = PROC_MOUNTINFO) -> float | None:
    """CPUs' worth of time per period this process's cgroups allow (None: no quota seen)."""
    found = [
        quota
        for directory, v2 in _cpu_cgroups(proc_cgroup, mountinfo)
        if (quota := _read_quota(directory, v2)) is not None
    ]
    return min(found) if found else None


def throttled_s(proc_cgroup: str = PROC_CGROUP, mountinfo: str = PROC_MOUNTINFO) -> float | None:
    """Seconds the CPU quota has held this process's cgroups back so far, summed over the
    cgroup and its parents (``cpu.stat``: v1 ``throttled_time`` in ns, v2 ``throttled_usec``);
    None where no hierarchy is visible. Read before and after timing: any growth means the
    timed calls may have been frozen mid-way."""
    total, seen = 0.0, False
    for directory, v2 in _cpu_cgroups(proc_cgroup, mountinfo):
        try:
            stat = dict(
                line.split(maxsplit=1) for line in (directory / "cpu.stat").read_text().splitlines()
            )
            total += int(stat["throttled_usec"]) / 1e6 if v2 else int(stat["throttled_time"]) / 1e9
            seen = True
        except (OSError, KeyError, ValueError):
            continue
    return total if seen else None


def _cpu_cgroups(proc_cgroup: str, mountinfo: str) -> list[tuple[Path, bool]]:
    """(directory, is cgroup v2) of this process's CPU cgroups and their parents."""
    try:
        groups = Path(proc_cgroup).read_text().splitlines()
        mounts = Path(mountinfo).read_text().splitlines()
    except OSError:
        return []
    out: list[tuple[Path, bool]] = []
    for line in groups:
        hier, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        v2 = hier == "0" and controllers == ""
        if not v2 and "cpu" not in controllers.split(","):
            continue
        out.extend((directory, v2) for directory in _directories(mounts, path, v2))
    return out


def _directories(mounts: list[str], path: str, v2: bool):  # noqa: ANN202 - a generator
    """The cgroup's own directory, then each parent up to its hierarchy's mount point."""
    for line in mounts:
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        fstype, options = tail[0], tail[2].split(",")
        if v2 and fstype != "cgroup2":
            continue
        if not v2 and (fstype != "cgroup" or "cpu" not in options):
            continue
        root, point = fields[3], fields[4]
        if root != "/" and path != root and not path.startswith(root.rstrip("/") + "/"):
            continue
        rel = path[len(root) :] if root != "/" else path
        top = Path(point)
        here = top / rel.lstrip("/")
        while True:
            yield here
            if here == top or top not in here.parents:
                return
            here = here.parent


def _read_quota(directory: Path, v2: bool) -> float | None:
    try:
        if v2:
            quota, _, period = (directory / "cpu.max").read_text().strip().partition(" ")
            if quota == "max":
                return None
            return int(quota) / int(period)
        quota_us = int((directory / "cpu.cfs_quota_us").read_text())
        period_us = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError, ZeroDivisionError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None
