"""Overhead: the fixed cost of one bwrap sandbox (start, interpreter + harness import, teardown),
the cost of one worker process, and the whole evaluation of a ~1 ms-per-call workload with the
default settings (tests + equivalence + timing + profile).

Run: ``.venv/bin/python bench/sandbox_overhead.py``
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandbox_common import WORKLOAD_1MS, load, loop_task, median

import sandbox
from sandbox.backends.bwrap import BwrapBackend
from sandbox.engine import build_job, stage_task
from sandbox.task import Limits, parse_task

IMPORT_HARNESS = (
    "import sys; sys.path.insert(0, '/opt/perfloop'); "
    "import perfloop_harness.supervisor, perfloop_harness.worker"
)


def timed(argv: list[str], runs: int = 20, **kwargs: object) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, **kwargs)
        times.append(time.perf_counter() - start)
    return median(times)


def main() -> None:
    print(f"overhead on bwrap; {load()}")
    backend = BwrapBackend()
    limits = Limits()
    task = parse_task(loop_task(2, 1))
    with tempfile.TemporaryDirectory() as tmp:
        task_dir = stage_task(task, Path(tmp))
        (task_dir / "job.json").write_text(str(build_job(task, limits, backend, task_dir)))
        command = backend.command(task_dir, limits)
        cut = len(command) - len(backend.layout(task_dir).supervisor_argv())
        wrapper, python = command[:cut], sys.executable
        bare = timed([python, "-I", "-c", "pass"])
        bare_harness = timed(
            [
                python,
                "-I",
                "-c",
                IMPORT_HARNESS.replace("/opt/perfloop", str(Path(sandbox.__file__).parent)).replace(
                    "perfloop_harness", "harness"
                ),
            ]
        )
        boxed = timed([*wrapper, python, "-I", "-B", "-c", "pass"])
        boxed_harness = timed([*wrapper, python, "-I", "-B", "-c", IMPORT_HARNESS])
    print(f"python start+exit, no sandbox:               {bare * 1e3:6.1f} ms")
    print(
        f"python start+exit inside bwrap:              {boxed * 1e3:6.1f} ms "
        f"(bwrap itself: {(boxed - bare) * 1e3:.1f} ms)"
    )
    print(
        f"python + harness import inside bwrap (the fixed cost of one sandbox): "
        f"{boxed_harness * 1e3:.1f} ms (same without bwrap: {bare_harness * 1e3:.1f} ms)"
    )

    trivial = {
        "baseline": "def f(n):\n    return n\n",
        "entry": "f",
        "mode": "baseline",
        "workload": "def cases():\n    return [(1,)]\n",
        "timing": {
            "budget_s": 0,
            "min_rounds": 2,
            "max_rounds": 2,
            "pairs_per_round": 1,
            "min_sample_s": 0.001,
        },
    }
    durations = [sandbox.evaluate(trivial, backend="bwrap")["duration_s"] for _ in range(5)]
    print(
        f"smallest whole evaluation (1 trivial call; 4 worker processes): "
        f"{median(durations) * 1e3:.0f} ms"
    )

    tests = "from target import f\n\ndef test_f():\n    assert f(10) == 24\n"
    for label, extra in (("compare", {}), ("baseline mode", {"mode": "baseline"})):
        task_dict = loop_task(2, 1, WORKLOAD_1MS, tests=tests, **extra)
        if extra:
            task_dict.pop("candidate")
        stages: list[tuple[str, float]] = []

        def note(stage: str, info: dict, stages: list = stages) -> None:
            stages.append((stage, time.perf_counter()))

        start = time.perf_counter()
        v = sandbox.evaluate(task_dict, backend="bwrap", progress=note)
        marks = ", ".join(f"{s} {t - start:.2f}s" for s, t in stages)
        print(
            f"1 ms/call workload, {label}: {v['duration_s']:.2f} s total "
            f"(baseline {v['baseline']['per_call_s'] * 1e3:.2f} ms/call, status {v['status']}, "
            f"{v['baseline']['samples']} samples per side) — stages at: {marks}"
        )
    print(load())


if __name__ == "__main__":
    main()
