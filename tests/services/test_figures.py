"""Session figures: ENAMEL's eff@k estimator and the automatic choice of the best candidate."""

from __future__ import annotations

import itertools
import statistics
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from app.services.figures import auto_best, compute_figures, eff_at_k
from app.services.views import CandidateView, EvaluationView

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 7])
def test_eff_at_k_equals_the_mean_of_the_max_over_all_k_subsets(k: int):
    scores = [0.0, 1.2, 0.0, 3.0, 2.0, 1.1, 0.7]
    brute = statistics.mean(max(c) for c in itertools.combinations(scores, k))
    assert eff_at_k(scores, k) == pytest.approx(brute)


def test_eff_at_k_is_stable_for_many_samples():
    scores = [i / 1000 for i in range(2000)]
    assert eff_at_k(scores, 100) == pytest.approx(1.999 - 1900 / 101 / 1000, rel=1e-3)


def test_eff_at_k_needs_k_samples():
    with pytest.raises(ValueError):
        eff_at_k([1.0], 2)


def evaluation(cid: int, **kw) -> EvaluationView:
    base = dict(
        id=cid,
        candidate_id=cid,
        status="ok",
        correct=True,
        tests_passed=2,
        tests_failed=0,
        test_failures=[],
        equivalent=True,
        mismatches=[],
        speedup=None,
        ci_low=None,
        ci_high=None,
        verdict=None,
        peak_memory_bytes=None,
        line_profile=[],
        error=None,
        backend="bwrap",
        duration_s=1.0,
        started_at=NOW,
        finished_at=NOW,
    )
    base.update(kw)
    return EvaluationView(**base)


def candidate(cid: int, origin: str = "llm", **kw) -> CandidateView:
    return CandidateView(
        id=cid,
        session_id=1,
        parent_id=None if origin == "baseline" else 1,
        origin=origin,
        source="",
        label=None,
        message_id=None,
        created_at=NOW,
        iteration=cid - 1,
        is_best=False,
        evaluation=evaluation(cid, **kw),
    )


def test_best_is_the_fastest_correct_candidate_whose_verdict_is_faster():
    cands = [
        candidate(1, "baseline"),
        candidate(2, speedup=5.0, verdict="faster", correct=False, status="failed"),
        candidate(3, speedup=2.0, ci_low=1.9, ci_high=2.1, verdict="faster"),
        candidate(4, speedup=2.5, ci_low=0.8, ci_high=4.0, verdict="not significant"),
        candidate(5, speedup=1.5, ci_low=1.4, ci_high=1.6, verdict="faster"),
    ]
    assert auto_best(cands).id == 3


def test_figures_count_candidates_and_compute_eff_at_1():
    cands = [
        candidate(1, "baseline"),
        candidate(2, speedup=2.0, ci_low=1.9, ci_high=2.1, verdict="faster"),
        candidate(3, correct=False, status="failed"),
    ]
    cands[1] = replace(cands[1], is_best=True)
    f = compute_figures(cands, [])
    assert (f.candidates_tried, f.candidates_correct, f.candidates_faster) == (2, 1, 1)
    assert f.best_speedup == 2.0 and f.best_ci == (1.9, 2.1)
    assert f.eff_at_k[1] == pytest.approx((2.0 + 0.0) / 2)
    assert f.cost is None and f.llm_calls == 0
