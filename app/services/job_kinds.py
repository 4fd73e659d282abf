"""What each kind of job does: kind → the service function it runs, how its JSON params become
the function's arguments, and how its result is stored in (and read back from) the row.

Every background action of perfloop is one of these; any process that claims a row looks its
kind up here, so the same code runs in the app's embedded pool and on a queue worker.
``register`` adds a kind (the tests register small ones of their own).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.services._jsonable import from_json, to_json

Runner = Callable[..., Any]


@dataclass(frozen=True)
class JobKind:
    name: str
    #: ``run(session_id, params, *, on_token, on_routing, on_progress, ctx) -> result``
    run: Runner
    #: The type of the result (rebuilt from the row's JSON); None: stored as it is.
    result_type: Any = None
    #: Changes the session's candidates: at most one such job per session at a time.
    holds_session: bool = False
    needs_session: bool = False

    def encode(self, result: Any) -> Any:
        return to_json(result)

    def decode(self, data: Any) -> Any:
        return from_json(self.result_type, data) if self.result_type is not None else data


KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    KINDS[kind.name] = kind
    return kind


def _callbacks(cb: dict[str, Any], *names: str) -> dict[str, Any]:
    return {n: cb[n] for n in names}


ALL = ("on_token", "on_routing", "on_progress")


def _validation(session_id: int, p: dict[str, Any], *, ctx: Any, **cb: Any) -> Any:
    from app.services.sessions import validate_session

    return validate_session(session_id, on_progress=cb["on_progress"], ctx=ctx)


def _turn(session_id: int, p: dict[str, Any], *, ctx: Any, **cb: Any) -> Any:
    from app.services.iterations import DEFAULT_INSTRUCTION, run_turn

    return run_turn(
        session_id,
        p.get("text") or DEFAULT_INSTRUCTION,
        parent_id=p.get("parent_id"),
        model=p.get("model"),
        temperature=float(p.get("temperature", 0.0)),
        max_tokens=p.get("max_tokens"),
        evaluate=bool(p.get("evaluate", True)),
        ctx=ctx,
        **_callbacks(cb, *ALL),
    )


def _evaluation(session_id: int | None, p: dict[str, Any], *, ctx: Any, **cb: Any) -> Any:
    from app.services.iterations import evaluate_candidate

    return evaluate_candidate(int(p["candidate_id"]), on_progress=cb["on_progress"], ctx=ctx)


def _hand_edit(session_id: int, p: dict[str, Any], *, ctx: Any, **cb: Any) -> Any:
    from app.services.candidates import add_human_candidate

    return add_human_candidate(
        session_id,
        p["source"],
        parent_id=p.get("parent_id"),
        note=p.get("note", ""),
        evaluate=bool(p.get("evaluate", True)),
        on_progress=cb["on_progress"],
        ctx=ctx,
    )


def _conair(session_id: int, p: dict[str, Any], *, ctx: Any, **cb: Any) -> Any:
    from app.services.conair import start_conair

    extra = {k: p[k] for k in ("instruction", "n_candidates", "n_tests", "model") if k in p}
    return start_conair(session_id, ctx=ctx, **extra, **_callbacks(cb, *ALL))


def _conair_answer(session_id: int, p: dict[str, Any], *, ctx: Any, **cb: Any) -> Any:
    from app.services.conair import answer_tests
    from app.services.views import TestAnswer

    answers = from_json(list[TestAnswer], p["answers"])
    extra = {k: p[k] for k in ("repair", "model") if k in p}
    return answer_tests(session_id, answers, ctx=ctx, **extra, **_callbacks(cb, *ALL))


def _summary(session_id: int | None, p: dict[str, Any], *, ctx: Any, **cb: Any) -> Any:
    from app.services.summaries import summarize

    return summarize(
        int(p["candidate_id"]),
        granularity=p.get("granularity", "step-by-step"),
        model=p.get("model"),
        ctx=ctx,
        **_callbacks(cb, *ALL),
    )


def _summary_edit(session_id: int, p: dict[str, Any], *, ctx: Any, **cb: Any) -> Any:
    from app.services.summaries import apply_summary_edit
    from app.services.views import SummaryItem

    return apply_summary_edit(
        int(p["summary_id"]),
        from_json(list[SummaryItem], p["edited_items"]),
        model=p.get("model"),
        ctx=ctx,
        **_callbacks(cb, *ALL),
    )


def _probe(session_id: int | None, p: dict[str, Any], *, ctx: Any, **cb: Any) -> Any:
    from app.services.ui_support import probe_routing

    return probe_routing(
        p["prompt"],
        model=p.get("model"),
        max_tokens=int(p.get("max_tokens", 64)),
        ctx=ctx,
        **_callbacks(cb, *ALL),
    )


def _ping(session_id: int | None, p: dict[str, Any], *, ctx: Any, **cb: Any) -> Any:
    """A health check that runs nothing risky: says which worker ran it, after ``sleep_s``
    (reporting progress, so a stop request is seen). Used to check that workers are up."""
    import os
    import time

    from app.services.jobs import worker_name

    deadline = time.monotonic() + float(p.get("sleep_s", 0))
    cb["on_progress"]("ping", {})
    while time.monotonic() < deadline:
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        cb["on_progress"]("waiting", {})
    return {"worker": worker_name(), "pid": os.getpid()}


def _types() -> None:
    """The result types, imported late (the views import nothing from here)."""
    from app.services import views
    from app.services.ui_support import ProbeResult

    for kind in (
        JobKind("validation", _validation, views.SessionView, True, True),
        JobKind("turn", _turn, views.TurnResult, holds_session=True, needs_session=True),
        JobKind("evaluation", _evaluation, views.EvaluationView),
        JobKind("hand edit", _hand_edit, views.CandidateView, True, True),
        JobKind("conair", _conair, views.ConairState, True, True),
        JobKind("conair answer", _conair_answer, views.ConairState, True, True),
        JobKind("summary", _summary, views.SummaryView),
        JobKind("summary edit", _summary_edit, views.SummaryEditResult, True, True),
        JobKind("routing probe", _probe, ProbeResult),
        JobKind("ping", _ping),
    ):
        register(kind)


_types()
