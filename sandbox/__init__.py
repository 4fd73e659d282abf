"""perfloop's sandbox: untrusted code in, JSON-serialisable verdict out.

Knows nothing of the database or the LLM; usable on its own::

    python -m sandbox evaluate TASK.json [--backend bwrap|docker|process] [--json]

Public API (the app calls these):

- :func:`evaluate` — ``evaluate(task, *, backend=None, limits=None, allow_process=False,
  progress=None) -> dict``, the verdict (keys documented in ``sandbox/engine.py``: status,
  correct, tests, equivalent, mismatches, speedup, ci95, verdict, baseline, candidate,
  line_profile, peak_memory_bytes, backend, duration_s, …).
- :func:`available_backends` — ``{"bwrap": None, "docker": "no Docker engine…", …}``.
- :class:`Verdict` (a TypedDict of the verdict) and :class:`ErrorStage` (``verdict["error_stage"]``:
  where an evaluation that is not ``ok`` went wrong), in :mod:`sandbox.verdict`.
- the exception tree in :mod:`sandbox.errors` (usage errors only).

A task may carry ``candidates: [source, ...]`` instead of ``candidate``: one pass judges them all
against one baseline; the verdict then has ``candidates: [verdict, ...]``.

Task ``mode``: ``"compare"`` (default with a candidate) or ``"baseline"`` (tests, timing and
profile of the baseline alone, e.g. iteration 0 of a session). Real code: the task fields
``project``, ``module``, ``environment``, ``project_tests`` (``sandbox/task.py``); the verdict's
``coverage`` and ``error_stage`` (``sandbox/engine.py``).
"""

from .api import available_backends, evaluate
from .errors import BackendUnavailable, InvalidLimits, InvalidTask, SandboxError, UnknownBackend
from .task import Limits, Task, TimingOptions, parse_task
from .verdict import ErrorStage, ManyVerdict, Verdict

STATUSES = ("ok", "failed", "timeout", "memory", "output_limit", "crashed", "tampered", "error")
VERDICTS = ("faster", "slower", "not significant")
STOPPED = ("settled", "dominated", "budget", "max_rounds")

__all__ = [
    "STATUSES",
    "VERDICTS",
    "STOPPED",
    "BackendUnavailable",
    "ErrorStage",
    "InvalidLimits",
    "InvalidTask",
    "Limits",
    "ManyVerdict",
    "SandboxError",
    "Task",
    "TimingOptions",
    "UnknownBackend",
    "Verdict",
    "available_backends",
    "evaluate",
    "parse_task",
]
