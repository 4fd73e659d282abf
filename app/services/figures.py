"""Session figures: best speedup with CI, counts, LLM usage, time, and ENAMEL's eff@k."""

from __future__ import annotations

from collections.abc import Sequence

from app.services.context import Context
from app.services.views import SessionFigures


def eff_at_k(scores: Sequence[float], k: int) -> float:
    """ENAMEL's unbiased estimator of E[max efficiency of k samples] from n >= k scores."""
    raise NotImplementedError


def session_figures(session_id: int, *, ctx: Context | None = None) -> SessionFigures:
    raise NotImplementedError
