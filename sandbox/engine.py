"""Runs one evaluation on a backend and turns the supervisor's events into the verdict dict.

The verdict (every key always present; ``None`` where it does not apply):

``status``
    ``ok`` | ``failed`` (tests or equivalence failed, or the code does not import / lacks the
    entry point) | ``timeout`` | ``memory`` | ``output_limit`` | ``crashed`` | ``tampered`` |
    ``error`` (the evaluation could not judge: broken baseline or workload, harness fault).
``message``
    what happened, for a person (``None`` when ``ok``).
``error_stage``
    where it went wrong (``None`` when ``ok``): ``parse`` | ``import`` | ``entry`` |
    ``workload`` | ``tests`` | ``equivalence`` | ``timing`` | ``profile`` | ``limits``
    (:class:`sandbox.verdict.ErrorStage`; typed as :class:`sandbox.verdict.Verdict`); ``entry``
    also when the target cannot be optimized (nested, lambda, C extension…).
``correct``
    tests all pass and outputs (and input mutations) equal the baseline's on every case.
``tests``
    ``{passed, failed, failures: [{name, message}], ran}``.
``coverage``
    ``{lines, covered, missing: [line numbers]}``: the statements of the target function's
    body that the selected tests execute, measured on the baseline (coverage.py); ``None``
    without tests, or in compare mode of a pasted module (the baseline's verdict has it).
``equivalent``, ``mismatches``, ``mismatch_count``
    first mismatches ``{case, reason, expected, got}`` (values shortened).
``speedup``, ``ci95``, ``verdict``
    baseline time / candidate time, its 95% CI ``[low, high]``, ``faster`` | ``slower`` |
    ``not significant``; all ``None`` unless correct in compare mode. Sequential timing (the
    default): ``ci95`` is the anytime-valid interval that justified the stop (see
    ``harness/stats.py``); fixed protocol (``timing.sequential: false``): the bootstrap CI.
``rounds``, ``stopped``, ``timing_s``
    rounds of fresh processes timed, why timing stopped (``settled`` | ``dominated``, several
    candidates: another is surely faster | ``budget`` | ``max_rounds``) and the seconds spent
    timing (this candidate's, when there are several).
``baseline``, ``candidate``
    timing summaries: ``statistic`` (median), ``clock`` (cpu | wall), ``per_call_s``,
    ``cpu_per_call_s``, ``wall_per_call_s``, ``spread_s``, ``samples``, ``processes``,
    ``calls_per_sample``.
``timing``
    ``{clock, rounds, stopped, duration_s, sequential, pipelined, cpus, throttled_s, budget_s,
    samples}``; ``samples`` holds the raw per-call times ``[cpu, wall]`` of each pair, round by
    round; ``cpus`` is how many CPUs the timing stage had (the timing CPU and the spare ones,
    within the cgroup's quota: harness/cpus.py), ``throttled_s`` the seconds the CPU quota
    froze the sandbox meanwhile: read by the harness inside Docker, by this process around
    the timing for bwrap and process (they share its cgroup); None where no cgroup is visible.
``line_profile``
    one entry per executed line of the entry function and of the functions of ``target`` it
    calls: ``{function, line, hits, time, time_s, share, source}`` (both times in seconds);
    ``share`` is relative to the
    entry function's total time. ``profile`` summarises per function.
``peak_memory_bytes``, ``baseline_peak_memory_bytes``
    the largest tracemalloc peak over the workload's calls.
``output``
    ``{stdout, stderr, bytes}``: the tails of what the code under test printed.
``stages``, ``mode``, ``backend``, ``duration_s``.
``candidates``
    only for a task with ``candidates: [...]``: one verdict as above per candidate, in order;
    the top level then holds the common parts (``status`` ``ok`` unless the baseline or the
    sandbox failed, ``baseline`` timing, ``timing``, ``backend``, ``duration_s``).

The speedup is recomputed here from the raw paired samples with the statistics module the
supervisor uses.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .backends.base import Backend, Mounts, SandboxRun, compile_harness, sandbox_env
from .harness.cpus import throttled_s
from .harness.stats import summarize
from .harness.timing import decide, ratios_by_round
from .task import Limits, Task

STAGES = ("start", "tests", "equivalence", "timing", "profile", "done")
Progress = Callable[[str, dict], None]


def module_file(task: Task) -> str:
    """Where a side's source is staged, relative to its directory: ``target.py``, or the
    module's path (``mypkg/stats.py``) so that tracebacks and profiles name it."""
    return task.module.replace(".", "/") + ".py" if task.module else "target.py"


