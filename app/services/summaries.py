"""Summary-mediated prompting: the LLM summarises a candidate at a granularity, each item linked
to line spans (checked with ``ast``, repaired or dropped); the person edits items; the LLM
changes the code to match the edited summary; the result is a candidate of origin ``summary``,
evaluated; the summary is refreshed and the changed items are reported."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.services.context import Context
from app.services.views import Granularity, SummaryEditResult, SummaryItem, SummaryView

TokenFn = Callable[[str], None]
RoutingFn = Callable[[Any], None]
ProgressFn = Callable[[str, dict[str, Any]], None]


def summarize(
    candidate_id: int,
    *,
    granularity: Granularity = "step-by-step",
    model: str | None = None,
    on_token: TokenFn | None = None,
    on_routing: RoutingFn | None = None,
    on_progress: ProgressFn | None = None,
    ctx: Context | None = None,
) -> SummaryView:
    raise NotImplementedError


def get_summary(summary_id: int, *, ctx: Context | None = None) -> SummaryView:
    raise NotImplementedError


def list_summaries(candidate_id: int, *, ctx: Context | None = None) -> list[SummaryView]:
    raise NotImplementedError


def apply_summary_edit(
    summary_id: int,
    edited_items: list[SummaryItem],
    *,
    model: str | None = None,
    evaluate: bool = True,
    on_token: TokenFn | None = None,
    on_routing: RoutingFn | None = None,
    on_progress: ProgressFn | None = None,
    ctx: Context | None = None,
) -> SummaryEditResult:
    """Send code + original summary + edited summary (differences pointed out) to the LLM,
    store the returned code as a candidate (origin ``summary``), evaluate it, refresh the
    summary and report which items changed."""
    raise NotImplementedError


def check_spans(source: str, items: list[SummaryItem]) -> tuple[list[SummaryItem], list[str]]:
    """Clamp/repair each item's spans against the code's real statements (via ``ast``); drop
    spans that cannot be repaired. Returns the items and what was repaired, in words."""
    raise NotImplementedError


def diff_items(before: list[SummaryItem], after: list[SummaryItem]) -> list[Any]:
    """Which items were added, removed or changed between two summaries (``ItemChange``)."""
    raise NotImplementedError
