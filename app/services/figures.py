"""Session figures: best speedup with CI, counts, LLM usage, time, and ENAMEL's eff@k.

eff@k here: ENAMEL scores each sample's efficiency against an expert reference (≈ 1). A session
has no expert reference, only the person's baseline, so a candidate's score is its measured
speedup over the baseline when it is correct (status ok), and 0 when it is wrong or failed;
eff@k is then the expected best speedup among k candidates drawn from those tried. The
estimator is ENAMEL's unbiased one over the sorted scores.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.services.access import Actor
from app.services.context import Context
from app.services.views import CandidateView, MessageView, SessionFigures, SpeedupPoint

EFF_KS = (1, 5, 10)


def eff_at_k(scores: Sequence[float], k: int) -> float:
    """ENAMEL's unbiased estimator of E[max efficiency of k samples] from n >= k scores:
    Σ_{r=k..n} C(r−1, k−1)/C(n, k) · e(r) over scores sorted ascending, with the weights built
    iteratively (w_n = k/n, w_r = w_{r+1}·(1 − (k−1)/r)) so no binomial overflows."""
    n = len(scores)
    if k < 1 or n < k:
        raise ValueError(f"eff@k needs 1 <= k <= n; got k={k}, n={n}")
    e = sorted(float(s) for s in scores)
    weight = k / n
    total = weight * e[n - 1]
    for r in range(n - 1, k - 1, -1):  # r = n−1 … k (1-based ranks)
        weight *= 1 - (k - 1) / r
        total += weight * e[r - 1]
    return total


def efficiency_score(candidate: CandidateView) -> float:
    ev = candidate.evaluation
    if ev is None or ev.status != "ok" or not ev.correct or ev.speedup is None:
        return 0.0
    return max(0.0, float(ev.speedup))


def auto_best(candidates: Sequence[CandidateView]) -> CandidateView | None:
    """The correct candidate with the highest speedup whose verdict is ``faster``."""
    best = None
    for c in candidates:
        ev = c.evaluation
        if c.origin == "baseline" or ev is None or not ev.correct or ev.verdict != "faster":
            continue
        if best is None or (ev.speedup or 0) > (best.evaluation.speedup or 0):  # type: ignore[union-attr]
            best = c
    return best


def best_of(candidates: Sequence[CandidateView]) -> CandidateView | None:
    """The session's best version as every view shows it (the header, the Sessions list, the
    export): the one flagged ``is_best`` (the person's label, else the automatic choice)."""
    return next((c for c in candidates if c.is_best), None)


def best_speedup_of(candidates: Sequence[CandidateView]) -> float | None:
    best = best_of(candidates)
    return best.evaluation.speedup if best is not None and best.evaluation is not None else None


def compute_figures(
    candidates: Sequence[CandidateView], messages: Sequence[MessageView]
) -> SessionFigures:
    tried = [c for c in candidates if c.origin != "baseline"]
    evaluated = [c for c in tried if c.evaluation is not None and c.evaluation.finished]
    correct = [c for c in evaluated if c.evaluation.correct]  # type: ignore[union-attr]
    faster = [c for c in correct if c.evaluation.verdict == "faster"]  # type: ignore[union-attr]
    best = best_of(candidates)
    calls = [m for m in messages if m.role == "assistant" and m.latency_s is not None]
    costs = [m.cost for m in calls if m.cost is not None]
    times = [m.created_at for m in messages] + [c.created_at for c in candidates]
    finished = [
        c.evaluation.finished_at for c in candidates if c.evaluation and c.evaluation.finished_at
    ]
    times += finished
    wall = (max(times) - min(times)).total_seconds() if len(times) > 1 else 0.0
    scores = [efficiency_score(c) for c in evaluated]
    eff = {k: eff_at_k(scores, k) for k in EFF_KS if len(scores) >= k}
    best_ev = best.evaluation if best is not None else None
    return SessionFigures(
        best_candidate_id=best.id if best is not None else None,
        best_speedup=best_speedup_of(candidates),
        best_ci=(
            (best_ev.ci_low, best_ev.ci_high)
            if best_ev is not None and best_ev.ci_low is not None and best_ev.ci_high is not None
            else None
        ),
        candidates_tried=len(tried),
        candidates_correct=len(correct),
        candidates_faster=len(faster),
        llm_calls=len(calls),
        prompt_tokens=sum(m.prompt_tokens or 0 for m in calls),
        completion_tokens=sum(m.completion_tokens or 0 for m in calls),
        cost=sum(costs) if costs else None,
        llm_time_s=sum(m.latency_s or 0.0 for m in calls),
        eval_time_s=sum(
            (c.evaluation.duration_s or 0.0) for c in candidates if c.evaluation is not None
        ),
        wall_time_s=wall,
        eff_at_k=eff,
        series=[
            SpeedupPoint(
                iteration=c.iteration,
                candidate_id=c.id,
                origin=c.origin,
                speedup=c.evaluation.speedup if c.evaluation else None,
                ci_low=c.evaluation.ci_low if c.evaluation else None,
                ci_high=c.evaluation.ci_high if c.evaluation else None,
                verdict=c.evaluation.verdict if c.evaluation else None,
                correct=c.evaluation.correct if c.evaluation else None,
            )
            for c in candidates
        ],
    )


def session_figures(
    session_id: int, *, actor: Actor | None = None, ctx: Context | None = None
) -> SessionFigures:
    from app.services.sessions import get_session

    return get_session(session_id, actor=actor, ctx=ctx).figures