def mounts_of(task: Task) -> Mounts:
    return Mounts(project=task.project, environment=task.environment)


def stage_task(task: Task, root: Path) -> Path:
    """Write the task's files to ``root/task`` (mounted read-only in the sandbox)."""
    task_dir = root / "task"
    # Same-length directory names for both sides (see harness/procs.py on alignment).
    sides = {"base": task.baseline}
    if task.candidates:
        sides.update(zip(candidate_dirs(task), task.candidates, strict=True))
    elif task.mode == "compare":
        sides["cand"] = task.candidate or ""
    for side, source in sides.items():
        path = task_dir / side / module_file(task)
        path.parent.mkdir(parents=True)
        path.write_text(source)
    (task_dir / "workload.py").write_text(task.workload)
    if task.tests:
        (task_dir / "test_target.py").write_text(task.tests)
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return task_dir


def candidate_dirs(task: Task) -> list[str]:
    """Directory names of several candidates: as long as "base" (see harness/procs.py)."""
    return [f"c{i:03d}" for i in range(len(task.candidates or ()))]


def build_job(task: Task, limits: Limits, backend: Backend, task_dir: Path) -> dict:
    layout = backend.layout(task_dir, mounts_of(task))
    inside = layout.task_dir
    paths = {"baseline": f"{inside}/base", "workload": f"{inside}/workload.py"}
    if task.candidates:
        paths["candidates"] = [f"{inside}/{name}" for name in candidate_dirs(task)]
    elif task.mode == "compare":
        paths["candidate"] = f"{inside}/cand"
    if task.tests:
        paths["tests"] = f"{inside}/test_target.py"
    project_tests = [f"{layout.project_dir}/{test}" for test in task.project_tests]
    return {
        "module": task.module,
        "module_file": module_file(task),
        "project_dir": layout.project_dir,
        "environment_dir": layout.environment_dir,
        "project_tests": project_tests,
        "mode": task.mode,
        "entry": task.entry,
        "limits": limits.as_dict(),
        "timing": task.timing.as_dict(),
        "deadline_s": max(0.5, limits.wall_s - 0.5),
        "paths": paths,
        "work_dir": layout.work_dir,
        "worker_env": sandbox_env(layout.work_dir),
        "pid_namespace": layout.pid_namespace,
    }


def evaluate_task(
    task: Task, backend: Backend, limits: Limits, progress: Progress | None = None
) -> dict:
    """Evaluate ``task`` on ``backend``; candidate misbehaviour is reported, never raised."""
    started = time.monotonic()
    notify = progress or (lambda stage, info: None)
    notify("start", {"backend": backend.name, "mode": task.mode})
    events: list[dict] = []
    reported: list[str] = ["start"]
    throttled: dict[str, float | None] = {}  # the host cgroup's, at the timing's start / end

    def on_event(event: dict) -> None:
        events.append(event)
        if event.get("event") == "timing" and backend.shares_host_cgroup:
            phase = event.get("phase")
            if phase == "end" or (phase == "start" and "start" not in throttled):
                throttled[str(phase)] = throttled_s()
        if event.get("event") == "stage" and event.get("stage") in STAGES:
            reported.append(event["stage"])
            info = _stage_info(event)
            if "candidate" in event:  # several candidates: whose stage this is
                info = {**info, "candidate": event["candidate"]}
            notify(event["stage"], info)

    compile_harness()
    with tempfile.TemporaryDirectory(prefix="perfloop-") as tmp:
        task_dir = stage_task(task, Path(tmp))
        (task_dir / "job.json").write_text(json.dumps(build_job(task, limits, backend, task_dir)))
        os.chmod(task_dir / "job.json", 0o644)
        run = backend.run(task_dir, limits, on_event, mounts_of(task))
    if task.candidates:
        verdict = assemble_many(task, events, run, limits)
    else:
        verdict = assemble_verdict(task, events, run, limits)
    if backend.shares_host_cgroup:
        _host_throttling(verdict, throttled)
    verdict["backend"] = backend.name
    verdict["duration_s"] = round(time.monotonic() - started, 3)
    for each in verdict.get("candidates") or []:
        each["backend"], each["duration_s"] = verdict["backend"], verdict["duration_s"]
    for stage in STAGES[1:-1]:
        if stage not in reported:
            notify(stage, {"skipped": f"stopped: {verdict['status']}"})
    notify("done", {"status": verdict["status"], "message": verdict["message"]})
    return verdict


