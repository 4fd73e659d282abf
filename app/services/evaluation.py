"""Running the sandbox for a candidate and storing its verdict. The sandbox call runs on the
context's bounded pool; the rows are written in short units of work before and after, so a
long evaluation never holds a database transaction open."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.services._convert import session_info
from app.services.context import Context
from app.services.cores import core_lease
from app.services.errors import NotFound, SandboxFailed
from app.services.jobs import current_job, run_in_context
from app.services.views import SessionInfo
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


def sandbox_fields(info: SessionInfo) -> dict[str, Any]:
    """The TASK.json fields of a module session (project, module, environment,
    project_tests); {} for a pasted module."""
    if not info.is_module:
        return {}
    fields: dict[str, Any] = {"module": info.module}
    if info.project_path:
        fields["project"] = info.project_path
    if info.environment:
        fields["environment"] = info.environment
    if info.project_tests:
        fields["project_tests"] = list(info.project_tests)
    return fields


def session_task(s, sess, tests_override: str | None) -> dict[str, Any]:  # noqa: ANN001
    """``run_sandbox``'s arguments common to every evaluation of a session (baseline, entry,
    workload, the trusted tests unless overridden, a module session's sandbox fields)."""
    tests = (
        tests_override
        if tests_override is not None
        else trusted_tests(queries.list_test_cases(sess.id, session=s))
    )
    return {
        "baseline": sess.baseline_source,
        "entry": sess.entry_point,
        "workload": sess.workload_source,
        "tests": tests,
        "source": sandbox_fields(session_info(sess)),
    }


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
    source: dict[str, Any] | None = None,
    candidates: list[str] | None = None,
) -> dict[str, Any]:
    """``sandbox.evaluate`` with the context's backend, limits and timing options. A sandbox
    usage error (backend unavailable, malformed task) becomes ``SandboxFailed``. ``source``:
    a module session's TASK.json fields (project, module, environment, project_tests).
    ``candidates`` (instead of ``candidate``): several judged in one pass, verdict with
    ``candidates``."""
    import sandbox
    from sandbox.errors import SandboxError

    task: dict[str, Any] = {"baseline": baseline, "entry": entry, "workload": workload}
    task.update(source or {})
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
        with core_lease(spare=1):  # one evaluation per core at a time, pinned to it (and
            # a second core while one is free: the sandbox runs its other work there)
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
        task = session_task(s, sess, tests_override)
        task["candidate"] = None if baseline_mode else cand.source
        row = queries.add_evaluation(
            session=s,
            candidate_id=candidate_id,
            backend=ctx.sandbox_backend or "default",
            status="running",
        )
        row.job_id = current_job()  # if its worker dies, the evaluation is marked interrupted
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
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A sandbox run for test outcomes only (minimal timing, nothing stored). ``source``: a
    module session's TASK.json fields (``sandbox_fields``)."""
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
        source=source,
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
            run_in_context(evaluate_now),
            cid,
            ctx,
            on_progress=on_progress,
            tests_override=tests_override,
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


# --- re-judging on the tests trusted now ------------------------------------------------------

#: Verdict keys that come from timing and profiling; a re-check keeps the earlier ones.
TIMED_KEYS = ("speedup", "ci95", "verdict", "baseline", "candidate", "timing", "line_profile")


def _judgement(correct: bool | None, tests: dict[str, Any], equivalent: bool | None) -> tuple:
    names = sorted(str(f.get("name", "")) for f in tests.get("failures") or [])
    return bool(correct), tests.get("passed"), tests.get("failed"), tuple(names), equivalent


