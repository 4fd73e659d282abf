"""The task the sandbox evaluates (baseline, candidate, entry, workload, tests) and its limits.

A task is a plain dict (the JSON of ``TASK.json``); :func:`parse_task` validates it into a
:class:`Task` and raises :class:`~sandbox.errors.InvalidTask` with a precise message otherwise.

``mode`` is ``"compare"`` (the default when a candidate is given: tests, equivalence, A/B timing,
profile of the candidate) or ``"baseline"`` (the default without a candidate: tests, timing and
profile of the baseline alone — iteration 0 of a session; no speedup is computed).

Real code (optional fields): ``project`` (a directory on this machine, mounted read-only, its
root first on ``sys.path``), ``module`` (the dotted module under optimization: ``baseline`` and
``candidate`` are then its full sources and ``entry`` may be a qualname such as
``Stat._getextrema``), ``environment`` (a venv root or a site-packages directory, mounted
read-only ahead of the app's packages) and ``project_tests`` (test files or pytest node ids
relative to the project root). Without ``module`` the code is the module ``target``.

``candidates: [source, ...]`` instead of ``candidate`` judges several candidates against one
baseline in one pass (each its own tests, equivalence and profile; one timing stage in which the
baseline is measured once for all of them); the verdict then has ``candidates: [verdict, ...]``.
"""

from __future__ import annotations

import dataclasses
import keyword
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import InvalidLimits, InvalidTask
from .harness.stats import NOISE_BAND

MODES = ("compare", "baseline")


@dataclass(frozen=True)
class Limits:
    """Resource limits for one evaluation. ``wall_s`` bounds the whole evaluation."""

    wall_s: float = 120.0  # whole evaluation, all stages
    cpu_s: float = 120.0  # CPU seconds per worker process (RLIMIT_CPU)
    memory_bytes: int = 2 * 1024**3  # address space per worker process (RLIMIT_AS)
    max_processes: int = 64  # processes + threads of the sandbox (RLIMIT_NPROC / pids.max)
    max_output_bytes: int = 1024 * 1024  # stdout + stderr of the code under test, all workers
    disk_bytes: int = 64 * 1024**2  # size of the writable tmpfs (/work and /tmp)
    open_files: int = 256  # RLIMIT_NOFILE per worker

    def merged(self, overrides: dict[str, Any] | None) -> Limits:
        if not overrides:
            return self
        if not isinstance(overrides, dict):
            raise InvalidLimits(f"limits must be an object, not {type(overrides).__name__}")
        known = {f.name: f.type for f in dataclasses.fields(self)}
        values = {}
        for name, value in overrides.items():
            if name not in known:
                raise InvalidLimits(f"unknown limit {name!r}; known: {', '.join(known)}")
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise InvalidLimits(f"limit {name!r} must be a positive number, got {value!r}")
            values[name] = float(value) if name.endswith("_s") else int(value)
        return dataclasses.replace(self, **values)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TimingOptions:
    """How long and how precisely to time (see ``sandbox/harness/timing.py`` for the method)."""

    # Wall-clock budget of the timing stage; None: 5.3 s with pipelined rounds (sequential
    # timing on two CPUs or more: ~19 rounds of a 1 ms workload, more than 9 s gave before),
    # else 9 s as before (sandbox/harness/timing.py PIPELINED_BUDGET_S, BUDGET_S).
    budget_s: float | None = None
    min_sample_s: float = 0.02  # loops are calibrated so one sample lasts at least this long
    # Sequential (the default): look after every round, stop once the anytime-valid CI is
    # outside the noise band (faster/slower) or inside it (not significant); see stats.py.
    # False: the fixed protocol (bootstrap CI, early_stop_rounds/target_rel_ci below).
    sequential: bool = True
    noise_band: float = NOISE_BAND  # ±1.5% around 1: differences smaller than this do not matter
    # Several candidates, sequential timing: one that looks like the baseline stops
    # (``dominated``) once another whose tests have passed is surely faster (intervals apart;
    # harness/timing.py dominated); False: each is timed until settled.
    stop_dominated: bool = True
    min_rounds: int | None = None  # fresh process pairs, at least (None: 2 sequential, 4 fixed)
    max_rounds: int = 60
    # None: 5 for one candidate, 3 for several (a round's samples then take about as long as
    # starting its next round's processes on the spare CPU; rounds, not pairs, are independent).
    pairs_per_round: int | None = None
    target_rel_ci: float = 0.01  # fixed protocol: stop early once the CI's half-width is ±1%…
    early_stop_rounds: int = 8  # …but not before this many rounds (a CI narrow by chance
    # after a few rounds undercovers: measured 1 false "faster" in 20 A/A runs at 7 rounds)
    profile_min_s: float = 0.0  # repeat the workload under the line profiler at least this long
    seed: int | None = None  # random order of baseline/candidate within a pair

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TimingOptions:
        if not data:
            return cls()
        if not isinstance(data, dict):
            raise InvalidTask("timing must be an object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidTask(f"unknown timing option(s) {sorted(unknown)}; known: {sorted(known)}")
        for name, value in data.items():
            if name in ("budget_s", "pairs_per_round") and value is None:
                continue  # the harness's default (see the fields above)
            if name in ("seed", "min_rounds"):
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    raise InvalidTask(f"timing.{name} must be an integer or null")
            elif name in ("sequential", "stop_dominated"):
                if not isinstance(value, bool):
                    raise InvalidTask(f"timing.{name} must be true or false")
            elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidTask(f"timing.{name} must be a non-negative number, got {value!r}")
        opts = cls(**data)
        if opts.min_rounds is not None and opts.min_rounds < 2:
            raise InvalidTask("timing.min_rounds must be at least 2 (fresh processes)")
        if opts.max_rounds < opts.rounds_at_least or (opts.pairs_per_round or 1) < 1:
            raise InvalidTask("timing: need max_rounds >= min_rounds and pairs_per_round >= 1")
        return opts

    @property
    def rounds_at_least(self) -> int:
        if self.min_rounds is not None:
            return self.min_rounds
        return 2 if self.sequential else 4

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "min_rounds": self.rounds_at_least}


