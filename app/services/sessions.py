"""Sessions: create one (stored first, then validated in the sandbox, then the baseline is
evaluated as iteration 0), read it back as a view, change or delete it."""

from __future__ import annotations

from typing import Any

from app.services.context import Context
from app.services.views import SessionInfo, SessionView

ProgressFn = Any  # Callable[[str, dict], None]


def create_session(
    *,
    baseline_source: str,
    entry_point: str,
    workload_source: str,
    tests_source: str | None = None,
    title: str | None = None,
    author: str | None = None,
    mode: str = "chat",
    model: str | None = None,
    tags: list[str] | None = None,
    notes: str = "",
    visibility: str = "team",
    validate: bool = True,
    on_progress: ProgressFn | None = None,
    ctx: Context | None = None,
) -> SessionView:
    """Store a new session with its baseline candidate and tests, then (``validate=True``)
    validate it and evaluate the baseline (see ``validate_session``).

    The rows are committed before validation, so a mistake in the input never loses what the
    person typed: on failure an ``InvalidInput`` subclass is raised whose ``stored`` holds
    ``{"session_id": ...}`` and the session shows ``ready=False`` with ``validation_error``.
    """
    raise NotImplementedError


def validate_session(
    session_id: int, *, on_progress: ProgressFn | None = None, ctx: Context | None = None
) -> SessionView:
    """Check the inputs (code parses, entry exists, workload defines ``cases()``, tests parse),
    then run the sandbox on baseline vs itself: tests must pass and ``cases()`` must yield
    calls. The result is stored as the baseline's evaluation (iteration 0: timing and line
    profile). Raises ``CodeDoesNotParse``, ``EntryNotFound``, ``WorkloadError``,
    ``BaselineTestsFail`` or ``SandboxFailed`` with a precise message."""
    raise NotImplementedError


def update_session_inputs(
    session_id: int,
    *,
    baseline_source: str | None = None,
    entry_point: str | None = None,
    workload_source: str | None = None,
    tests_source: str | None = None,
    validate: bool = True,
    on_progress: ProgressFn | None = None,
    ctx: Context | None = None,
) -> SessionView:
    """Fix the inputs of a session that has no candidates beyond the baseline, and
    re-validate. Refused (``InvalidInput``) once the optimizer has produced candidates."""
    raise NotImplementedError


def get_session(session_id: int, *, ctx: Context | None = None) -> SessionView:
    """The whole session as plain dataclasses: transcript, candidate tree, tests, figures."""
    raise NotImplementedError


def update_session_info(
    session_id: int,
    *,
    title: str | None = None,
    tags: list[str] | None = None,
    notes: str | None = None,
    visibility: str | None = None,
    ctx: Context | None = None,
) -> SessionInfo:
    raise NotImplementedError


def delete_session(session_id: int, *, ctx: Context | None = None) -> None:
    raise NotImplementedError
