"""Running the sandbox for a candidate and storing its verdict. The sandbox call runs on the
context's bounded pool; the rows are written in short units of work before and after, so a
long evaluation never holds a database transaction open."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.services.context import Context
from app.services.errors import NotFound, SandboxFailed
from db import queries
from db.engine import unit_of_work
from db.errors import NotFound as RowNotFound
from db.models import Evaluation, TestCase, utcnow

if TYPE_CHECKING:
    from sandbox.verdict import Verdict

ProgressFn = Callable[[str, dict[str, Any]], None]

MAX_MISMATCHES = 5
EXCERPT = 4000


def trusted_tests(tests: list[TestCase]) -> str | None:
    """The test source a candidate is judged by: the person's tests and the tests a person
    accepted or corrected in ConAIR (unvalidated and rejected LLM tests are not used here)."""
    parts = []
    for t in tests:
        if t.validation == "rejected":
            continue
        if t.origin == "llm" and t.validation == "unvalidated":
            continue
        parts.append((t.corrected_source or t.source).strip())
    return "\n\n\n".join(parts) + "\n" if parts else None


def run_sandbox(
    ctx: Context,
    *,
    baseline: str,
    entry: str,
    workload: str,
    candidate: str | None,
    tests: str | None,
    on_progress: ProgressFn | None = None,
    progress_info: dict[str, Any] | None = None,
    timing: dict[str, Any] | None = None,
    candidates: list[str] | None = None,
) -> dict[str, Any]:
    """``sandbox.evaluate`` with the context's backend, limits and timing options. A sandbox
    usage error (backend unavailable, malformed task) becomes ``SandboxFailed``. ``candidates``
    (instead of ``candidate``): several judged in one pass, verdict with ``candidates``."""
    import sandbox
    from sandbox.errors import SandboxError

    task: dict[str, Any] = {"baseline": baseline, "entry": entry, "workload": workload}
    if candidates is not None:
        task["candidates"] = list(candidates)
    elif candidate is not None:
        task["candidate"] = candidate
    else:
        task["mode"] = "baseline"
    if tests:
        task["tests"] = tests
    if timing is not None or ctx.sandbox_timing:
        task["timing"] = dict(timing if timing is not None else ctx.sandbox_timing or {})
    extra = dict(progress_info or {})

    def progress(stage: str, info: dict[str, Any] | None = None) -> None:
        if on_progress is not None:
            on_progress(stage, {**(info or {}), **extra})

    try:
        return sandbox.evaluate(
            task,
            backend=ctx.sandbox_backend,
            limits=ctx.sandbox_limits,
            allow_process=ctx.allow_process,
            progress=progress,
        )
    except SandboxError as exc:
        raise SandboxFailed(f"the sandbox could not run the evaluation: {exc}") from exc


def error_text(verdict: dict[str, Any]) -> str | None:
    """The verdict's error as one line of text for a person: its ``message`` (the sandbox's
    ``error_stage`` says where it went wrong; :class:`sandbox.verdict.Verdict`)."""
    message = verdict.get("message")
    return str(message) if message else None


def apply_verdict(row: Evaluation, verdict: Verdict | dict[str, Any]) -> None:
    """Store a sandbox verdict (one candidate's, see :class:`sandbox.verdict.Verdict`)."""
    tests = verdict["tests"]
    ci = verdict["ci95"] or [None, None]
    row.status = str(verdict["status"])
    row.correct = verdict["correct"]
    row.tests_passed = tests["passed"]
    row.tests_failed = tests["failed"]
    row.equivalent = verdict["equivalent"]
    row.mismatches = list(verdict["mismatches"])[:MAX_MISMATCHES]
    row.timing = {"baseline": verdict["baseline"], "candidate": verdict["candidate"]}
    row.speedup = verdict["speedup"]
    row.ci_low, row.ci_high = ci[0], ci[1]
    row.verdict = verdict["verdict"]
    row.peak_memory_bytes = verdict["peak_memory_bytes"]
    row.line_profile = list(verdict["line_profile"] or [])
    output = verdict["output"]
    row.stdout_excerpt = str(output["stdout"])[:EXCERPT]
    row.stderr_excerpt = str(output["stderr"])[:EXCERPT]
    row.error = error_text(verdict)
    row.result = dict(verdict)
    row.finished_at = utcnow()


def evaluate_now(
    candidate_id: int,
    ctx: Context,
    *,
    on_progress: ProgressFn | None = None,
    baseline_mode: bool = False,
    tests_override: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """Evaluate in the calling thread; returns (evaluation id, verdict). A sandbox failure is
    stored as status ``error`` and re-raised as ``SandboxFailed``."""
    with unit_of_work(ctx.engine) as s:
        try:
            cand = queries.get_candidate(candidate_id, session=s)
        except RowNotFound as exc:
            raise NotFound("candidate", candidate_id) from exc
        sess = queries.get_session(cand.session_id, session=s)
        tests = (
            tests_override
            if tests_override is not None
            else trusted_tests(queries.list_test_cases(sess.id, session=s))
        )
        task = {
            "baseline": sess.baseline_source,
            "entry": sess.entry_point,
            "workload": sess.workload_source,
            "candidate": None if baseline_mode else cand.source,
            "tests": tests,
        }
        row = queries.add_evaluation(
            session=s,
            candidate_id=candidate_id,
            backend=ctx.sandbox_backend or "default",
            status="running",
        )
        evaluation_id = row.id
    try:
        verdict = run_sandbox(
            ctx, on_progress=on_progress, progress_info={"candidate_id": candidate_id}, **task
        )
    except BaseException as exc:
        with unit_of_work(ctx.engine) as s:
            row = queries.get_evaluation(evaluation_id, session=s)
            row.status = "error"
            row.error = str(exc) or type(exc).__name__
            row.finished_at = utcnow()
        if isinstance(exc, SandboxFailed) or not isinstance(exc, Exception):
            raise
        raise SandboxFailed(f"the evaluation failed: {type(exc).__name__}: {exc}") from exc
    with unit_of_work(ctx.engine) as s:
        row = queries.get_evaluation(evaluation_id, session=s)
        apply_verdict(row, verdict)
        if verdict.get("backend"):
            row.backend = str(verdict["backend"])[:16]
        queries.touch_session(row.candidate.session_id, session=s)
    return evaluation_id, verdict


#: Timing for runs whose point is the tests' outcomes (the ConAIR matrix), not the speedup.
MATRIX_TIMING = {"budget_s": 0.5, "min_rounds": 2, "max_rounds": 2, "pairs_per_round": 1}


def run_tests_only(
    ctx: Context,
    candidate_source: str | None,
    tests: str,
    *,
    baseline: str,
    entry: str,
    workload: str,
    on_progress: ProgressFn | None = None,
    progress_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A sandbox run for test outcomes only (minimal timing, nothing stored)."""
    return run_sandbox(
        ctx,
        baseline=baseline,
        entry=entry,
        workload=workload,
        candidate=candidate_source,
        tests=tests,
        on_progress=on_progress,
        progress_info=progress_info,
        timing=MATRIX_TIMING,
    )


def evaluate_on_pool(
    candidate_ids: list[int],
    ctx: Context,
    *,
    on_progress: ProgressFn | None = None,
    tests_override: str | None = None,
) -> dict[int, tuple[int | None, dict[str, Any] | None, str | None]]:
    """Evaluate several candidates concurrently on the bounded pool; per candidate
    (evaluation id, verdict, error message). The caller's thread only waits."""
    futures = {
        cid: ctx.pool.submit(
            evaluate_now, cid, ctx, on_progress=on_progress, tests_override=tests_override
        )
        for cid in candidate_ids
    }
    out: dict[int, tuple[int | None, dict[str, Any] | None, str | None]] = {}
    for cid, fut in futures.items():
        try:
            eid, verdict = fut.result()
            out[cid] = (eid, verdict, None)
        except SandboxFailed as exc:
            out[cid] = (None, None, str(exc))
    return out


def evaluate_together(
    candidate_ids: list[int],
    ctx: Context,
    *,
    on_progress: ProgressFn | None = None,
    tests_override: str | None = None,
) -> dict[int, tuple[int | None, dict[str, Any] | None, str | None]]:
    """Evaluate several candidates of one session in ONE sandbox task (``candidates: [...]``:
    the baseline is timed once for all, each candidate stops when its answer is settled) and
    store one evaluation row per candidate. Same result shape as :func:`evaluate_on_pool`:
    per candidate (evaluation id, its own verdict, error message). Candidates of several
    sessions are grouped into one task per session. Runs in the calling thread."""
    ids = list(dict.fromkeys(candidate_ids))
    groups: dict[int, list[int]] = {}
    with unit_of_work(ctx.engine) as s:
        for cid in ids:
            try:
                cand = queries.get_candidate(cid, session=s)
            except RowNotFound as exc:
                raise NotFound("candidate", cid) from exc
            groups.setdefault(cand.session_id, []).append(cid)
    out: dict[int, tuple[int | None, dict[str, Any] | None, str | None]] = {}
    for members in groups.values():
        out.update(_evaluate_group(members, ctx, on_progress, tests_override))
    return {cid: out[cid] for cid in ids}


def _evaluate_group(
    ids: list[int],
    ctx: Context,
    on_progress: ProgressFn | None,
    tests_override: str | None,
) -> dict[int, tuple[int | None, dict[str, Any] | None, str | None]]:
    if len(ids) == 1:  # one candidate: today's task and verdict shape
        try:
            eid, verdict = evaluate_now(
                ids[0], ctx, on_progress=on_progress, tests_override=tests_override
            )
        except SandboxFailed as exc:
            return {ids[0]: (None, None, str(exc))}
        return {ids[0]: (eid, verdict, None)}
    with unit_of_work(ctx.engine) as s:
        cands = [queries.get_candidate(cid, session=s) for cid in ids]
        sess = queries.get_session(cands[0].session_id, session=s)
        tests = (
            tests_override
            if tests_override is not None
            else trusted_tests(queries.list_test_cases(sess.id, session=s))
        )
        task = {
            "baseline": sess.baseline_source,
            "entry": sess.entry_point,
            "workload": sess.workload_source,
            "candidate": None,
            "candidates": [c.source for c in cands],
            "tests": tests,
        }
        rows = {
            cid: queries.add_evaluation(
                session=s,
                candidate_id=cid,
                backend=ctx.sandbox_backend or "default",
                status="running",
            ).id
            for cid in ids
        }

    def progress(stage: str, info: dict[str, Any]) -> None:
        if on_progress is not None:
            index = info.get("candidate")
            own = {"candidate_id": ids[index]} if isinstance(index, int) else {}
            on_progress(stage, {**info, "candidate_ids": ids, **own})

    try:
        verdict = run_sandbox(ctx, on_progress=progress, **task)
    except BaseException as exc:
        message = (
            str(exc)
            if isinstance(exc, SandboxFailed)
            else f"the evaluation failed: {type(exc).__name__}: {exc}"
        )
        with unit_of_work(ctx.engine) as s:
            for eid in rows.values():
                row = queries.get_evaluation(eid, session=s)
                row.status = "error"
                row.error = message
                row.finished_at = utcnow()
        if not isinstance(exc, Exception):
            raise
        return {cid: (None, None, message) for cid in ids}
    out: dict[int, tuple[int | None, dict[str, Any] | None, str | None]] = {}
    with unit_of_work(ctx.engine) as s:
        for cid, own in zip(ids, verdict["candidates"], strict=True):
            row = queries.get_evaluation(rows[cid], session=s)
            apply_verdict(row, own)
            if own.get("backend"):
                row.backend = str(own["backend"])[:16]
            out[cid] = (rows[cid], own, None)
        queries.touch_session(sess.id, session=s)
    return out
