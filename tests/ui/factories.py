"""Small hand-built service views for chart and widget tests (no database needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.services.views import CandidateView, EvaluationView, HotLine, SpeedupPoint

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def point(iteration: int, speedup: float | None, *, correct: bool | None = True, cid: int = 0):
    ci = (speedup * 0.9, speedup * 1.1) if speedup else (None, None)
    return SpeedupPoint(
        iteration=iteration,
        candidate_id=cid or iteration + 1,
        origin="baseline" if iteration == 0 else "llm",
        speedup=speedup,
        ci_low=ci[0],
        ci_high=ci[1],
        verdict=None if speedup is None else ("faster" if speedup > 1.05 else "not significant"),
        correct=correct,
    )


def evaluation(cid: int, **kw: Any) -> EvaluationView:
    values: dict[str, Any] = dict(
        id=cid,
        candidate_id=cid,
        status="ok",
        correct=True,
        tests_passed=3,
        tests_failed=0,
        test_failures=[],
        equivalent=True,
        mismatches=[],
        speedup=2.0,
        ci_low=1.9,
        ci_high=2.1,
        verdict="faster",
        peak_memory_bytes=12 * 2**20,
        line_profile=[
            HotLine(line=2, hits=1, time=0.001, share=0.1, source="    total = 0"),
            HotLine(line=3, hits=100, time=0.009, share=0.9, source="    for x in xs: total += x"),
        ],
        error=None,
        backend="bwrap",
        duration_s=1.5,
        started_at=NOW,
        finished_at=NOW,
    )
    values.update(kw)
    return EvaluationView(**values)


def candidate(cid: int, *, parent: int | None = None, origin: str = "llm", **kw: Any):
    source = kw.pop("source", f"def f(xs):\n    total = 0\n    return sum(xs)  # v{cid}\n")
    ev = kw.pop("evaluation", evaluation(cid))
    return CandidateView(
        id=cid,
        session_id=1,
        parent_id=parent,
        origin=origin,
        source=source,
        label=None,
        message_id=None,
        created_at=NOW,
        iteration=kw.pop("iteration", cid - 1),
        is_best=kw.pop("is_best", False),
        evaluation=ev,
        **kw,
    )
