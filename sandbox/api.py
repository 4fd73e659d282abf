"""The public entry points. Settings are read here, at the edge, and nowhere else in sandbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .backends import NAMES, get_backend, make_backend
from .engine import evaluate_task
from .errors import SandboxError
from .task import Limits, parse_task


def _settings() -> tuple[str, bool, dict[str, Any], str | None]:
    """(default backend, process backend allowed, default limits, Docker engine URL) from the
    app settings."""
    try:
        from app.config import get_settings
    except ImportError:  # the sandbox used on its own, without the app installed
        return "bwrap", False, {}, None
    settings = get_settings()
    return (
        settings.sandbox_backend,
        settings.sandbox_allow_process,
        settings.sandbox_limits.model_dump(),
        settings.sandbox_docker_url,
    )


def evaluate(
    task: dict,
    *,
    backend: str | None = None,
    limits: dict | None = None,
    allow_process: bool = False,
    progress: Callable[[str, dict], None] | None = None,
) -> dict:
    """Evaluate a task dict and return the verdict dict (JSON-serialisable).

    ``backend=None`` uses the settings' default. Limits are layered: built-in defaults, then the
    settings, then ``limits``, then the task's own ``limits``. ``progress(stage, info)`` is
    called with "start", "tests", "equivalence", "timing", "profile", "done", in that order
    (skipped stages too, with ``info["skipped"]``). Raises :class:`SandboxError` subclasses
    for usage errors only; whatever the code under test does is in ``verdict["status"]``.
    """
    default_backend, settings_allow, settings_limits, docker_url = _settings()
    parsed = parse_task(task)
    merged = Limits().merged(settings_limits).merged(limits).merged(parsed.limits)
    chosen = get_backend(
        backend or default_backend,
        allow_process=allow_process or settings_allow,
        docker_url=docker_url,
    )
    return evaluate_task(parsed, chosen, merged, progress)


def available_backends() -> dict[str, str | None]:
    """Each backend name → ``None`` if it can run here, else the reason it cannot."""
    _, settings_allow, _, docker_url = _settings()
    out: dict[str, str | None] = {}
    for name in NAMES:
        try:
            out[name] = make_backend(
                name, allow_process=settings_allow, docker_url=docker_url
            ).unavailable_reason()
        except SandboxError as exc:
            out[name] = str(exc)
        except ImportError as exc:
            out[name] = f"missing Python package: {exc.name}"
    return out