@dataclass(frozen=True)
class Task:
    baseline: str
    entry: str
    workload: str
    candidate: str | None = None
    tests: str | None = None
    mode: str = "compare"
    limits: dict[str, Any] = field(default_factory=dict)
    timing: TimingOptions = field(default_factory=TimingOptions)
    project: str | None = None  # absolute path of the project directory on this machine
    module: str | None = None  # dotted name of the module under optimization
    environment: str | None = None  # absolute path of the site-packages directory to mount
    project_tests: tuple[str, ...] = ()  # test files / node ids relative to the project root
    candidates: tuple[str, ...] | None = None  # several candidates in one pass (see above)

    @property
    def code_under_test(self) -> str:
        """The source whose tests, profile and memory the verdict reports."""
        return self.baseline if self.mode == "baseline" else self.candidate or ""


_KNOWN_KEYS = {
    "baseline",
    "candidate",
    "candidates",
    "entry",
    "workload",
    "tests",
    "limits",
    "mode",
    "timing",
    "project",
    "module",
    "environment",
    "project_tests",
}
MAX_CANDIDATES = 16


def _source(data: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise InvalidTask(f"task field {key!r} is required (Python source as a string)")
        return None
    if not isinstance(value, str):
        raise InvalidTask(f"task field {key!r} must be a string, not {type(value).__name__}")
    if "\x00" in value:
        raise InvalidTask(f"task field {key!r} contains a NUL byte")
    return value


def parse_task(data: Any) -> Task:
    """Validate a task dict; raise :class:`InvalidTask` naming the first problem."""
    if not isinstance(data, dict):
        raise InvalidTask(f"a task must be a JSON object, not {type(data).__name__}")
    unknown = set(data) - _KNOWN_KEYS
    if unknown:
        raise InvalidTask(f"unknown task field(s) {sorted(unknown)}; known: {sorted(_KNOWN_KEYS)}")
    module = _dotted(data.get("module"), "module")
    entry = data.get("entry")
    if isinstance(entry, str) and ":" in entry:  # the target as MODULE:QUALNAME
        named, entry = entry.split(":", 1)
        if module is not None and named != module:
            raise InvalidTask(f"task field 'entry' names module {named!r}, 'module' {module!r}")
        module = _dotted(named, "module")
    if module is None:
        if not isinstance(entry, str) or not entry.isidentifier():
            raise InvalidTask(f"task field 'entry' must be a function name, got {entry!r}")
    elif _dotted(entry, "entry") is None:
        raise InvalidTask("task field 'entry' is required (a function or Class.method name)")
    project = _project(data.get("project"))
    project_tests = _project_tests(data.get("project_tests"), project)
    baseline = _source(data, "baseline", required=not (module and project))
    candidate = _source(data, "candidate", required=False)
    candidates = _candidates(data)
    if candidates is not None and candidate is not None:
        raise InvalidTask("give either 'candidate' or 'candidates', not both")
    if candidates is not None and len(candidates) == 1:
        candidate, candidates = candidates[0], None  # one candidate: today's verdict shape
    workload = _source(data, "workload", required=True)
    tests = _source(data, "tests", required=False)
    if baseline is None:  # a project's module: its file as it is
        baseline = _module_source(project, module)
    has_candidate = candidate is not None or candidates is not None
    mode = data.get("mode") or ("compare" if has_candidate else "baseline")
    if mode not in MODES:
        raise InvalidTask(f"task field 'mode' must be one of {MODES}, got {mode!r}")
    if mode == "compare" and not has_candidate:
        raise InvalidTask("mode 'compare' needs a 'candidate' source")
    if mode == "baseline" and candidates is not None:
        raise InvalidTask("mode 'baseline' takes no 'candidates'")
    limits = data.get("limits") or {}
    Limits().merged(limits)  # validate early
    return Task(
        baseline=baseline or "",
        candidate=candidate,
        entry=entry,
        workload=workload or "",
        tests=tests if tests and tests.strip() else None,
        mode=mode,
        limits=dict(limits),
        timing=TimingOptions.from_dict(data.get("timing")),
        project=project,
        module=module,
        environment=_environment(data.get("environment")),
        project_tests=project_tests,
        candidates=candidates,
    )


def _dotted(value: Any, key: str) -> str | None:
    """A dotted name of identifiers (``mypkg.stats``, ``Stat._getextrema``) or ``None``."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidTask(f"task field {key!r} must be a dotted name, got {value!r}")
    parts = value.split(".")
    if "<locals>" in parts or "<lambda>" in parts:
        raise InvalidTask(
            f"task field {key!r}: {value!r} is a nested function or a lambda; only module-level "
            "functions and the methods of module-level classes can be optimized"
        )
    if not all(p.isidentifier() and not keyword.iskeyword(p) for p in parts):
        raise InvalidTask(f"task field {key!r} must be a dotted name, got {value!r}")
    return value


def _directory(value: Any, key: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise InvalidTask(f"task field {key!r} must be a directory path")
    path = Path(value).expanduser()
    if not path.is_dir():
        raise InvalidTask(f"task field {key!r}: {value!r} is not a directory on this machine")
    if path.stat().st_mode & 0o005 != 0o005:
        raise InvalidTask(
            f"task field {key!r}: {value!r} must be readable by other users (chmod o+rx): "
            "the sandbox runs the code as an unprivileged user of its own"
        )
    return path.resolve()


def _project(value: Any) -> str | None:
    path = _directory(value, "project")
    return None if path is None else str(path)


def _module_source(project: str | None, module: str | None) -> str:
    base = Path(project or ".", *(module or "").split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise InvalidTask(f"task field 'baseline' is missing and the project has no module {module}")


def _project_tests(value: Any, project: str | None) -> tuple[str, ...]:
    if value is None or value == []:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InvalidTask("task field 'project_tests' must be a list of test paths or node ids")
    if project is None:
        raise InvalidTask("task field 'project_tests' needs a 'project' to find them in")
    out = []
    for test in value:
        test = test.strip()
        file_part = test.split("::", 1)[0]
        rel = PurePosixPath(file_part)
        if rel.is_absolute() or ".." in rel.parts or "\x00" in test or not file_part:
            raise InvalidTask(
                f"project_tests: {test!r} must be a path relative to the project root "
                "(e.g. tests/test_stats.py::test_extrema)"
            )
        if not (Path(project) / rel).exists():
            raise InvalidTask(f"project_tests: {file_part!r} does not exist in the project")
        out.append(test)
    return tuple(out)


def _environment(value: Any) -> str | None:
    """The site-packages directory of a venv root, or the directory itself."""
    path = _directory(value, "environment")
    if path is None:
        return None
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    found = sorted(path.glob("lib/python3*/site-packages"))
    if found:
        for site in found:
            if site.parent.name == here:
                return str(site)
        raise InvalidTask(
            f"environment {str(path)!r} is for {found[0].parent.name}; the sandbox runs {here}"
        )
    version = path.parent.name
    if version.startswith("python3") and version != here:
        raise InvalidTask(f"environment {str(path)!r} is for {version}; the sandbox runs {here}")
    return str(path)


def _candidates(data: dict[str, Any]) -> tuple[str, ...] | None:
    value = data.get("candidates")
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise InvalidTask("task field 'candidates' must be a non-empty list of sources")
    if len(value) > MAX_CANDIDATES:
        raise InvalidTask(f"at most {MAX_CANDIDATES} candidates in one task, got {len(value)}")
    for i, source in enumerate(value):
        _source({f"candidates[{i}]": source}, f"candidates[{i}]", required=True)
    return tuple(value)