def recheck_on_trusted_tests(
    candidate_ids: list[int],
    ctx: Context,
    *,
    on_progress: ProgressFn | None = None,
) -> dict[int, dict[str, Any] | None]:
    """Judge candidates again on the tests trusted *now* (``trusted_tests``: the session's own
    tests and the generated tests a person accepted or corrected) and on equivalence with the
    baseline, with a tests-only sandbox run each (cheap: no new timing).

    Only a changed judgement is stored, as a new evaluation row (the history stays): still
    correct → the earlier row's speedup, CI and profile are carried over (``result["recheck"]``
    marks such a row); now correct but never timed → a full, timed evaluation; now incorrect →
    the tests-only verdict (no speedup). Candidates without a finished ok/failed evaluation
    are left alone. Returns the tests-only verdict per candidate (None: could not run)."""
    with unit_of_work(ctx.engine) as s:
        jobs: dict[int, dict[str, Any]] = {}
        for cid in candidate_ids:
            cand = queries.get_candidate(cid, session=s)
            latest = queries.latest_evaluation(cid, session=s)
            if cand.origin == "baseline" or latest is None or latest.status not in ("ok", "failed"):
                continue
            sess = queries.get_session(cand.session_id, session=s)
            jobs[cid] = {
                "code": cand.source,
                "tests": trusted_tests(queries.list_test_cases(sess.id, session=s)) or "",
                "baseline": sess.baseline_source,
                "entry": sess.entry_point,
                "workload": sess.workload_source,
                "source": sandbox_fields(session_info(sess)),
                "latest": latest.id,
            }
    futures = {
        cid: ctx.pool.submit(
            run_tests_only,
            ctx,
            job["code"],
            job["tests"],
            baseline=job["baseline"],
            entry=job["entry"],
            workload=job["workload"],
            on_progress=on_progress,
            progress_info={"candidate_id": cid, "recheck": True},
            source=job["source"],
        )
        for cid, job in jobs.items()
    }
    verdicts: dict[int, dict[str, Any] | None] = {}
    to_time: list[int] = []
    for cid, fut in futures.items():
        try:
            verdict = fut.result()
        except SandboxFailed:
            verdicts[cid] = None
            continue
        verdicts[cid] = verdict
        if verdict.get("status") not in ("ok", "failed"):
            continue  # the check itself did not run through: keep the earlier judgement
        with unit_of_work(ctx.engine) as s:
            latest = queries.get_evaluation(jobs[cid]["latest"], session=s)
            before = _judgement(
                latest.correct, (latest.result or {}).get("tests") or {}, latest.equivalent
            )
            now = _judgement(
                verdict.get("correct"), verdict.get("tests") or {}, verdict.get("equivalent")
            )
            if before == now:
                continue
            timed = bool(latest.correct) and latest.speedup is not None
            if verdict.get("correct") and not timed:
                to_time.append(cid)
                continue
            row = queries.add_evaluation(
                session=s, candidate_id=cid, backend=str(verdict.get("backend") or "default")[:16]
            )
            result = dict(verdict)
            if verdict.get("correct"):
                old = latest.result or {}
                result.update({k: old.get(k) for k in TIMED_KEYS})
            # Flags, not row ids: ids inside JSON would go stale when a session is imported.
            result["recheck"] = {"timing_carried_over": bool(verdict.get("correct"))}
            apply_verdict(row, result)
            queries.touch_session(latest.candidate.session_id, session=s)
    if to_time:
        evaluate_on_pool(to_time, ctx, on_progress=on_progress)
    return verdicts


def evaluate_new(
    candidate_ids: list[int], ctx: Context, *, on_progress: ProgressFn | None = None
) -> dict[int, tuple[int | None, dict[str, Any] | None, str | None]]:
    """The new versions of one step (a reply's code blocks, a ConAIR round's candidates):
    several are judged in one sandbox task against one baseline timed once
    (:func:`evaluate_together`, on the pool like any evaluation), a single one on its own."""
    if len(candidate_ids) > 1:
        fn = run_in_context(evaluate_together)
        return ctx.pool.submit(fn, candidate_ids, ctx, on_progress=on_progress).result()
    return evaluate_on_pool(candidate_ids, ctx, on_progress=on_progress)


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
        task = session_task(s, sess, tests_override)
        task.update(candidate=None, candidates=[c.source for c in cands])
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
