"""ORM rows → the frozen views of ``app.services.views`` (inside a unit of work)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.services.views import (
    CandidateView,
    CommentView,
    ConairRoundView,
    EvaluationView,
    HotLine,
    MessageView,
    SessionInfo,
    SummaryItem,
    SummaryView,
    TestCaseView,
)
from db.models import (
    Candidate,
    CodeSummary,
    Comment,
    ConairRound,
    Evaluation,
    Message,
    OptimizationSession,
    TestCase,
)


def utc(at: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back (stored as UTC), PostgreSQL aware ones: views always
    carry aware UTC datetimes so they compare and subtract safely."""
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def session_info(row: OptimizationSession) -> SessionInfo:
    return SessionInfo(
        id=row.id,
        title=row.title,
        author=row.author,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        visibility=row.visibility,
        mode=row.mode,
        model=row.model,
        entry_point=row.entry_point,
        baseline_source=row.baseline_source,
        workload_source=row.workload_source,
        tags=list(row.tags or []),
        notes=row.notes or "",
        source_kind=row.source_kind or "paste",
        project_path=row.project_path,
        module=row.module,
        module_file=row.module_file,
        target=row.target,
        environment=row.environment,
        project_tests=list(row.project_tests or []),
    )


def message_view(row: Message, routing_trace_id: int | None = None) -> MessageView:
    return MessageView(
        id=row.id,
        role=row.role,
        kind=row.kind,
        content=row.content,
        model=row.model,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        cost=row.cost,
        latency_s=row.latency_s,
        created_at=utc(row.created_at),
        meta=dict(row.meta or {}),
        routing_trace_id=routing_trace_id,
    )


def hot_line(item: dict[str, Any]) -> HotLine:
    return HotLine(
        line=int(item.get("line") or 0),
        hits=int(item.get("hits") or 0),
        time=float(item.get("time", item.get("time_s")) or 0.0),
        share=float(item.get("share") or 0.0),
        source=str(item.get("source") or ""),
    )


def evaluation_view(row: Evaluation) -> EvaluationView:
    result = row.result or {}
    tests = result.get("tests") or {}
    return EvaluationView(
        id=row.id,
        candidate_id=row.candidate_id,
        status=row.status,
        correct=row.correct,
        tests_passed=row.tests_passed,
        tests_failed=row.tests_failed,
        test_failures=list(tests.get("failures") or []),
        equivalent=row.equivalent,
        mismatches=list(row.mismatches or []),
        speedup=row.speedup,
        ci_low=row.ci_low,
        ci_high=row.ci_high,
        verdict=row.verdict,
        peak_memory_bytes=row.peak_memory_bytes,
        line_profile=[hot_line(i) for i in row.line_profile or [] if isinstance(i, dict)],
        error=row.error,
        backend=row.backend,
        duration_s=result.get("duration_s"),
        started_at=utc(row.started_at),
        finished_at=utc(row.finished_at),
        coverage=result.get("coverage") if isinstance(result.get("coverage"), dict) else None,
    )


def candidate_view(
    row: Candidate, evaluation: Evaluation | None, *, is_best: bool = False
) -> CandidateView:
    meta = dict(row.meta or {})
    return CandidateView(
        id=row.id,
        session_id=row.session_id,
        parent_id=row.parent_id,
        origin=row.origin,
        source=row.source,
        label=row.label,
        message_id=row.message_id,
        created_at=utc(row.created_at),
        iteration=row.iteration,
        is_best=is_best,
        evaluation=evaluation_view(evaluation) if evaluation is not None else None,
        meta=meta,
    )


def test_view(row: TestCase) -> TestCaseView:
    return TestCaseView(
        id=row.id,
        name=row.name,
        source=row.source,
        origin=row.origin,
        validation=row.validation,
        corrected_source=row.corrected_source,
        round=row.round,
    )


def comment_view(row: Comment) -> CommentView:
    return CommentView(
        id=row.id,
        author=row.author,
        text=row.text,
        candidate_id=row.candidate_id,
        message_id=row.message_id,
        created_at=utc(row.created_at),
    )


def summary_items(raw: list[Any] | None) -> list[SummaryItem]:
    items = []
    for item in raw or []:
        spans = [(int(a), int(b)) for a, b in item.get("spans") or []]
        items.append(SummaryItem(text=str(item.get("text", "")), spans=spans))
    return items


def items_json(items: list[SummaryItem]) -> list[dict[str, Any]]:
    return [{"text": i.text, "spans": [list(s) for s in i.spans]} for i in items]


def summary_view(row: CodeSummary) -> SummaryView:
    repairs = [str(note) for item in row.items or [] for note in (item.get("repairs") or [])]
    return SummaryView(
        id=row.id,
        candidate_id=row.candidate_id,
        granularity=row.granularity,  # type: ignore[arg-type]
        items=summary_items(row.items),
        edited_items=summary_items(row.edited_items) if row.edited_items is not None else None,
        model=row.model,
        created_at=utc(row.created_at),
        repairs=repairs,
    )


def conair_round_view(row: ConairRound) -> ConairRoundView:
    return ConairRoundView(
        number=row.number,
        ranking=list(row.ranking or []),
        tests_shown=list(row.tests_shown or []),
        answers=list(row.answers or []),
        validations_asked=row.validations_asked,
        finished=row.finished,
        created_at=utc(row.created_at),
    )
