"""The sandbox's trusted supervisor: runs the stages, never imports the code under test.

It reads the job (``job.json``), starts worker processes for the baseline and the code under
test, and streams events as JSON lines on a private copy of its stdout, which no worker holds
(workers get their own pipes; this process is non-dumpable, so /proc/<pid>/fd is closed to
them, and as PID 1 of its namespace it ignores their signals). Stages are reported in this
order: tests, equivalence, timing, profile (one candidate's tests may run beside its timing);
a stage that cannot run is reported as skipped.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import signal
import sys
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor

from . import values
from .cpus import usable_cpus
from .procs import OutputLog, Stop, WorkerProcess, kill_all, killed_by_signal, stray_processes
from .timing import Cancelled, measure

MAX_MISMATCHES = 5
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4


#: The stages of every side, reported in this order.
STAGES = ("tests", "equivalence", "timing", "profile")
#: Where an evaluation can go wrong (mirrored by ``sandbox.verdict.ErrorStage``).
LIMIT_STATUSES = ("timeout", "memory", "output_limit")


class Supervisor:
    """Runs the stages for the baseline and one or several candidates.

    Several candidates (``paths["candidates"]``): each has its own tests, equivalence, profile
    and outcome; one candidate's failure never ends the others' evaluation. The baseline's does.

    Both cores, no cross-talk: the timing CPU runs nothing but the timed processes; any other
    work may run at the same time on the other CPUs. One candidate with sequential timing
    (:meth:`_checks_beside_timing`): the baseline's workload and the candidate's equivalence run
    on the timing CPU (nothing is timed yet) while the candidate's tests start on the others;
    timing starts once the equivalence passes, beside the tests and then the profile, and is
    reported only if the tests pass (failing tests call it off). Several candidates
    (:meth:`_many_checks_beside_timing`): their equivalence first, one at a time; then the
    equivalent ones are timed together beside their tests and profiles, a candidate whose
    tests fail withdrawn at once; a process killed by a signal while several candidates' code
    runs is blamed on all of them. The fixed protocol, or one CPU
    (:meth:`_checks_then_timing`): the baseline's workload run beside the candidates' tests and
    equivalence, one candidate at a time; then timing, with a single candidate's profile beside
    it. Outside the timing at most one candidate's code runs at any moment, so a process
    killed by a signal meanwhile is blamed on that candidate (``tampered``). Stages reach the
    caller in the order of ``STAGES`` whatever order they finish in.
    """

    def __init__(self, job: dict, events_fd: int) -> None:
        self.job = job
        self.events_fd = events_fd
        self.mode = job["mode"]
        paths = job["paths"]
        if self.mode == "baseline":
            self.subjects = ["baseline"]
        elif "candidates" in paths:
            self.subjects = [f"candidate #{i + 1}" for i in range(len(paths["candidates"]))]
        else:
            self.subjects = ["candidate"]
        self.many = len(self.subjects) > 1
        self.code_dirs = {"baseline": paths["baseline"]}
        if self.many:
            self.code_dirs.update(zip(self.subjects, paths["candidates"], strict=True))
        elif self.mode == "compare":
            self.code_dirs["candidate"] = paths["candidate"]
        self.subject = self.subjects[0]
        self.deadline = time.monotonic() + float(job["deadline_s"])
        self.output = OutputLog(int(job["limits"]["max_output_bytes"]))
        self.workers: set[WorkerProcess] = set()
        self.correct = {role: True for role in self.subjects}
        self.outcome: dict[str, tuple[str, str | None, str | None]] = {}  # role -> status,…
        self.failed_stage: dict[str, str | None] = {}  # tests / equivalence, when not correct
        self.emitted: dict[str, list[str]] = {role: [] for role in self.subjects}
        self.emitted_in_order: dict[str, list[str]] = {role: [] for role in self.subjects}
        self.held: dict[str, dict[str, dict]] = {role: {} for role in self.subjects}
        self.stage_lock = threading.Lock()
        self.cancel_timing: threading.Event | None = None  # set: the timed code proved wrong
        # Candidates taken out of a timing under way: their tests failed (None), or the reason
        # (status, message) they are suspected of tampering with another's processes.
        self.withdrawn: dict[str, tuple[str, str] | None] = {}
        # Candidates timed beside their tests whose tests have passed (only these may stop
        # others as dominated: timing.dominated); None: every timed candidate was checked first.
        self.passed: set[str] | None = None
        self.lock = threading.RLock()  # spawning vs. looking for stray processes
        self.emit_lock = threading.Lock()  # one event line at a time
        self.closing: set[WorkerProcess] = set()
        self.base_cases: dict | None = None
        self.base_tests: dict | None = None  # a module task's tests on the original
        self.base_tests_lock = threading.Lock()
        self.cpus = usable_cpus()  # within the cgroup's CPU quota: see cpus.py
        self.pinned: list[int] | None = None  # CPUs of the current thread's workers
        self.local = threading.local()
        self.checking: str | None = None  # the candidate whose checks run beside the baseline

    # -- events ---------------------------------------------------------------------------------

    def emit(self, event: dict) -> None:
        data = (json.dumps(event, separators=(",", ":"), allow_nan=True) + "\n").encode()
        view = memoryview(data)
        with self.emit_lock:
            while view:
                view = view[os.write(self.events_fd, view) :]

    def stage(
        self, name: str, data: dict | None = None, skipped: str | None = None, role: str = ""
    ) -> None:
        """Report a side's stage. Stages may finish out of order (the tests run beside the
        timing): each is held until the ones before it (``STAGES``) have been reported."""
        role = role or self.subject
        event = {"event": "stage", "stage": name, "data": data or {}}
        if self.many:
            event["candidate"] = self.subjects.index(role)
        if skipped:
            event["skipped"] = skipped
        with self.stage_lock:
            self.emitted[role].append(name)
            held = self.held[role]
            held[name] = event
            while len(self.emitted_in_order[role]) < len(STAGES):
                nxt = STAGES[len(self.emitted_in_order[role])]
                if nxt not in held:
                    break
                self.emitted_in_order[role].append(nxt)
                self.emit(held.pop(nxt))

    # -- workers --------------------------------------------------------------------------------

    def spawn(self, role: str, quiet: bool = False) -> WorkerProcess:
        config = {
            "role": role,
            "code_dir": self.code_dirs[role],
            "workload_path": self.job["paths"]["workload"],
            "entry": self.job["entry"],
            **{
                key: self.job.get(key)
                for key in ("module", "module_file", "project_dir", "environment_dir")
            },
        }
        with self.lock:  # a process being spawned must not look like a stray to another thread
            worker = WorkerProcess(role, config, self.job, self.output.for_role(role), quiet)
            self.workers.add(worker)
        track = getattr(self.local, "track", None)  # timing's next round: killed if unneeded
        if track is not None:
            track.append(worker)
        cpus = getattr(self.local, "cpus", None)
        if cpus:
            try:
                os.sched_setaffinity(worker.pid, cpus)
            except OSError:
                pass
        return worker

    @property
    def time_limit(self) -> float:
        """The deadline of this thread's requests: the evaluation's, or sooner for one of
        several candidates (a candidate that hangs must not use up the others' time)."""
        own = getattr(self.local, "deadline", None)
        return self.deadline if own is None else min(own, self.deadline)

    def retire(self, worker: WorkerProcess) -> None:
        with self.lock:  # once only: another thread may be ending the evaluation meanwhile
            if worker in self.closing or worker not in self.workers:
                return
            self.closing.add(worker)
        worker.close(self.time_limit)
        with self.lock:
            self.workers.discard(worker)
            self.closing.discard(worker)

    def ask(
        self, worker: WorkerProcess, message: dict, what: str, deadline: float | None = None
    ) -> dict:
        limit = self.time_limit if deadline is None else min(deadline, self.time_limit)
        reply = worker.request(message, limit, what)
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
            with self.lock:
                live = {w.pid: w for w in self.workers}
                strays = stray_processes(set(live))
                if strays:
                    kill_all(strays)
            if strays:
                raise Stop(
                    "tampered",
                    f"{what}: left {len(strays)} process(es) running after "
                    "returning (daemonized or forked)",
                    self._owner(strays, live, worker),
                )

    def _owner(self, strays: list[int], live: dict, worker: WorkerProcess) -> str:
        """Whose stray processes these are: the worker whose session they are in, else (other
        stages running beside this one) a candidate's, never the baseline's on a guess."""
        for pid in strays:
            sid = _session_of(pid)
            if sid in live:
                return live[sid].role
        if worker.role == "baseline":
            others = {w.role for w in live.values() if w.role != "baseline"}
            if len(others) == 1:
                return others.pop()
        return worker.role

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
        reply = worker.request(message, self.time_limit, f"importing the {role}")
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
            stage = "parse" if err.get("type") == "SyntaxError" else err["stage"]
            raise Stop(status, f"{what}: {text}", role, stage)
        return worker, reply

    # -- stages ---------------------------------------------------------------------------------

    def run_tests(self, role: str) -> None:
        paths = [self.job["paths"]["tests"]] if self.job["paths"].get("tests") else []
        paths += self.job.get("project_tests") or []
        if not paths:
            empty = {"passed": 0, "failed": 0, "failures": [], "coverage": None}
            self.stage("tests", empty, "no tests", role=role)
            return
        coverage = None
        if self.mode == "compare" and self.job.get("module"):
            # A project's tests run on the original first (once for every candidate): they
            # must pass there, and their coverage of the target is measured on it.
            base = self.baseline_tests(paths)
            if base["failed"]:
                first = base["failures"][0]
                raise Stop(
                    "error",
                    f"the selected tests fail on the baseline ({base['failed']} failed; "
                    f"{first['name']}: {first['message'][:300]}); they must pass on the "
                    "original code",
                    "baseline",
                    "tests",
                )
            coverage = base.get("coverage")
        reply = self.tests_of(role, paths)
        if coverage is not None:
            reply["coverage"] = coverage
        if reply["failed"]:
            self.correct[role] = False
            self.local.failed_stage = "tests"
        self.stage("tests", reply, role=role)

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
            raise Stop("error", reply["error"]["message"], None, "tests")
        return reply

    def baseline_tests(self, paths: list[str]) -> dict:
        """The selected tests on the original module, run once however many candidates ask."""
        with self.base_tests_lock:
            if self.base_tests is None:
                self.base_tests = self.tests_of("baseline", paths)
            return self.base_tests

    def run_cases(self, role: str) -> tuple[dict, dict]:
        worker, loaded = self.load(role)
        reply = self.ask(
            worker,
            {"cmd": "run_cases", "trace_memory": True},
            f"running the workload on the {role}",
        )
        self.retire(worker)
        return loaded, reply

    def run_baseline_cases(self) -> None:
        self.base_cases = dict(zip(("load", "reply"), self.run_cases("baseline"), strict=True))
        if self.base_cases["reply"]["memory_error"] and self.mode == "compare":
            raise Stop(
                "error", "the baseline ran out of memory on the workload", "baseline", "limits"
            )

    def run_equivalence(self, role: str) -> None:
        assert self.base_cases is not None
        base_load, base = self.base_cases["load"], self.base_cases["reply"]
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
            self.stage("equivalence", data, role=role)
            if base["memory_error"]:
                raise Stop(
                    "memory",
                    "ran out of memory on the workload "
                    f"(limit {self.job['limits']['memory_bytes']:,} bytes)",
                    None,
                    "limits",
                )
            return
        cand_load, cand = self.run_cases(role)
        if base_load["inputs"] != cand_load["inputs"]:
            raise Stop(
                "error",
                "workload cases() returned different calls in two processes; "
                "make it deterministic (seed any random generator)",
                None,
                "workload",
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
        self.stage("equivalence", data, role=role)
        if cand["memory_error"]:
            raise Stop(
                "memory",
                f"the {role} ran out of memory on the workload "
                f"(limit {self.job['limits']['memory_bytes']:,} bytes)",
                role,
                "limits",
            )
        if mismatches:
            self.correct[role] = False
            if getattr(self.local, "failed_stage", None) is None:
                self.local.failed_stage = "equivalence"

    def run_timing(
        self, roles: list[str], cpus: list[int] | None, concurrent: bool = False
    ) -> None:
        self.emit_timing(roles, self.measure_timing(roles, cpus, concurrent))

    def measure_timing(
        self, roles: list[str], cpus: list[int] | None, concurrent: bool = False
    ) -> dict:
        """The timing stage's data (a candidate that failed while timed gets its outcome);
        raises :class:`Cancelled` when ``cancel_timing`` is set meanwhile. Emits ``timing``
        events (``phase`` start / end) at once, never held like the stages: the host reads its
        cgroup's throttling between them where the sandbox shares it (engine.py)."""
        self.emit({"event": "timing", "phase": "start"})
        try:
            data = measure(self, ["baseline", *roles], self.job["timing"], cpus)
        except Stop as stop:
            killed = killed_by_signal(stop.message)
            if concurrent and killed and stop.role in roles:
                # The candidate's own profile ran beside: nothing else could signal it.
                raise Stop(
                    "tampered",
                    f"{stop.message}; killed while the {stop.role}'s profile was running",
                    stop.role,
                    "timing",
                ) from None
            raise
        finally:
            self.emit({"event": "timing", "phase": "end"})
        for role, info in data.get("candidates", {}).items():
            if "failure" in info:
                failure = info["failure"]
                self.outcome[role] = (failure["status"], failure["message"], "timing")
        return data

    def emit_timing(self, roles: list[str], data: dict) -> None:
        if self.mode == "baseline":
            self.stage("timing", data)
            return
        for role in self.subjects:
            if role in roles:
                self.stage("timing", _timing_for(data, role), role=role)

    def run_profile(self, role: str) -> dict:
        worker, _ = self.load(role, quiet=True, preload=("line_profiler",))
        min_s = float(self.job["timing"].get("profile_min_s", 0.0))
        reply = self.ask(worker, {"cmd": "profile", "min_s": min_s}, f"profiling the {role}")
        self.retire(worker)
        return reply

    # -- driver ---------------------------------------------------------------------------------

    def _guard(self, role: str, stage: str, fn, *args):  # noqa: ANN001, ANN202
        """Run one candidate's stage; a Stop of that candidate becomes its outcome. The
        baseline's trouble (or a Stop naming no side) is the whole evaluation's: re-raised."""
        self.local.stage = stage
        try:
            return fn(*args)
        except Stop as stop:
            if stop.role in (None, "baseline", "candidates") and stop.role != role:
                raise
            if stop.role is not None and stop.role != role and stop.role in self.outcome:
                return None
            culprit = stop.role if stop.role in self.correct else role
            self.outcome[culprit] = (stop.status, stop.message, stop.stage or stage)
            self.correct[culprit] = False
            return None

    def _own_deadline(self, waves: int) -> None:
        """Several candidates: this thread's next stage gets a share of the time left (at
        least 20 s or half of it), so that one that hangs cannot starve the others."""
        if not self.many:
            self.local.deadline = None
            return
        left = self.deadline - time.monotonic()
        self.local.deadline = time.monotonic() + max(left * 0.5 / waves, min(left * 0.5, 20.0))

    def _checks(self, role: str, base: Future | None = None) -> None:
        """Tests, then equivalence (once the baseline's workload run, ``base``, is done)."""
        self.local.failed_stage = None
        self._own_deadline(len(self.subjects))
        if role in self.outcome:
            return
        self._guard(role, "tests", self.run_tests, role)
        if role not in self.outcome:
            if base is not None:
                base.result()
            self._own_deadline(len(self.subjects))
            self._guard(role, "equivalence", self.run_equivalence, role)
        self.failed_stage[role] = self.local.failed_stage

    def _stages_before_timing(self) -> None:
        roles = list(self.subjects)
        if len(self.cpus) < 2:
            self.local.stage = "equivalence"
            self.run_baseline_cases()
            for role in roles:
                self._checks(role)
            self.local.deadline = None
            return
        # Nothing is timed yet: the baseline's workload run on one CPU, beside the candidates'
        # checks, one candidate at a time (then any process killed by a signal meanwhile was
        # killed by that one candidate: same uid, it may signal the baseline's process).
        with ThreadPoolExecutor(max_workers=2) as pool:
            base = pool.submit(self._in_thread, "equivalence", self.run_baseline_cases)

            def checks() -> None:
                for role in roles:
                    self.checking = role
                    self._checks(role, base)
                self.checking = None

            others = pool.submit(checks)
            try:
                base.result()
            except Stop as stop:
                self._kill_workers(retire=False)  # the checks fail fast; they don't count
                others.exception()
                culprit = self.checking
                if stop.role == "baseline" and stop.status == "crashed" and culprit:
                    raise Stop(
                        "tampered",
                        f"{stop.message}; the baseline's process was killed while the "
                        f"{culprit}'s was running",
                        culprit,
                        "equivalence",
                    ) from None
                raise
            except BaseException:
                self._kill_workers(retire=False)
                others.exception()
                raise
            others.result()

    def _in_thread(self, stage: str, fn, *args):  # noqa: ANN001, ANN202
        self.local.stage = stage
        return fn(*args)

    def _profiles(self, roles: list[str], cpus: list[int] | None) -> dict[str, dict]:
        self.local.cpus = cpus
        out = {}
        for role in roles:
            if time.monotonic() > self.deadline - 0.5:
                break
            self._own_deadline(len(roles))
            reply = self._guard(role, "profile", self.run_profile, role)
            if reply is not None:
                out[role] = reply
        self.local.deadline = None
        return out

    def _checks_beside_timing(self) -> dict[str, dict]:
        """One candidate, sequential timing, two CPUs or more: the candidate's tests (then its
        profile) run on the other CPUs from the start, while this thread runs the baseline's
        workload and the candidate's equivalence on the timing CPU, then times them there.
        The timing is reported only once the tests have passed; tests that fail cancel it.
        Only the candidate's code runs beside the timing, so a process killed by a signal
        meanwhile is blamed on it. Returns the profiles."""
        role = self.subject
        timing_cpu = random.Random(self.job["timing"].get("seed")).choice(self.cpus)
        others = [c for c in self.cpus if c != timing_cpu]
        cancel = self.cancel_timing = threading.Event()
        tested, checked = threading.Event(), threading.Event()
        tests: dict = {}

        def tests_then_profile() -> dict[str, dict]:
            self.local.cpus = others
            self.local.failed_stage = None
            try:
                self._guard(role, "tests", self.run_tests, role)
            finally:
                tests["failed_stage"] = self.local.failed_stage
                tests["outcome"] = self.outcome.get(role)
                if role in self.outcome or not self.correct[role]:
                    cancel.set()
                tested.set()
            checked.wait()  # the profile comes after the equivalence stage, as it always did
            if role in self.outcome:
                return {}
            return self._profiles([role], others)

        with ThreadPoolExecutor(max_workers=1) as pool:
            beside = pool.submit(self._in_thread, "tests", tests_then_profile)
            data = None
            try:
                self.local.cpus = [timing_cpu]
                self.local.stage = "equivalence"
                try:
                    self.run_baseline_cases()
                except Stop as stop:
                    if stop.role == "baseline" and stop.status == "crashed":
                        raise Stop(
                            "tampered",
                            f"{stop.message}; the baseline's process was killed while the "
                            f"{role}'s was running",
                            role,
                            "equivalence",
                        ) from None
                    raise
                self.local.failed_stage = None
                try:
                    self._guard(role, "equivalence", self.run_equivalence, role)
                finally:
                    checked.set()
                self.local.cpus = None
                if self.correct[role] and role not in self.outcome and not cancel.is_set():
                    self.local.stage = "timing"
                    try:
                        data = self.measure_timing([role], [timing_cpu], concurrent=True)
                    except Cancelled:
                        data = None
                tested.wait()
            except BaseException:
                checked.set()
                self._kill_workers(retire=False)
                beside.exception()
                raise
            profiles = beside.result()
        if tests["outcome"] is not None:  # the tests' trouble comes first, as it always did
            self.outcome[role] = tests["outcome"]
        self.failed_stage[role] = tests["failed_stage"] or self.local.failed_stage
        if data is not None and self.correct[role] and role not in self.outcome:
            self.emit_timing([role], data)
        elif role not in self.outcome:
            self.stage("timing", skipped="the code under test is not correct", role=role)
        return {r: p for r, p in profiles.items() if r not in self.outcome}

    def _checks_then_timing(self) -> dict[str, dict]:
        """Checks first (the baseline's workload beside them), then timing (one candidate's
        profile beside it on the other CPUs), then the profiles. Returns the profiles."""
        self._stages_before_timing()
        timed = [r for r in self.subjects if self.correct[r] and r not in self.outcome]
        if self.mode == "baseline":
            timed = []
        for role in self.subjects:
            if role not in timed and self.mode == "compare":
                self.stage("timing", skipped="the code under test is not correct", role=role)
        profiled = [r for r in self.subjects if r not in self.outcome]
        profiles: dict[str, dict] = {}
        self.local.stage = "timing"
        beside = not self.many  # one candidate's code only: it alone could disturb it
        if (timed or self.mode == "baseline") and len(self.cpus) >= 2 and profiled and beside:
            # The timed processes on one CPU, the profile beside them on the others.
            timing_cpu = random.Random(self.job["timing"].get("seed")).choice(self.cpus)
            others = [c for c in self.cpus if c != timing_cpu]
            with ThreadPoolExecutor(max_workers=1) as pool:
                job = pool.submit(self._profiles, profiled, others)
                try:
                    self.run_timing(timed, [timing_cpu], concurrent=True)
                except BaseException:
                    self._kill_workers(retire=False)
                    job.exception()
                    raise
                profiles = job.result()
        else:
            if timed or self.mode == "baseline":
                self.run_timing(timed, None)
            self.local.stage = "profile"
            profiles = self._profiles(profiled, None)
        return profiles

    def _many_checks_beside_timing(self) -> dict[str, dict]:
        """Several candidates, sequential timing, two CPUs or more: first the baseline's workload
        and each candidate's equivalence, one at a time (nothing is timed yet); then every
        equivalent candidate is timed against the baseline on one CPU while their tests, then
        every profile, run one candidate at a time on the others. A timed candidate whose tests
        fail is withdrawn from the timing at once, and its timing is never reported. A process
        killed by a signal while several candidates' code runs is blamed on all of them (same
        uid: any of them could have sent it). Returns the profiles."""
        roles = list(self.subjects)
        timing_cpu = random.Random(self.job["timing"].get("seed")).choice(self.cpus)
        others = [c for c in self.cpus if c != timing_cpu]
        equivalence_failed: dict[str, str | None] = {}
        self.local.cpus = [timing_cpu]
        self.local.stage = "equivalence"
        self.run_baseline_cases()
        for role in roles:
            self.local.failed_stage = None
            self._own_deadline(len(roles))
            self._guard(role, "equivalence", self.run_equivalence, role)
            equivalence_failed[role] = self.local.failed_stage
        self.local.deadline = None
        self.local.cpus = None
        timed = [r for r in roles if self.correct[r] and r not in self.outcome]
        timing = threading.Event()
        tests_failed: dict[str, str | None] = {}
        self.passed = set()

        def tests_then_profiles() -> dict[str, dict]:
            self.local.cpus = others
            for role in roles:
                if role in self.outcome:  # its equivalence stage already ended it
                    continue
                self.checking = role
                self.local.failed_stage = None
                self._own_deadline(len(roles))
                self._guard(role, "tests", self.run_tests, role)
                tests_failed[role] = self.local.failed_stage
                status, message, _ = self.outcome.get(role, ("ok", "", None))
                if status == "crashed" and killed_by_signal(message) and timing.is_set():
                    note = (
                        f"{message}; killed while {', '.join(timed)} were being timed (one of "
                        "them may have sent the signal: evaluate them separately to find which)"
                    )
                    self.outcome[role] = ("tampered", note, "tests")
                    for other in timed:
                        self.withdrawn.setdefault(other, ("tampered", note))
                elif role in timed and (role in self.outcome or not self.correct[role]):
                    self.withdrawn.setdefault(role, None)
                elif role in timed:
                    self.passed.add(role)
            self.checking = None
            return self._profiles([r for r in roles if r not in self.outcome], others)

        data = None
        with ThreadPoolExecutor(max_workers=1) as pool:
            if timed:
                timing.set()
            beside = pool.submit(self._in_thread, "tests", tests_then_profiles)
            try:
                if timed:
                    self.local.stage = "timing"
                    try:
                        data = self.measure_timing(timed, [timing_cpu])
                    except Stop as stop:
                        if stop.role not in timed:  # the baseline's (or everyone's) trouble
                            raise
                        # The one candidate left to time failed: the others' verdicts stand.
                        self.outcome[stop.role] = (stop.status, stop.message, "timing")
            except BaseException:
                self._kill_workers(retire=False)
                beside.exception()
                raise
            finally:
                timing.clear()
            profiles = beside.result()
        for role in roles:
            self.failed_stage[role] = tests_failed.get(role) or equivalence_failed.get(role)
        for role, failure in self.withdrawn.items():
            if failure is not None:
                self.outcome.setdefault(role, (*failure, "timing"))
        reported = [
            r
            for r in timed
            if self.correct[r] and r not in self.outcome and r not in self.withdrawn
        ]
        if data is not None and reported:
            self.emit_timing(reported, data)
        for role in roles:
            if role not in reported and role not in self.outcome:
                self.stage("timing", skipped="the code under test is not correct", role=role)
        return {r: p for r, p in profiles.items() if r not in self.outcome}

    def suspect(self, role: str, note: str) -> None:
        """Timing: a timed process was killed by a signal while ``role``'s tests ran beside."""
        self.outcome.setdefault(role, ("tampered", note, "timing"))

    def _overlapped(self) -> str | None:
        """``one`` / ``many``: the tests run beside the timing (sequential timing, two CPUs or
        more); ``None``: checks first, then timing."""
        if self.mode != "compare" or len(self.cpus) < 2:
            return None
        if not self.job["timing"].get("sequential", True):
            return None
        return "many" if self.many else "one"

    def run(self) -> None:
        status, message, error_stage = "ok", None, None
        self.local.stage = "tests"
        try:
            overlapped = self._overlapped()
            if overlapped == "one":
                profiles = self._checks_beside_timing()
            elif overlapped == "many":
                profiles = self._many_checks_beside_timing()
            else:
                profiles = self._checks_then_timing()
            for role in self.subjects:
                if role in profiles:
                    self.stage("profile", profiles[role], role=role)
        except Stop as stop:
            status, message = stop.status, stop.message
            error_stage = stop.stage or getattr(self.local, "stage", None)
            if stop.role == "candidates" and self.many:
                for role in self.subjects:
                    self.outcome.setdefault(role, (stop.status, stop.message, "timing"))
                status, message, error_stage = "ok", None, None
            elif stop.role == "baseline" and self.mode == "compare":
                # The baseline's own trouble is the task's problem, not the candidate's.
                if status != "error":
                    message = f"the baseline failed ({status}), not the candidate: {message}"
                status = "error"
        except Exception:  # noqa: BLE001 - a harness bug must still produce a verdict
            status, message = "error", "sandbox harness error:\n" + traceback.format_exc()[-2000:]
            error_stage = getattr(self.local, "stage", None)
        finally:
            self._kill_workers()
            if self.job.get("pid_namespace"):
                kill_all(stray_processes(set()))
        if status in LIMIT_STATUSES:
            error_stage = "limits"
        results = []
        for role in self.subjects:
            own_status, own_message, own_stage = self.outcome.get(role, ("ok", None, None))
            if role not in self.outcome and not self.correct[role]:
                own_status, own_stage = "failed", self.failed_stage.get(role)
            if status != "ok":
                own_status, own_message, own_stage = status, message, error_stage
            elif own_status in LIMIT_STATUSES:
                own_stage = "limits"
            for name in STAGES:
                if name not in self.emitted[role]:
                    self.stage(name, skipped=f"stopped: {own_status}", role=role)
            results.append(
                {
                    "status": own_status,
                    "message": own_message,
                    "error_stage": own_stage if own_status != "ok" else None,
                    "output": self.output.for_role(role).as_dict(),
                }
            )
        done = {"event": "done", "output": self.output.as_dict()}
        if self.many:
            done.update(status=status, message=message, error_stage=error_stage)
            done["candidates"] = results
        else:
            done.update(
                status=results[0]["status"],
                message=results[0]["message"],
                error_stage=results[0]["error_stage"],
            )
        self.emit(done)

    def _kill_workers(self, retire: bool = True) -> None:
        """Kill every worker; ``retire=False`` while another thread may still use its own (its
        request then fails fast and that thread retires it)."""
        with self.lock:
            workers = list(self.workers)
        for worker in workers:
            worker.kill()
        if retire:
            for worker in workers:
                self.retire(worker)


def _timing_for(data: dict, role: str) -> dict:
    """The timing stage's data as one candidate's verdict sees it (its own pairs)."""
    info = data["candidates"][role]
    rounds = [
        [{"baseline": p["baseline"], "candidate": p[role]} for p in r if role in p]
        for r in data["pairs"]
    ]
    rounds = [r for r in rounds if r]
    out = {
        "clock": info["clock"],
        "rounds": info["rounds"],
        "pairs": rounds,
        "calls_per_sample": {
            "baseline": data["calls_per_sample"]["baseline"],
            "candidate": data["calls_per_sample"].get(role, 0),
        },
        "stopped": info["stopped"],
        "sequential": data["sequential"],
        "pipelined": data["pipelined"],
        "cpus": data["cpus"],
        "throttled_s": data["throttled_s"],
        "budget_s": data["budget_s"],
        "duration_s": info["duration_s"],
        "total_duration_s": data["duration_s"],
        "total_rounds": data["rounds"],
    }
    if "estimate" in info:
        out["estimate"] = info["estimate"]
    return out


def _session_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[4])
    except (OSError, IndexError, ValueError):
        return None


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
