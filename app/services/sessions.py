"""Sessions: create one (stored first, then validated in the sandbox, then the baseline is
evaluated as iteration 0), read it back as a view, change or delete it."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import _convert as cv
from app.services.access import Actor, acting, audit, require_change, require_create, require_read
from app.services.code import parse_error, top_level_names
from app.services.context import Context, get_context
from app.services.errors import (
    BaselineTestsFail,
    CodeDoesNotParse,
    EntryNotFound,
    InvalidInput,
    NotFound,
    SandboxFailed,
    ServiceError,
    WorkloadError,
)
from app.services.evaluation import error_text, evaluate_now
from app.services.figures import auto_best, compute_figures
from app.services.views import CandidateView, SessionInfo, SessionView
from db import queries
from db.engine import unit_of_work
from db.errors import NotFound as RowNotFound
from db.models import Evaluation, Message, RoutingTrace

ProgressFn = Callable[[str, dict[str, Any]], None]
BEST_LABEL = "best"


# --- reading --------------------------------------------------------------------------------


def _latest_evaluations(s: Session, candidate_ids: list[int]) -> dict[int, Evaluation]:
    latest: dict[int, Evaluation] = {}
    if not candidate_ids:
        return latest
    rows = s.scalars(
        select(Evaluation).where(Evaluation.candidate_id.in_(candidate_ids)).order_by(Evaluation.id)
    )
    for row in rows:
        latest[row.candidate_id] = row
    return latest


def candidate_views(s: Session, session_id: int) -> list[CandidateView]:
    """Every candidate of a session with its latest evaluation and the best flag."""
    rows = queries.list_candidates(session_id, session=s)
    latest = _latest_evaluations(s, [r.id for r in rows])
    plain = [cv.candidate_view(r, latest.get(r.id)) for r in rows]
    labelled = [c for c in plain if c.label == BEST_LABEL]
    best = labelled[-1] if labelled else auto_best(plain)
    return [
        cv.candidate_view(r, latest.get(r.id), is_best=best is not None and r.id == best.id)
        for r in rows
    ]


def load_view(s: Session, session_id: int) -> SessionView:
    try:
        row = queries.get_session(session_id, session=s)
    except RowNotFound as exc:
        raise NotFound("session", session_id) from exc
    traces = dict(
        s.execute(
            select(RoutingTrace.message_id, RoutingTrace.id)
            .join(Message, Message.id == RoutingTrace.message_id)
            .where(Message.session_id == session_id)
        ).all()
    )
    messages = [
        cv.message_view(m, traces.get(m.id)) for m in queries.list_messages(session_id, session=s)
    ]
    candidates = candidate_views(s, session_id)
    baseline = next((c for c in candidates if c.origin == "baseline"), None)
    validation = (baseline.meta.get("validation") if baseline else None) or {}
    ev = baseline.evaluation if baseline else None
    ready = bool(validation.get("ok")) and ev is not None and ev.status == "ok" and bool(ev.correct)
    error = None
    if not ready:
        error = validation.get("message") or (
            "the baseline has not been validated yet" if baseline else "the session has no baseline"
        )
    return SessionView(
        info=cv.session_info(row),
        messages=messages,
        candidates=candidates,
        tests=[cv.test_view(t) for t in queries.list_test_cases(session_id, session=s)],
        comments=[cv.comment_view(c) for c in queries.list_comments(session_id, session=s)],
        figures=compute_figures(candidates, messages),
        ready=ready,
        validation_error=error,
    )


def get_session(
    session_id: int, *, actor: Actor | None = None, ctx: Context | None = None
) -> SessionView:
    """The whole session as plain dataclasses: transcript, candidate tree, tests, figures."""
    c = get_context(ctx)
    with unit_of_work(c.engine) as s:
        require_read(s, session_id, acting(actor, c), c.settings)
        return load_view(s, session_id)


# --- creating and validating ----------------------------------------------------------------


def create_session(
    *,
    baseline_source: str,
    entry_point: str,
    workload_source: str,
    tests_source: str | None = None,
    title: str | None = None,
    mode: str = "chat",
    model: str | None = None,
    tags: list[str] | None = None,
    notes: str = "",
    visibility: str = "team",
    validate: bool = True,
    on_progress: ProgressFn | None = None,
    actor: Actor | None = None,
    ctx: Context | None = None,
) -> SessionView:
    """Store a new session with its baseline candidate and tests, then (``validate=True``)
    validate it and evaluate the baseline (see ``validate_session``). Its author is the
    acting person (editors and admins create sessions).

    The rows are committed before validation, so a mistake in the input never loses what the
    person typed: on failure an ``InvalidInput`` subclass is raised whose ``stored`` holds
    ``{"session_id": ...}`` and the session shows ``ready=False`` with ``validation_error``.
    """
    c = get_context(ctx)
    who = acting(actor, c)
    entry_point = (entry_point or "").strip()
    session_id = store_new(
        c,
        who,
        title=(title or "").strip() or f"Optimise {entry_point or 'code'}",
        baseline_source=baseline_source,
        entry_point=entry_point,
        workload_source=workload_source,
        tests_source=tests_source,
        visibility=visibility,
        mode=mode,
        model=model,
        tags=tags,
        notes=notes,
    )
    if validate:
        validate_session(session_id, on_progress=on_progress, actor=who, ctx=c)
    return get_session(session_id, actor=who, ctx=c)


def store_new(
    c: Context,
    who: Actor,
    *,
    title: str,
    baseline_source: str,
    entry_point: str,
    workload_source: str,
    tests_source: str | None,
    visibility: str,
    mode: str,
    model: str | None,
    tags: list[str] | None,
    notes: str,
    source: dict[str, Any] | None = None,
) -> int:
    """Store a new session (authored by ``who``, who must be allowed to create one), its
    baseline as candidate 0 (not validated yet) and its tests; audited. Its id."""
    require_create(who)
    with unit_of_work(c.engine) as s:
        row = queries.create_session(
            session=s,
            title=title,
            baseline_source=baseline_source,
            entry_point=entry_point,
            workload_source=workload_source,
            author=who.name,
            visibility=visibility,
            mode=mode,
            model=model or c.model,
            tags=tags,
            notes=notes,
            source=source,
        )
        queries.add_candidate(
            session=s,
            session_id=row.id,
            source=baseline_source,
            origin="baseline",
            iteration=0,
            meta={"validation": {"ok": False, "message": "not validated yet"}},
        )
        if tests_source and tests_source.strip():
            _add_user_tests(s, row.id, tests_source)
        audit(s, who, "create", session_id=row.id, detail={"visibility": visibility})
        return row.id


def _add_user_tests(s: Session, session_id: int, source: str) -> None:
    t = queries.add_test_case(session=s, session_id=session_id, source=source, name="tests")
    t.validation = "accepted"  # the person wrote them: trusted from the start


def _user_tests(s: Session, session_id: int) -> str | None:
    tests = [t for t in queries.list_test_cases(session_id, session=s) if t.origin == "user"]
    return "\n\n\n".join(t.source for t in tests) if tests else None


def static_checks(baseline: str, entry: str, workload: str, tests: str | None) -> None:
    """What can be said without running anything, each with a precise message."""
    err = parse_error(baseline)
    if err is not None:
        raise CodeDoesNotParse(
            f"The baseline code does not parse: {err[0]}", field="baseline", line=err[1]
        )
    if not entry or not entry.isidentifier():
        raise EntryNotFound(f"The entry point must be a function name; got {entry!r}")
    names = top_level_names(ast.parse(baseline))
    if entry not in names:
        funcs = sorted(
            n
            for n, node in names.items()
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        )
        defined = f"; it defines {', '.join(funcs)}" if funcs else "; it defines no function"
        raise EntryNotFound(
            f"The entry point `{entry}` is not defined at the top level of the baseline{defined}."
        )
    err = parse_error(workload)
    if err is not None:
        raise CodeDoesNotParse(
            f"The workload does not parse: {err[0]}", field="workload", line=err[1]
        )
    if "cases" not in top_level_names(ast.parse(workload)):
        raise WorkloadError(
            "The workload must define a function `cases()` that returns the calls to time: "
            "each an args tuple or an (args, kwargs) pair."
        )
    if tests:
        err = parse_error(tests)
        if err is not None:
            raise CodeDoesNotParse(f"The tests do not parse: {err[0]}", field="tests", line=err[1])
        if not any(n.startswith("test") for n in top_level_names(ast.parse(tests))):
            raise InvalidInput(
                "The tests define no test function (pytest style: `def test_...():`).",
                field="tests",
            )


def _verdict_error(verdict: dict[str, Any]) -> ServiceError | None:
    """The precise error for a baseline verdict that is not a clean pass, or None. Reads the
    sandbox's ``error_stage`` (:class:`sandbox.verdict.ErrorStage`), never the message's words."""
    from sandbox.verdict import ErrorStage, error_stage_of

    status = verdict.get("status")
    stage = error_stage_of(verdict)
    text = error_text(verdict) or ""
    tests = verdict.get("tests") or {}
    if tests.get("failed"):
        failures = tests.get("failures") or []
        listed = "; ".join(
            f"{f.get('name')}: {str(f.get('message', ''))[:200]}" for f in failures[:5]
        )
        return BaselineTestsFail(
            f"{tests['failed']} test(s) fail on the baseline, so they cannot judge candidates: "
            f"{listed}"
        )
    if status == "ok" and verdict.get("correct") is not False:
        profile = verdict.get("profile") or {}
        if (
            profile.get("error") is None
            and profile.get("functions") == []
            and not (verdict.get("line_profile"))
        ):
            # Not one line of the entry point ran: every call raised before its body (most
            # often a case written as ((a, b),), a 1-tuple, instead of the args tuple (a, b)).
            return WorkloadError(
                "The workload's calls never run the body of the entry point (its line profile "
                "is empty), so they all fail at the call: each case must be an args tuple "
                "such as `(a, b)` or an `(args, kwargs)` pair."
            )
        return None
    if stage is ErrorStage.WORKLOAD:
        # the sandbox's own text often starts "the workload failed: …" already
        detail = re.sub(r"^the workload failed:\s*", "", text, flags=re.IGNORECASE)
        return WorkloadError(f"The workload failed: {detail or status}")
    if stage is ErrorStage.ENTRY:
        return EntryNotFound(f"The entry point could not be used: {text or status}")
    if stage is ErrorStage.LIMITS:
        what = {
            "timeout": "ran out of time",
            "memory": "ran out of memory",
            "output_limit": "printed too much",
        }.get(str(status), "exceeded a resource limit")
        return InvalidInput(
            f"The baseline {what} on the workload: {text}".rstrip(": "), field="workload"
        )
    if stage is ErrorStage.TESTS:
        return BaselineTestsFail(f"The tests could not run on the baseline: {text or status}")
    return InvalidInput(f"The baseline failed in the sandbox ({status}): {text}", field="baseline")


def _record_validation(
    c: Context, session_id: int, ok: bool, message: str, field: str = ""
) -> int | None:
    with unit_of_work(c.engine) as s:
        base = next(
            (x for x in queries.list_candidates(session_id, session=s) if x.origin == "baseline"),
            None,
        )
        if base is not None:
            meta = dict(base.meta or {})
            meta["validation"] = {"ok": ok, "message": message, "field": field}
            base.meta = meta
        if not ok:
            return queries.add_message(
                session=s,
                session_id=session_id,
                role="system",
                content=message,
                kind="validation",
                meta={"field": field},
            ).id
        return None


def validate_session(
    session_id: int,
    *,
    on_progress: ProgressFn | None = None,
    actor: Actor | None = None,
    ctx: Context | None = None,
) -> SessionView:
    """Check the inputs (code parses, entry exists, workload defines ``cases()``, tests parse),
    then evaluate the baseline alone in the sandbox: tests must pass and ``cases()`` must yield
    calls. The result is stored as the baseline's evaluation (iteration 0: timing and line
    profile). Raises ``CodeDoesNotParse``, ``EntryNotFound``, ``WorkloadError``,
    ``BaselineTestsFail`` or ``SandboxFailed`` with a precise message; ``stored`` names the
    session, which is kept."""
    c = get_context(ctx)
    who = acting(actor, c)
    with unit_of_work(c.engine) as s:
        require_change(s, session_id, who, c.settings)
        view = load_view(s, session_id)
        tests = _user_tests(s, session_id)
    info = view.info
    baseline = view.baseline
    if baseline is None:
        raise NotFound("baseline of session", session_id)
    stored = {"session_id": session_id, "candidate_id": baseline.id}
    try:
        if info.is_module:
            from app.services.projects import static_checks as module_checks

            module_checks(info, tests)
        else:
            static_checks(info.baseline_source, info.entry_point, info.workload_source, tests)
    except InvalidInput as exc:
        exc.stored.update(stored)
        exc.stored["message_id"] = _record_validation(c, session_id, False, str(exc), exc.field)
        raise
    if on_progress:
        on_progress("validate", {"session_id": session_id, "candidate_id": baseline.id})
    try:
        _, verdict = evaluate_now(
            baseline.id, c, on_progress=on_progress, baseline_mode=True, tests_override=tests
        )
    except SandboxFailed as exc:
        exc.stored.update(stored)
        _record_validation(c, session_id, False, str(exc), "sandbox")
        raise
    problem = _verdict_error(verdict)
    if problem is not None:
        problem.stored.update(stored)
        field = getattr(problem, "field", "")
        problem.stored["message_id"] = _record_validation(c, session_id, False, str(problem), field)
        raise problem
    _record_validation(c, session_id, True, "")
    return get_session(session_id, actor=who, ctx=c)


def update_session_inputs(
    session_id: int,
    *,
    baseline_source: str | None = None,
    entry_point: str | None = None,
    workload_source: str | None = None,
    tests_source: str | None = None,
    validate: bool = True,
    on_progress: ProgressFn | None = None,
    actor: Actor | None = None,
    ctx: Context | None = None,
) -> SessionView:
    """Fix the inputs of a session that has no candidates beyond the baseline, and
    re-validate. Refused (``InvalidInput``) once the optimizer has produced candidates."""
    c = get_context(ctx)
    who = acting(actor, c)
    with unit_of_work(c.engine) as s:
        row = require_change(s, session_id, who, c.settings)
        cands = queries.list_candidates(session_id, session=s)
        if any(x.origin != "baseline" for x in cands):
            raise InvalidInput(
                "This session already has candidates measured against its inputs; start a new "
                "session (or import this one) to change the baseline, workload or tests."
            )
        if row.module is not None and (
            (baseline_source is not None and baseline_source != row.baseline_source)
            or (entry_point is not None and entry_point.strip() != row.entry_point)
        ):
            # The baseline is the project's file as it is: a patch is made against it.
            raise InvalidInput(
                f"The code of this session is the file of `{row.module}` in its project; change "
                "it there (or pick another target) and create a new session.",
                field="baseline",
            )
        if baseline_source is not None:
            row.baseline_source = baseline_source
            for x in cands:
                x.source = baseline_source
        if entry_point is not None:
            row.entry_point = entry_point.strip()
        if workload_source is not None:
            row.workload_source = workload_source
        if tests_source is not None:
            for t in queries.list_test_cases(session_id, session=s):
                if t.origin == "user":
                    s.delete(t)
            if tests_source.strip():
                _add_user_tests(s, session_id, tests_source)
    if validate:
        validate_session(session_id, on_progress=on_progress, actor=who, ctx=c)
    return get_session(session_id, actor=who, ctx=c)


def update_session_info(
    session_id: int,
    *,
    title: str | None = None,
    tags: list[str] | None = None,
    notes: str | None = None,
    visibility: str | None = None,
    actor: Actor | None = None,
    ctx: Context | None = None,
) -> SessionInfo:
    """Title, tags, notes, visibility: the author's (or an admin's) to change; a change of
    visibility is audited."""
    c = get_context(ctx)
    who = acting(actor, c)
    with unit_of_work(c.engine) as s:
        row = require_change(s, session_id, who, c.settings)
        if title is not None:
            row.title = title.strip() or row.title
        if tags is not None:
            row.tags = list(tags)
        if notes is not None:
            row.notes = notes
        if visibility is not None and visibility != row.visibility:
            before = row.visibility
            try:
                row.visibility = visibility
            except ValueError as exc:
                raise InvalidInput(str(exc), field="visibility") from exc
            audit(
                s,
                who,
                "visibility",
                session_id=session_id,
                detail={"from": before, "to": visibility},
            )
        s.flush()
        return cv.session_info(row)


def delete_session(
    session_id: int, *, actor: Actor | None = None, ctx: Context | None = None
) -> None:
    c = get_context(ctx)
    who = acting(actor, c)
    with unit_of_work(c.engine) as s:
        row = require_change(s, session_id, who, c.settings)
        audit(s, who, "delete", session_id=session_id, detail={"title": row.title})
        try:
            queries.delete_session(session_id, session=s)
        except RowNotFound as exc:
            raise NotFound("session", session_id) from exc
