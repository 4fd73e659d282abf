"""Where the services run: which database, which sandbox backend and limits, which model, and
the bounded pool that evaluations share. One process-wide default built from the settings;
tests and the CLI pass their own with ``ctx=``."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from app.config import Settings, get_settings
from app.services.access import Actor, local_actor


@dataclass
class Context:
    """Explicit configuration of the services (like ``httpx.Client``: no hidden globals).

    ``sandbox_limits`` is passed to ``sandbox.evaluate(limits=...)`` and ``sandbox_timing`` as
    the task's ``timing`` options, as they are (None = the sandbox's defaults).
    ``llm_options`` is merged into every LLM call (e.g. ``api_base`` for a self-hosted server;
    tests put litellm's ``mock_response`` here).
    """

    engine: Engine
    settings: Settings
    sandbox_backend: str | None = None
    sandbox_limits: dict[str, Any] | None = None
    sandbox_timing: dict[str, Any] | None = None  # the task's "timing" options (budget_s, ...)
    allow_process: bool = False
    eval_workers: int = 2
    model: str = "perfloop-moe/default"
    llm_options: dict[str, Any] = field(default_factory=dict)
    #: Who the services act for when a call names no ``actor=`` (see app.services.access):
    #: the single local user unless set.
    actor: Actor | None = None
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.actor is None:
            self.actor = local_actor(self.settings)

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, engine: Engine | None = None, **overrides: Any
    ) -> Context:
        from db.engine import get_engine

        settings = settings or get_settings()
        values: dict[str, Any] = {
            "engine": engine or get_engine(settings.resolved_database_url),
            "settings": settings,
            "sandbox_backend": settings.sandbox_backend,
            "sandbox_limits": settings.sandbox_limits.model_dump(),
            "allow_process": settings.sandbox_allow_process,
            "eval_workers": settings.eval_workers,
            "model": settings.default_model,
        }
        if settings.sandbox_timing_budget_s is not None:
            values["sandbox_timing"] = {"budget_s": settings.sandbox_timing_budget_s}
        values.update(overrides)
        return cls(**values)

    def acting_as(self, actor: Actor) -> Context:
        """The same context (engine, settings, the one evaluation pool) acting for ``actor``."""
        from dataclasses import replace

        self.pool  # noqa: B018 - create the pool first, so that the copy shares it
        return replace(self, actor=actor)

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The bounded pool that runs sandbox evaluations (``eval_workers`` at a time)."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=max(1, self.eval_workers), thread_name_prefix="perfloop-eval"
                )
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None


_default: Context | None = None
_default_lock = threading.Lock()


def get_context(ctx: Context | None = None) -> Context:
    """``ctx`` if given, else the process-wide default (built from the settings once)."""
    global _default
    if ctx is not None:
        return ctx
    with _default_lock:
        if _default is None:
            _default = Context.from_settings()
        return _default


def set_default_context(ctx: Context | None) -> None:
    """Replace the process-wide default (the CLI and tests use this)."""
    global _default
    with _default_lock:
        _default = ctx