def _host_throttling(verdict: dict, throttled: dict[str, float | None]) -> None:
    """``timing.throttled_s`` from the host's side: the seconds the CPU quota of the cgroup the
    sandbox shares with this process froze it between the timing's start and end (None where
    no cgroup is visible). Never the sandbox's own word (it sees no cgroup there)."""
    start, end = throttled.get("start"), throttled.get("end")
    value = None if start is None or end is None else round(max(0.0, end - start), 6)
    for each in [verdict, *(verdict.get("candidates") or [])]:
        if isinstance(each.get("timing"), dict):
            each["timing"]["throttled_s"] = value


def _stage_info(event: dict) -> dict:
    data = event.get("data") or {}
    if event.get("skipped"):
        return {"skipped": event["skipped"]}
    if event["stage"] == "timing":
        return {k: data.get(k) for k in ("clock", "rounds", "estimate", "stopped")}
    if event["stage"] == "profile":
        return {"functions": len(data.get("functions") or [])}
    return data


def empty_verdict(task: Task) -> dict:
    return {
        "status": "error",
        "message": None,
        "error_stage": None,
        "correct": False,
        "mode": task.mode,
        "tests": {"passed": 0, "failed": 0, "failures": [], "ran": False},
        "coverage": None,
        "equivalent": None,
        "mismatches": [],
        "mismatch_count": 0,
        "speedup": None,
        "ci95": None,
        "verdict": None,
        "rounds": None,
        "stopped": None,
        "timing_s": None,
        "baseline": None,
        "candidate": None,
        "timing": None,
        "line_profile": None,
        "profile": None,
        "peak_memory_bytes": None,
        "baseline_peak_memory_bytes": None,
        "stages": {},
        "output": {"stdout": "", "stderr": "", "bytes": 0},
        "backend": None,
        "duration_s": None,
    }


def assemble_verdict(
    task: Task,
    events: list[dict],
    run: SandboxRun,
    limits: Limits,
    index: int | None = None,
) -> dict:
    """The verdict from the supervisor's events; ``index``: that candidate's, of several."""
    v = empty_verdict(task)
    done = None
    for event in events:
        if event.get("event") == "done":
            done = event
            if index is not None and len(event.get("candidates") or []) > index:
                done = event["candidates"][index]
            continue
        if event.get("event") != "stage":
            continue
        if index is not None and event.get("candidate") != index:
            continue
        stage, data = event.get("stage"), event.get("data") or {}
        v["stages"][stage] = f"skipped: {event['skipped']}" if event.get("skipped") else "done"
        if event.get("skipped"):
            continue
        if stage == "tests":
            v["tests"] = {
                "passed": data.get("passed", 0),
                "failed": data.get("failed", 0),
                "failures": data.get("failures", []),
                "ran": True,
            }
            v["coverage"] = data.get("coverage")
        elif stage == "equivalence":
            for key in (
                "equivalent",
                "mismatches",
                "mismatch_count",
                "peak_memory_bytes",
                "baseline_peak_memory_bytes",
            ):
                v[key] = data.get(key, v[key])
        elif stage == "timing":
            _timing(v, task, data)
        elif stage == "profile":
            v["line_profile"], v["profile"] = _profile(data)
    if done is not None:
        v["status"], v["message"] = done["status"], done.get("message")
        v["error_stage"] = done.get("error_stage")
        v["output"] = done.get("output", v["output"])
    elif run.timed_out:
        v["status"] = "timeout"
        v["message"] = f"the evaluation exceeded the wall-clock limit of {limits.wall_s:g} s"
        v["error_stage"] = "limits"
    elif run.output_exceeded:
        v["status"] = "output_limit"
        v["message"] = "the sandbox produced more output than allowed"
        v["error_stage"] = "limits"
    else:
        v["status"] = "crashed"
        tail = run.stderr.strip()[-1500:]
        v["message"] = f"the sandbox stopped without a verdict (exit status {run.exit_code})" + (
            f":\n{tail}" if tail else ""
        )
    v["correct"] = v["status"] == "ok"
    if v["status"] == "ok":
        v["error_stage"] = None
    if not v["correct"] or task.mode != "compare":
        v["speedup"] = v["ci95"] = v["verdict"] = None
    return v


