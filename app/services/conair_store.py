"""ConAIR's rounds as rows: each ``conair_round`` keeps its matrix (candidates × tests, the
baseline's outcomes, behaviour clusters, the questions asked and why it finished) as JSON, and
the ranking. Rounds belong to a *run* (``matrix["run"]``, 1 for rows written before runs
existed): a finished run can be followed by a new one in the same session. Reading them back
gives the ``ConairState`` the page shows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.services.access import Actor, acting, require_read
from app.services.consistency import Cells, validated
from app.services.context import Context, get_context
from app.services.errors import NotFound
from app.services.sessions import load_view
from app.services.views import (
    CandidateView,
    ConairState,
    RankedCandidate,
    TestCaseView,
    TestQuestion,
)
from db import queries
from db.engine import unit_of_work
from db.models import Candidate, ConairRound


@dataclass
class Matrix:
    """What a round knows about its run: the candidates and tests in play and their outcomes."""

    run: int
    candidate_ids: list[int]
    test_ids: list[int]
    cells: Cells = field(default_factory=dict)
    baseline_cells: dict[int, str] = field(default_factory=dict)
    clusters: list[list[int]] = field(default_factory=list)
    baseline_cluster: int | None = None

    def tests(self, view_tests: Sequence[TestCaseView]) -> list[TestCaseView]:
        """This run's tests as views, rejected ones left out."""
        ids = set(self.test_ids)
        return [t for t in view_tests if t.id in ids and t.validation != "rejected"]


def matrix_json(m: Matrix, questions: Sequence[TestQuestion], reason: str | None) -> dict[str, Any]:
    return {
        "run": m.run,
        "candidate_ids": m.candidate_ids,
        "test_case_ids": m.test_ids,
        "cells": [
            {"candidate_id": c, "test_case_id": t, "outcome": o}
            for (c, t), o in sorted(m.cells.items())
        ],
        "baseline_cells": [
            {"test_case_id": t, "outcome": o} for t, o in sorted(m.baseline_cells.items())
        ],
        "clusters": [{"candidate_ids": members} for members in m.clusters],
        "baseline_cluster": m.baseline_cluster,
        "questions": [
            {
                "test_case_id": q.test.id,
                "split": q.split,
                "passing_candidate_ids": q.passing,
                "failing_candidate_ids": q.failing,
                "contradicts_baseline": q.contradicts_baseline,
            }
            for q in questions
        ],
        "reason": reason,
    }


def read_matrix(raw: dict[str, Any] | None) -> Matrix:
    raw = raw or {}
    return Matrix(
        run=int(raw.get("run") or 1),
        candidate_ids=[int(c) for c in raw.get("candidate_ids", [])],
        test_ids=[int(t) for t in raw.get("test_case_ids", [])],
        cells={
            (int(x["candidate_id"]), int(x["test_case_id"])): x["outcome"]
            for x in raw.get("cells", [])
        },
        baseline_cells={
            int(x["test_case_id"]): x["outcome"] for x in raw.get("baseline_cells", [])
        },
        clusters=[list(x["candidate_ids"]) for x in raw.get("clusters", [])],
        baseline_cluster=raw.get("baseline_cluster"),
    )


def ranking_json(ranking: Sequence[RankedCandidate]) -> list[dict[str, Any]]:
    """The ranking as it stood when the round closed (speedups are read fresh when shown)."""
    return [
        {
            "candidate_id": r.candidate_id,
            "rank": r.rank,
            "score": r.score,
            "tests_passed": r.tests_passed,
            "trusted_failed": r.trusted_failed,
            "cluster": r.cluster,
            "correct": r.correct,
            "unvalidated_failed": r.unvalidated_failed,
            "unvalidated_total": r.unvalidated_total,
        }
        for r in ranking
    ]


def _ranked(raw: dict[str, Any], candidate: CandidateView | None) -> RankedCandidate:
    ev = candidate.evaluation if candidate is not None else None
    correct = ev.correct if ev is not None and ev.finished else raw.get("correct")
    timed = ev is not None and bool(correct)
    return RankedCandidate(
        candidate_id=raw["candidate_id"],
        rank=raw["rank"],
        score=raw["score"],
        tests_passed=raw["tests_passed"],
        trusted_failed=raw["trusted_failed"],
        cluster=raw["cluster"],
        correct=correct,
        unvalidated_failed=raw.get("unvalidated_failed", 0),
        unvalidated_total=raw.get("unvalidated_total", 0),
        speedup=ev.speedup if timed else None,
        ci_low=ev.ci_low if timed else None,
        ci_high=ev.ci_high if timed else None,
        verdict=ev.verdict if timed else None,
    )


