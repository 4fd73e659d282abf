"""Fair timing under load: at most one sandbox evaluation per core at once, each pinned to its
own core, and the processes it starts (the sandbox) inherit that core."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from app.services.cores import core_lease, cores


def test_a_lease_pins_the_thread_and_the_processes_it_starts():
    everything = set(cores())
    with core_lease() as cpu:
        assert os.sched_getaffinity(0) == {cpu}
        child = subprocess.run(
            [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert child.stdout.strip() == str([cpu])
    assert os.sched_getaffinity(0) == everything


HOLDER = """
import sys, time
from app.services.cores import core_lease
with core_lease() as cpu:
    print(cpu, flush=True)
    time.sleep(float(sys.argv[1]))
"""


def test_a_core_leased_by_another_process_is_not_handed_out():
    from tests.conftest import ROOT

    n = len(cores())
    holders = [
        subprocess.Popen(
            [sys.executable, "-c", HOLDER, "3"], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(n)
    ]
    try:
        held = {int(h.stdout.readline()) for h in holders}
        assert held == set(cores()), "each process got its own core"
        started = time.monotonic()
        with core_lease():  # every core is taken by the other processes: this one waits
            waited = time.monotonic() - started
        assert waited > 1.0
    finally:
        for h in holders:
            h.wait(30)
            h.stdout.close()


def test_never_more_evaluations_at_once_than_cores_and_never_two_on_one_core():
    n = len(cores())
    lock = threading.Lock()
    inside: set[int] = set()
    most = 0
    clashes = []

    def evaluation() -> None:
        nonlocal most
        with core_lease() as cpu:
            with lock:
                if cpu in inside:
                    clashes.append(cpu)
                inside.add(cpu)
                most = max(most, len(inside))
            time.sleep(0.05)
            with lock:
                inside.discard(cpu)

    threads = [threading.Thread(target=evaluation) for _ in range(3 * n + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert most == n and not clashes


def test_a_lease_with_a_spare_core_takes_a_free_one_and_never_waits_for_it():
    from tests.conftest import ROOT

    everything = set(cores())
    assert len(everything) >= 2
    with core_lease(spare=1) as cpu:  # nothing else holds a core: it gets two
        mine = os.sched_getaffinity(0)
        assert cpu in mine and len(mine) == 2
    assert os.sched_getaffinity(0) == everything
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, "3"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        held = int(holder.stdout.readline())
        started = time.monotonic()
        with core_lease(spare=1) as cpu:  # the other core is taken: it goes on with one
            assert time.monotonic() - started < 1.0
            assert held not in os.sched_getaffinity(0)
            assert cpu in os.sched_getaffinity(0)
    finally:
        holder.wait(30)
        holder.stdout.close()


def test_an_evaluation_through_the_services_leases_a_spare_core_and_the_configured_budget():
    """With a second core free the sandbox pipelines its rounds; the timing budget is the
    ``PERFLOOP_SANDBOX_TIMING_BUDGET_S`` setting (real bwrap sandbox)."""
    from app.config import Settings
    from app.services import Context
    from app.services.evaluation import run_sandbox

    settings = Settings(sandbox_timing_budget_s=2.5, database_url="sqlite://")
    ctx = Context.from_settings(settings)
    try:
        assert ctx.sandbox_timing == {"budget_s": 2.5}
        loop = "def f(n):\n    s = 0\n    for _ in range({k}):\n        for i in range(n):\n"
        loop += "            s += i % 7\n    return s // {k}\n"
        verdict = run_sandbox(
            ctx,
            baseline=loop.format(k=2),
            entry="f",
            workload="def cases():\n    return [(3000,)]\n",
            candidate=loop.format(k=2) + "\n",
            tests=None,
        )
    finally:
        ctx.close()
    assert verdict["status"] == "ok", verdict["message"]
    assert verdict["timing"]["pipelined"] is True  # a spare core was leased
    assert verdict["timing"]["budget_s"] == 2.5
    assert os.sched_getaffinity(0) == set(cores())  # the lease was given back