def assemble_many(task: Task, events: list[dict], run: SandboxRun, limits: Limits) -> dict:
    """Several candidates: the common parts at the top, one full verdict per candidate."""
    top = assemble_verdict(task, [e for e in events if "candidate" not in e], run, limits)
    done = next((e for e in events if e.get("event") == "done"), None)
    each = []
    for i in range(len(task.candidates or ())):
        if done is not None and done.get("status") == "ok" and done.get("candidates"):
            each.append(assemble_verdict(task, events, run, limits, index=i))
        else:  # the baseline or the sandbox failed: every candidate shares that verdict
            mine = [e for e in events if e.get("candidate") == i]
            own = assemble_verdict(task, mine, run, limits)
            for key in ("status", "message", "error_stage", "correct", "output"):
                own[key] = top[key]
            own["speedup"] = own["ci95"] = own["verdict"] = None
            each.append(own)
    base = next((c["baseline"] for c in each if c.get("baseline")), None)
    top["baseline"] = base
    timing = next((e["data"] for e in events if e.get("stage") == "timing" and e.get("data")), None)
    if timing is not None:
        top["timing"] = {
            "clock": timing.get("clock"),
            "rounds": timing.get("total_rounds"),
            "duration_s": timing.get("total_duration_s"),
            "sequential": timing.get("sequential"),
            "pipelined": timing.get("pipelined"),
            "cpus": timing.get("cpus"),
            "throttled_s": timing.get("throttled_s"),
            "budget_s": timing.get("budget_s"),
        }
        top["rounds"] = timing.get("total_rounds")
        top["timing_s"] = timing.get("total_duration_s")
    top["candidates"] = each
    return top


def _timing(v: dict, task: Task, data: dict) -> None:
    clock = data["clock"]
    index = 0 if clock == "cpu" else 1
    rounds = data["pairs"]
    roles = ["baseline", "candidate"] if task.mode == "compare" else ["baseline"]
    for role in roles:
        cpu = [p[role][0] for r in rounds for p in r]
        wall = [p[role][1] for r in rounds for p in r]
        main = cpu if index == 0 else wall
        v[role] = {
            "statistic": "median",
            "clock": clock,
            "unit": "seconds per call",
            "per_call_s": summarize(main)["median_s"],
            "cpu_per_call_s": summarize(cpu)["median_s"],
            "wall_per_call_s": summarize(wall)["median_s"],
            "spread_s": [summarize(main)["min_s"], summarize(main)["max_s"]],
            "samples": len(main),
            "processes": len(rounds),
            "calls_per_sample": data["calls_per_sample"][role],
        }
    v["timing"] = {
        k: data.get(k)
        for k in (
            "clock",
            "rounds",
            "stopped",
            "duration_s",
            "sequential",
            "pipelined",
            "cpus",
            "throttled_s",
            "budget_s",
        )
    }
    v["timing"]["samples"] = rounds
    v["rounds"], v["stopped"] = data.get("rounds"), data.get("stopped")
    v["timing_s"] = round(float(data.get("duration_s") or 0.0), 3)
    if task.mode == "compare":
        # Recomputed from the raw pairs (the supervisor's estimate is not taken on trust).
        est, final = decide(
            ratios_by_round(rounds, clock), task.timing.as_dict(), data.get("stopped"), seed=0
        )
        v["timing"]["final_look"] = final
        v["speedup"] = est.speedup
        v["ci95"] = list(est.ci95)
        v["verdict"] = est.verdict
        v["timing"]["pairs"] = est.pairs


def _profile(data: dict) -> tuple[list[dict] | None, dict]:
    """The flat per-line list (entry function first, then callees by time) and a summary."""
    if "error" in data:
        return None, {"error": data["error"], "functions": []}
    lines, functions = [], []
    for fn in data.get("functions", []):
        functions.append(
            {
                "function": fn["function"],
                "first_line": fn["first_line"],
                "total_s": fn["total_s"],
                "is_entry": fn["is_entry"],
            }
        )
        for line in fn["lines"]:
            # "time" (seconds) is the field name; "time_s" says the unit. Both stay.
            lines.append({"function": fn["function"], **line, "time": line["time_s"]})
    summary = {
        "functions": functions,
        "total_s": data.get("total_s"),
        "runs": data.get("runs"),
        "error": None,
    }
    return lines, summary
