"""The sandbox's trusted supervisor: runs the stages, never imports the code under test.

It reads the job (``job.json``), starts worker processes for the baseline and the code under
test, and streams events as JSON lines on a private copy of its stdout, which no worker holds
(workers get their own pipes; this process is non-dumpable, so /proc/<pid>/fd is closed to
them, and as PID 1 of its namespace it ignores their signals). Stages, always in this order:
tests, equivalence, timing, profile; a stage that cannot run is reported as skipped.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
import traceback

from . import values
from .procs import OutputLog, Stop, WorkerProcess, kill_all, stray_processes
from .timing import measure

MAX_MISMATCHES = 5
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4


class Supervisor:
    def __init__(self, job: dict, events_fd: int) -> None:
        self.job = job
        self.events_fd = events_fd
        self.mode = job["mode"]
        self.subject = "baseline" if self.mode == "baseline" else "candidate"
        self.deadline = time.monotonic() + float(job["deadline_s"])
        self.output = OutputLog(int(job["limits"]["max_output_bytes"]))
        self.workers: set[WorkerProcess] = set()
        self.correct = True
        self.emitted: list[str] = []

    # -- events ---------------------------------------------------------------------------------

    def emit(self, event: dict) -> None:
        data = (json.dumps(event, separators=(",", ":"), allow_nan=True) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self.events_fd, view) :]

    def stage(self, name: str, data: dict | None = None, skipped: str | None = None) -> None:
        self.emitted.append(name)
        event = {"event": "stage", "stage": name, "data": data or {}}
        if skipped:
            event["skipped"] = skipped
        self.emit(event)

    # -- workers --------------------------------------------------------------------------------

    def spawn(self, role: str, quiet: bool = False) -> WorkerProcess:
        paths = self.job["paths"]
        config = {
            "role": role,
            "code_dir": paths[role],
            "workload_path": paths["workload"],
            "entry": self.job["entry"],
            **{
                key: self.job.get(key)
                for key in ("module", "module_file", "project_dir", "environment_dir")
            },
        }
        worker = WorkerProcess(role, config, self.job, self.output, quiet)
        self.workers.add(worker)
        return worker

    def retire(self, worker: WorkerProcess) -> None:
        worker.close(self.deadline)
        self.workers.discard(worker)

    def ask(self, worker: WorkerProcess, message: dict, what: str) -> dict:
        reply = worker.request(message, self.deadline, what)
        self.check_processes(worker, what)
        return reply

    def check_processes(self, worker: WorkerProcess, what: str) -> None:
        threads = worker.native_threads()
        if worker.threads and threads > worker.threads:
            raise Stop(
                "tampered",
                f"{what}: left {threads - worker.threads} thread(s) running after returning",
                worker.role,
            )
        if self.job.get("pid_namespace"):
            strays = stray_processes({w.pid for w in self.workers})
            if strays:
                kill_all(strays)
                raise Stop(
                    "tampered",
                    f"{what}: left {len(strays)} process(es) running after "
                    "returning (daemonized or forked)",
                    worker.role,
                )

    def load(
        self, role: str, quiet: bool = False, preload: tuple[str, ...] = ()
    ) -> tuple[WorkerProcess, dict]:
        """A fresh worker with the code imported. ``quiet``: its output goes to /dev/null
        (timing and profiling repeat the calls thousands of times; the tests and the
        equivalence stage, which run first, already capped and showed what it prints).
        ``preload``: the harness's own modules that the command will need, imported before
        the project's environment comes first on ``sys.path``."""
        worker = self.spawn(role, quiet)
        message = {"cmd": "load", "preload": list(preload)}
        reply = worker.request(message, self.deadline, f"importing the {role}")
        worker.threads = worker.native_threads()
        self.check_processes(worker, f"importing the {role}")
        if "error" in reply:
            err = reply["error"]
            self.retire(worker)
            what = {
                "import": f"the {role} does not import",
                "entry": f"the {role} has no entry point",
                "workload": "the workload failed",
            }.get(err["stage"], err["stage"])
            status = "error" if role == "baseline" and self.mode == "compare" else "failed"
            if err["stage"] == "workload" or (role == "baseline" and self.job.get("module")):
                status = "error"  # the project itself (or the workload) is broken
            text = err.get("text") or f"{err['type']}: {err['message']}"
            raise Stop(status, f"{what}: {text}", role, stage=err["stage"])
        return worker, reply

    # -- stages ---------------------------------------------------------------------------------

    def run_tests(self) -> None:
        paths = [self.job["paths"]["tests"]] if self.job["paths"].get("tests") else []
        paths += self.job.get("project_tests") or []
        if not paths:
            empty = {"passed": 0, "failed": 0, "failures": [], "coverage": None}
            self.stage("tests", empty, skipped="no tests")
            return
        coverage = None
        if self.mode == "compare" and self.job.get("module"):
            # A project's tests run on the original first: they must pass there, and their
            # coverage of the target is measured on it.
            base = self.tests_of("baseline", paths)
            if base["failed"]:
                first = base["failures"][0]
                raise Stop(
                    "error",
                    f"the selected tests fail on the baseline ({base['failed']} failed; "
                    f"{first['name']}: {first['message'][:300]}); they must pass on the "
                    "original code",
                    "baseline",
                )
            coverage = base.get("coverage")
        reply = self.tests_of(self.subject, paths)
        if coverage is not None:
            reply["coverage"] = coverage
        if reply["failed"]:
            self.correct = False
        self.stage("tests", reply)

    def tests_of(self, role: str, paths: list[str]) -> dict:
        project = self.job.get("project_dir")
        rootdir = project if project and self.job.get("project_tests") else None
        worker, _ = self.load(role, preload=("pytest", "coverage"))
        message = {
            "cmd": "tests",
            "paths": paths,
            "rootdir": rootdir or os.path.dirname(paths[0]),
            "coverage": role == "baseline",
        }
        reply = self.ask(worker, message, f"the tests of the {role}")
        self.retire(worker)
        if "error" in reply:
            raise Stop("error", reply["error"]["message"])
        return reply

    def run_cases(self, role: str) -> tuple[dict, dict]:
        worker, loaded = self.load(role)
        reply = self.ask(
            worker,
            {"cmd": "run_cases", "trace_memory": True},
            f"running the workload on the {role}",
        )
        self.retire(worker)
        return loaded, reply

    def run_equivalence(self) -> None:
        base_load, base = self.run_cases("baseline")
        if base["memory_error"] and self.mode == "compare":
            raise Stop("error", "the baseline ran out of memory on the workload", "baseline")
        if self.mode == "baseline":
            data = {
                "equivalent": None,
                "mismatches": [],
                "mismatch_count": 0,
                "peak_memory_bytes": _peak(base),
                "baseline_peak_memory_bytes": _peak(base),
                "max_rss_bytes": base["max_rss"],
                "cases": len(base["results"]),
            }
            self.stage("equivalence", data)
            if base["memory_error"]:
                raise Stop(
                    "memory",
                    "ran out of memory on the workload "
                    f"(limit {self.job['limits']['memory_bytes']:,} bytes)",
                )
            return
        cand_load, cand = self.run_cases("candidate")
        if base_load["inputs"] != cand_load["inputs"]:
            raise Stop(
                "error",
                "workload cases() returned different calls in two processes; "
                "make it deterministic (seed any random generator)",
            )
        mismatches = []
        for i, (b, c) in enumerate(zip(base["results"], cand["results"], strict=True)):
            diff = values.difference(b["out"], c["out"])
            if diff:
                mismatches.append(
                    {
                        "case": i,
                        "reason": diff,
                        "expected": values.render(b["out"]),
                        "got": values.render(c["out"]),
                    }
                )
                continue
            diff = values.difference(b["args_after"], c["args_after"], "arguments")
            if diff:
                mismatches.append(
                    {
                        "case": i,
                        "reason": f"mutates its inputs differently: {diff}",
                        "expected": values.render(b["args_after"]),
                        "got": values.render(c["args_after"]),
                    }
                )
        data = {
            "equivalent": not mismatches,
            "mismatches": mismatches[:MAX_MISMATCHES],
            "mismatch_count": len(mismatches),
            "peak_memory_bytes": _peak(cand),
            "baseline_peak_memory_bytes": _peak(base),
            "max_rss_bytes": cand["max_rss"],
            "cases": len(base["results"]),
        }
        self.stage("equivalence", data)
        if cand["memory_error"]:
            raise Stop(
                "memory",
                "the candidate ran out of memory on the workload "
                f"(limit {self.job['limits']['memory_bytes']:,} bytes)",
                "candidate",
            )
        if mismatches:
            self.correct = False

    def run_timing(self) -> None:
        roles = ["baseline"] if self.mode == "baseline" else ["baseline", "candidate"]
        self.stage("timing", measure(self, roles, self.job["timing"]))

    def run_profile(self) -> None:
        worker, _ = self.load(self.subject, quiet=True, preload=("line_profiler",))
        min_s = float(self.job["timing"].get("profile_min_s", 0.0))
        reply = self.ask(
            worker, {"cmd": "profile", "min_s": min_s}, f"profiling the {self.subject}"
        )
        self.retire(worker)
        self.stage("profile", reply)

    # -- driver ---------------------------------------------------------------------------------

    def run(self) -> None:
        status, message, stages = "ok", None, ["tests", "equivalence", "timing", "profile"]
        error_stage = None
        try:
            for name in stages:
                if name == "timing" and not self.correct:
                    self.stage(name, skipped="the code under test is not correct")
                else:
                    getattr(self, "run_" + name)()
        except Stop as stop:
            status, message, error_stage = stop.status, stop.message, stop.stage
            if stop.role == "baseline" and self.mode == "compare":
                # The baseline's own trouble is the task's problem, not the candidate's.
                if status != "error":
                    message = f"the baseline failed ({status}), not the candidate: {message}"
                status = "error"
        except Exception:  # noqa: BLE001 - a harness bug must still produce a verdict
            status, message = "error", "sandbox harness error:\n" + traceback.format_exc()[-2000:]
        finally:
            for worker in list(self.workers):
                worker.kill()
                self.retire(worker)
            if self.job.get("pid_namespace"):
                kill_all(stray_processes(set()))
        if status == "ok" and not self.correct:
            status = "failed"
        for name in stages:
            if name not in self.emitted:
                self.stage(name, skipped=f"stopped: {status}")
        self.emit(
            {
                "event": "done",
                "status": status,
                "message": message,
                "error_stage": error_stage,
                "output": self.output.as_dict(),
            }
        )


def _peak(reply: dict) -> int | None:
    peaks = [r["peak"] for r in reply["results"] if r.get("peak") is not None]
    return max(peaks) if peaks else None


def _private_stdout() -> int:
    """Move the event channel off fd 1 so nothing printed by accident can corrupt it."""
    fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    return fd


def main(job_path: str) -> None:
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # closes /proc/<pid>/fd and ptrace to workers
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # die with the sandbox's parent
    except (OSError, AttributeError):
        pass
    events_fd = _private_stdout()
    with open(job_path) as f:
        job = json.load(f)
    Supervisor(job, events_fd).run()
    sys.stderr.flush()