def _rounds(s: Session, session_id: int) -> list[ConairRound]:
    # In the order they were written (the relationship orders by number, which restarts at 1
    # with every run).
    return sorted(queries.get_session(session_id, session=s).conair_rounds, key=lambda r: r.id)


def run_rounds(s: Session, session_id: int) -> list[ConairRound]:
    """The rounds of the session's latest run, oldest first."""
    rounds = _rounds(s, session_id)
    if not rounds:
        return []
    run = read_matrix(rounds[-1].matrix).run
    return [r for r in rounds if read_matrix(r.matrix).run == run]


def latest_round(s: Session, session_id: int) -> ConairRound:
    rounds = run_rounds(s, session_id)
    if not rounds:
        raise NotFound("ConAIR round of session", session_id)
    return rounds[-1]


def next_run(s: Session, session_id: int) -> int:
    rounds = _rounds(s, session_id)
    return max((read_matrix(r.matrix).run for r in rounds), default=0) + 1


def add_round(
    s: Session,
    session_id: int,
    *,
    number: int,
    matrix: Matrix,
    ranking: Sequence[RankedCandidate],
    questions: Sequence[TestQuestion],
    reason: str | None,
) -> None:
    queries.add_conair_round(
        session=s,
        session_id=session_id,
        number=number,
        ranking=ranking_json(ranking),
        matrix=matrix_json(matrix, questions, reason),
        tests_shown=[q.test.id for q in questions],
        answers=[],
        validations_asked=len(questions),
        finished=reason is not None,
    )


def note_unvalidated(s: Session, ranking: Sequence[RankedCandidate], m: Matrix) -> None:
    """Put each candidate's standing on the unvalidated tests on the candidate (its card shows
    "unvalidated: fails 1 of 6"), kept apart from its correctness."""
    for r in ranking:
        row = s.get(Candidate, r.candidate_id)
        if row is None:
            continue
        row.meta = {
            **(row.meta or {}),
            "conair_unvalidated": {
                "run": m.run,
                "failed": r.unvalidated_failed,
                "total": r.unvalidated_total,
            },
        }


def state(s: Session, session_id: int) -> ConairState:
    from app.services import _convert as cv

    view = load_view(s, session_id)
    rounds = run_rounds(s, session_id)
    if not rounds:
        raise NotFound("ConAIR round of session", session_id)
    last = rounds[-1]
    raw = last.matrix or {}
    m = read_matrix(raw)
    by_id = {t.id: t for t in view.tests}
    cands = {c.id: c for c in view.candidates}
    questions = [
        TestQuestion(
            test=by_id[q["test_case_id"]],
            split=q["split"],
            passing=list(q["passing_candidate_ids"]),
            failing=list(q["failing_candidate_ids"]),
            contradicts_baseline=bool(q.get("contradicts_baseline")),
        )
        for q in raw.get("questions", [])
        if q["test_case_id"] in by_id
    ]
    matrix: dict[int, dict[int, str]] = {}
    for (c, t), o in m.cells.items():
        matrix.setdefault(c, {})[t] = o
    ids = set(m.test_ids)
    return ConairState(
        session_id=session_id,
        round=last.number,
        candidates=[cands[c] for c in m.candidate_ids if c in cands],
        tests=[t for t in view.tests if t.id in ids],
        matrix=matrix,
        clusters=m.clusters,
        ranking=[_ranked(r, cands.get(r["candidate_id"])) for r in last.ranking or []],
        questions=[] if last.finished else questions,
        effort=sum(r.validations_asked for r in rounds),
        rounds=[cv.conair_round_view(r) for r in rounds],
        finished=last.finished,
        reason=raw.get("reason"),
        run=m.run,
        baseline_outcomes=dict(m.baseline_cells),
    )


def conair_state(
    session_id: int, *, actor: Actor | None = None, ctx: Context | None = None
) -> ConairState:
    """The current ConAIR state of a session: its latest run (raises ``NotFound`` if ConAIR
    never started)."""
    c = get_context(ctx)
    with unit_of_work(c.engine) as s:
        require_read(s, session_id, acting(actor, c), c.settings)
        return state(s, session_id)


def trusted_generated(tests: Sequence[TestCaseView]) -> list[TestCaseView]:
    """Generated tests a person accepted or corrected (any run): they join every new run."""
    return [t for t in tests if t.origin == "llm" and validated(t)]
