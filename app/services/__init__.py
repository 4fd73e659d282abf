"""perfloop's use-cases, as plain Python: what the pages and the CLI call.

Every function takes ``ctx=`` (a ``Context``: database engine, sandbox backend and limits,
model, evaluation pool); without it the process-wide default from the settings is used.
Everything returned is a frozen dataclass from ``app.services.views``; errors are
``app.services.errors.ServiceError`` subclasses whose ``str()`` is the message for the person.
Long operations take ``on_token`` / ``on_routing`` / ``on_progress`` callbacks and can run in
the background with ``start_job(kind, fn, ...)`` (poll ``get_job(id).snapshot()``).
"""

from app.services.candidates import (
    add_human_candidate,
    best_candidate,
    candidate_diff,
    clear_best,
    get_candidate,
    mark_best,
)
from app.services.conair import answer_tests, conair_state, start_conair
from app.services.context import Context, get_context, set_default_context
from app.services.errors import (
    BaselineTestsFail,
    Cancelled,
    CodeDoesNotParse,
    EntryNotFound,
    ImportFailed,
    InvalidInput,
    ModelError,
    NoCodeInReply,
    NotFound,
    SandboxFailed,
    ServiceError,
    WorkloadError,
)
from app.services.exchange import export_document, export_session, import_session
from app.services.figures import eff_at_k, session_figures
from app.services.iterations import DEFAULT_INSTRUCTION, evaluate_candidate, run_turn
from app.services.jobs import Job, JobSnapshot, get_job, list_jobs, start_job
from app.services.models import ModelChoice, model_choices
from app.services.replay import get_routing, replay
from app.services.review import add_comment, list_comments, list_sessions
from app.services.sessions import (
    create_session,
    delete_session,
    get_session,
    update_session_info,
    update_session_inputs,
    validate_session,
)
from app.services.summaries import (
    apply_summary_edit,
    check_spans,
    diff_items,
    get_summary,
    list_summaries,
    summarize,
)
from app.services.views import (
    CandidateView,
    CommentView,
    ConairRoundView,
    ConairState,
    EvaluationView,
    HotLine,
    ItemChange,
    MessageView,
    RankedCandidate,
    ReplayStep,
    RoutingView,
    SessionFigures,
    SessionInfo,
    SessionView,
    SpeedupPoint,
    SummaryEditResult,
    SummaryItem,
    SummaryView,
    TestAnswer,
    TestCaseView,
    TestQuestion,
    TurnResult,
    Usage,
)


def start_turn(session_id: int, text: str = DEFAULT_INSTRUCTION, **kwargs) -> Job:
    """``run_turn`` in the background; poll ``get_job(job.id).snapshot()``."""
    return start_job("turn", run_turn, session_id, text, session_id=session_id, **kwargs)


def start_evaluation(candidate_id: int, *, session_id: int | None = None, **kwargs) -> Job:
    """``evaluate_candidate`` in the background."""
    return start_job(
        "evaluation", evaluate_candidate, candidate_id, session_id=session_id, **kwargs
    )


def start_validation(session_id: int, **kwargs) -> Job:
    """``validate_session`` (baseline checks + iteration 0) in the background."""
    return start_job("validation", validate_session, session_id, session_id=session_id, **kwargs)


__all__ = [
    "BaselineTestsFail",
    "Cancelled",
    "CandidateView",
    "CodeDoesNotParse",
    "CommentView",
    "ConairRoundView",
    "ConairState",
    "Context",
    "DEFAULT_INSTRUCTION",
    "EntryNotFound",
    "EvaluationView",
    "HotLine",
    "ImportFailed",
    "InvalidInput",
    "ItemChange",
    "Job",
    "JobSnapshot",
    "MessageView",
    "ModelChoice",
    "ModelError",
    "NoCodeInReply",
    "NotFound",
    "RankedCandidate",
    "ReplayStep",
    "RoutingView",
    "SandboxFailed",
    "ServiceError",
    "SessionFigures",
    "SessionInfo",
    "SessionView",
    "SpeedupPoint",
    "SummaryEditResult",
    "SummaryItem",
    "SummaryView",
    "TestAnswer",
    "TestCaseView",
    "TestQuestion",
    "TurnResult",
    "Usage",
    "WorkloadError",
    "add_comment",
    "add_human_candidate",
    "answer_tests",
    "apply_summary_edit",
    "best_candidate",
    "candidate_diff",
    "check_spans",
    "clear_best",
    "conair_state",
    "create_session",
    "delete_session",
    "diff_items",
    "eff_at_k",
    "evaluate_candidate",
    "export_document",
    "export_session",
    "get_candidate",
    "get_context",
    "get_job",
    "get_routing",
    "get_session",
    "get_summary",
    "import_session",
    "list_comments",
    "list_jobs",
    "list_sessions",
    "list_summaries",
    "mark_best",
    "model_choices",
    "replay",
    "run_turn",
    "session_figures",
    "set_default_context",
    "start_conair",
    "start_evaluation",
    "start_job",
    "start_turn",
    "start_validation",
    "summarize",
    "update_session_info",
    "update_session_inputs",
    "validate_session",
]
