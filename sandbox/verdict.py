"""The verdict's type: what :func:`sandbox.evaluate` returns, key by key.

The verdict stays a plain JSON-serialisable dict (the ``--json`` output, the ``result`` column);
:class:`Verdict` types it for callers, and :class:`ErrorStage` names where an evaluation that is
not ``ok`` went wrong, so that callers read ``verdict["error_stage"]`` instead of searching the
message for words. Several candidates in one task (``candidates: [...]``): the top level carries
the common parts and ``candidates`` one :class:`Verdict` per candidate, in the task's order.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, TypedDict


class ErrorStage(StrEnum):
    """Where the evaluation went wrong (``None`` in the verdict when ``status`` is ``ok``)."""

    PARSE = "parse"  # the code does not parse (SyntaxError on import)
    IMPORT = "import"  # importing it raised
    ENTRY = "entry"  # no such function, or not callable
    WORKLOAD = "workload"  # cases() raised, returned no calls, or is not deterministic
    TESTS = "tests"  # a test failed, or the tests could not run
    EQUIVALENCE = "equivalence"  # outputs (or input mutations) differ from the baseline's
    TIMING = "timing"  # went wrong while being timed (drift, tampering, a crash)
    PROFILE = "profile"  # went wrong under the line profiler
    LIMITS = "limits"  # a resource limit: time, memory, output


Status = Literal[
    "ok", "failed", "timeout", "memory", "output_limit", "crashed", "tampered", "error"
]
VerdictWord = Literal["faster", "slower", "not significant"]
Stopped = Literal["settled", "dominated", "budget", "max_rounds"]


class TestsResult(TypedDict):
    passed: int
    failed: int
    failures: list[dict[str, str]]
    ran: bool


class Coverage(TypedDict):
    """The statements of the target's body that the selected tests run (on the baseline)."""

    lines: int
    covered: int
    missing: list[int]


class Output(TypedDict):
    stdout: str
    stderr: str
    bytes: int


class Verdict(TypedDict):
    """One evaluation's verdict (see ``sandbox/engine.py`` for each key's meaning)."""

    status: Status
    message: str | None
    error_stage: ErrorStage | str | None
    correct: bool
    mode: Literal["compare", "baseline"]
    tests: TestsResult
    coverage: Coverage | None
    equivalent: bool | None
    mismatches: list[dict[str, Any]]
    mismatch_count: int
    speedup: float | None
    ci95: list[float] | None
    verdict: VerdictWord | None
    rounds: int | None
    stopped: Stopped | None
    timing_s: float | None
    baseline: dict[str, Any] | None
    candidate: dict[str, Any] | None
    timing: dict[str, Any] | None
    line_profile: list[dict[str, Any]] | None
    profile: dict[str, Any] | None
    peak_memory_bytes: int | None
    baseline_peak_memory_bytes: int | None
    stages: dict[str, str]
    output: Output
    backend: str | None
    duration_s: float | None


class ManyVerdict(Verdict):
    """A task with ``candidates``: the common parts, and each candidate's own verdict."""

    candidates: list[Verdict]


def error_stage_of(verdict: dict[str, Any]) -> ErrorStage | None:
    """The verdict's :class:`ErrorStage`, or ``None`` (``ok``, or not known)."""
    value = verdict.get("error_stage")
    try:
        return ErrorStage(value) if value else None
    except ValueError:
        return None
