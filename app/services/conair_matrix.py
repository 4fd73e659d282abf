"""ConAIR's sandbox work: the candidate × test matrix (tests-only runs of the candidates and of
the baseline on the generated tests), the candidates' own evaluations on trusted evidence
(timed), re-judging every candidate when the trusted tests change, and behaviour clusters
from the comparison with the baseline on the workload."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from app.services._convert import session_info
from app.services.conair_store import Matrix
from app.services.consistency import behaviour_key, outcomes
from app.services.context import Context
from app.services.evaluation import (
    evaluate_new,
    recheck_on_trusted_tests,
    run_tests_only,
    sandbox_fields,
)
from app.services.views import TestCaseView
from db import queries
from db.engine import unit_of_work

ProgressFn = Callable[[str, dict[str, Any]], None]
BASELINE = None  # the baseline's key among the matrix targets


def test_sources(tests: Sequence[TestCaseView]) -> str:
    return "\n\n\n".join(t.effective_source.strip() for t in tests) + "\n"


def run_matrix(
    c: Context,
    session_id: int,
    m: Matrix,
    targets: dict[int | None, Sequence[TestCaseView]],
    *,
    on_progress: ProgressFn | None = None,
) -> None:
    """Fill ``m``'s cells: each target (a candidate id, or ``BASELINE``) runs the given tests
    in one tests-only sandbox run; a run that fails counts as errors for its tests."""
    targets = {t: tests for t, tests in targets.items() if tests}
    if not targets:
        return
    with unit_of_work(c.engine) as s:
        sess = queries.get_session(session_id, session=s)
        baseline, entry, workload = sess.baseline_source, sess.entry_point, sess.workload_source
        fields = sandbox_fields(session_info(sess))
        sources = {x.id: x.source for x in queries.list_candidates(session_id, session=s)}
    futures = {
        target: c.pool.submit(
            run_tests_only,
            c,
            None if target is BASELINE else sources[target],
            test_sources(tests),
            baseline=baseline,
            entry=entry,
            workload=workload,
            on_progress=on_progress,
            progress_info={"candidate_id": target, "tests_only": True},
            source=fields,
        )
        for target, tests in targets.items()
    }
    for target, fut in futures.items():
        try:
            verdict = fut.result()
        except Exception:  # noqa: BLE001 - a failed tests-only run counts as errors
            verdict = None
        names = {t.id: t.name for t in targets[target]}
        for tid, outcome in outcomes(verdict, names).items():
            if target is BASELINE:
                m.baseline_cells[tid] = outcome
            else:
                m.cells[(target, tid)] = outcome


def judge_new(
    c: Context, candidate_ids: list[int], *, on_progress: ProgressFn | None = None
) -> None:
    """The stored, timed evaluation of new candidates, on trusted tests only (what their
    cards, the chart and the figures show): one sandbox task for all of them, the baseline
    timed once."""
    if candidate_ids:
        evaluate_new(candidate_ids, c, on_progress=on_progress)


def rejudge_all(c: Context, session_id: int, *, on_progress: ProgressFn | None = None) -> None:
    """Every evaluated candidate of the session judged again on the tests trusted now."""
    with unit_of_work(c.engine) as s:
        ids = [
            x.id for x in queries.list_candidates(session_id, session=s) if x.origin != "baseline"
        ]
    recheck_on_trusted_tests(ids, c, on_progress=on_progress)


def cluster(c: Context, m: Matrix) -> None:
    """Behaviour clusters of the run's candidates from their latest evaluations: equivalent to
    the baseline, or grouped by identical mismatches, or broken."""
    groups: dict[str, list[int]] = {}
    with unit_of_work(c.engine) as s:
        for cid in m.candidate_ids:
            row = queries.latest_evaluation(cid, session=s)
            key = behaviour_key(row.result if row is not None else None)
            groups.setdefault(key, []).append(cid)
    keys = list(groups)
    m.clusters = [groups[k] for k in keys]
    m.baseline_cluster = keys.index("baseline") if "baseline" in keys else None
