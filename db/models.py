"""The domain model: every session, message, candidate, verdict, test, summary, routing trace
and comment is a row here the moment it happens.

Enumerations are stored as short strings (no native enum types) so that adding a value is not a
schema change on PostgreSQL; the allowed values are the ``*_VALUES`` tuples below and are checked
in Python when a row is written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

VISIBILITY_VALUES = ("private", "team", "public")
ROLE_VALUES = ("system", "user", "assistant", "tool")
ORIGIN_VALUES = ("baseline", "llm", "human", "summary", "conair")
EVAL_STATUS_VALUES = (
    "pending",
    "running",
    "ok",
    "failed",
    "timeout",
    "memory",
    "output_limit",
    "crashed",
    "tampered",
    "error",
    "interrupted",  # its worker died mid-run (see Job); the person can run it again
)
VERDICT_VALUES = ("faster", "slower", "not significant")
TEST_ORIGIN_VALUES = ("user", "llm")
VALIDATION_VALUES = ("unvalidated", "accepted", "rejected", "corrected")
GRANULARITY_VALUES = ("overview", "step-by-step", "line-by-line")
MODE_VALUES = ("chat", "conair", "summary")
JOB_STATE_VALUES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
#: A job in one of these states holds its session (see ``Job.holds_session``).
JOB_ACTIVE_STATES = ("queued", "running")
SOURCE_KIND_VALUES = ("paste", "project", "archive", "installed")
#: Roles per instance: admin (everything, manages roles), editor (creates and works sessions,
#: comments), viewer (reads what visibility allows, comments).
USER_ROLE_VALUES = ("admin", "editor", "viewer")
AUDIT_ACTION_VALUES = (
    "create",
    "visibility",
    "delete",
    "export",
    "import",
    "comment",
    "role",
    "sign-in",
)

# Stable constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _check(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    if value is not None and value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class OptimizationSession(Base):
    __tablename__ = "optimization_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    author: Mapped[str] = mapped_column(String(100), default="anonymous")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    visibility: Mapped[str] = mapped_column(String(16), default="team")
    mode: Mapped[str] = mapped_column(String(16), default="chat")
    model: Mapped[str | None] = mapped_column(String(200))
    baseline_source: Mapped[str] = mapped_column(Text)
    entry_point: Mapped[str] = mapped_column(String(200))
    workload_source: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    # Where the code lives. "paste": baseline_source is module `target`, entry_point a name.
    # Otherwise baseline_source is the whole source of `module` (file `module_file`, relative
    # to `project_path`, or to the environment's site-packages for "installed"), `target` is
    # MODULE:QUALNAME and entry_point its qualname.
    source_kind: Mapped[str] = mapped_column(String(16), default="paste", server_default="paste")
    project_path: Mapped[str | None] = mapped_column(Text)
    module: Mapped[str | None] = mapped_column(String(200))
    module_file: Mapped[str | None] = mapped_column(String(500))
    target: Mapped[str | None] = mapped_column(String(400))
    environment: Mapped[str | None] = mapped_column(Text)
    # Test files / pytest node ids of the project, relative to its root.
    project_tests: Mapped[list[Any] | None] = mapped_column()

    messages: Mapped[list[Message]] = relationship(
        back_populates="session",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Message.id",
    )
    candidates: Mapped[list[Candidate]] = relationship(
        back_populates="session",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Candidate.id",
    )
    test_cases: Mapped[list[TestCase]] = relationship(
        back_populates="session",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="TestCase.id",
    )
    comments: Mapped[list[Comment]] = relationship(
        back_populates="session",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Comment.id",
    )
    conair_rounds: Mapped[list[ConairRound]] = relationship(
        back_populates="session",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ConairRound.number",
    )

    __table_args__ = (
        Index("ix_optimization_session_created_at", "created_at"),
        Index("ix_optimization_session_updated_at", "updated_at"),
    )

    @validates("visibility")
    def _v_visibility(self, _key: str, value: str) -> str | None:
        return _check(value, VISIBILITY_VALUES, "visibility")

    @validates("mode")
    def _v_mode(self, _key: str, value: str) -> str | None:
        return _check(value, MODE_VALUES, "mode")

    @validates("source_kind")
    def _v_source_kind(self, _key: str, value: str) -> str | None:
        return _check(value, SOURCE_KIND_VALUES, "source_kind")


class Message(Base):
    __tablename__ = "message"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("optimization_session.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str | None] = mapped_column(String(200))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[float | None] = mapped_column(Float)
    latency_s: Mapped[float | None] = mapped_column(Float)
    # What the message is for in the workflow (chat, verdict, conair, summary, error...).
    kind: Mapped[str] = mapped_column(String(32), default="chat")
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    session: Mapped[OptimizationSession] = relationship(back_populates="messages")
    routing_traces: Mapped[list[RoutingTrace]] = relationship(
        back_populates="message", cascade="all, delete-orphan", passive_deletes=True
    )

    @validates("role")
    def _v_role(self, _key: str, value: str) -> str | None:
        return _check(value, ROLE_VALUES, "role")


class Candidate(Base):
    __tablename__ = "candidate"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("optimization_session.id", ondelete="CASCADE"), index=True
    )
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("candidate.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id", ondelete="SET NULL"))
    label: Mapped[str | None] = mapped_column(String(100))
    # 0 = the baseline, then one number per turn / ConAIR round / summary or hand edit; the
    # candidates one reply proposes share it and differ by ``block`` (the code block's index).
    iteration: Mapped[int] = mapped_column(Integer, default=0)
    block: Mapped[int] = mapped_column(Integer, default=0)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    session: Mapped[OptimizationSession] = relationship(back_populates="candidates")
    parent: Mapped[Candidate | None] = relationship(remote_side="Candidate.id")
    evaluations: Mapped[list[Evaluation]] = relationship(
        back_populates="candidate",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Evaluation.id",
    )
    summaries: Mapped[list[CodeSummary]] = relationship(
        back_populates="candidate",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="CodeSummary.id",
    )

    __table_args__ = (
        # Two processes handing out one number lose to the database, not to a race.
        UniqueConstraint("session_id", "iteration", "block", name="uq_candidate_iteration"),
    )

    @validates("origin")
    def _v_origin(self, _key: str, value: str) -> str | None:
        return _check(value, ORIGIN_VALUES, "origin")


class Evaluation(Base):
    __tablename__ = "evaluation"

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(
        ForeignKey("candidate.id", ondelete="CASCADE"), index=True
    )
    backend: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    correct: Mapped[bool | None] = mapped_column(Boolean)
    tests_passed: Mapped[int | None] = mapped_column(Integer)
    tests_failed: Mapped[int | None] = mapped_column(Integer)
    equivalent: Mapped[bool | None] = mapped_column(Boolean)
    mismatches: Mapped[list[Any]] = mapped_column(default=list)
    timing: Mapped[dict[str, Any]] = mapped_column(default=dict)  # raw samples + summaries
    speedup: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    verdict: Mapped[str | None] = mapped_column(String(16))
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    line_profile: Mapped[list[Any]] = mapped_column(default=list)
    stdout_excerpt: Mapped[str] = mapped_column(Text, default="")
    stderr_excerpt: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the sandbox's whole verdict
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # The job that ran it: when that job's worker dies, the evaluation becomes "interrupted".
    job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))

    candidate: Mapped[Candidate] = relationship(back_populates="evaluations")

    @validates("status")
    def _v_status(self, _key: str, value: str) -> str | None:
        return _check(value, EVAL_STATUS_VALUES, "status")

    @validates("verdict")
    def _v_verdict(self, _key: str, value: str | None) -> str | None:
        return _check(value, VERDICT_VALUES, "verdict")


class TestCase(Base):
    __tablename__ = "test_case"
    __test__ = False  # not a pytest class

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("optimization_session.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16), default="user")
    validation: Mapped[str] = mapped_column(String(16), default="unvalidated")
    corrected_source: Mapped[str | None] = mapped_column(Text)
    validated_by: Mapped[str | None] = mapped_column(String(100))
    validated_at: Mapped[datetime | None] = mapped_column()
    round: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    session: Mapped[OptimizationSession] = relationship(back_populates="test_cases")

    @validates("origin")
    def _v_origin(self, _key: str, value: str) -> str | None:
        return _check(value, TEST_ORIGIN_VALUES, "test origin")

    @validates("validation")
    def _v_validation(self, _key: str, value: str) -> str | None:
        return _check(value, VALIDATION_VALUES, "validation")


class CodeSummary(Base):
    __tablename__ = "code_summary"

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(
        ForeignKey("candidate.id", ondelete="CASCADE"), index=True
    )
    granularity: Mapped[str] = mapped_column(String(16))
    # [{"text": str, "spans": [[first_line, last_line], ...]}, ...]
    items: Mapped[list[Any]] = mapped_column(default=list)
    edited_items: Mapped[list[Any] | None] = mapped_column(JSON)
    model: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    candidate: Mapped[Candidate] = relationship(back_populates="summaries")

    @validates("granularity")
    def _v_granularity(self, _key: str, value: str) -> str | None:
        return _check(value, GRANULARITY_VALUES, "granularity")


class RoutingTrace(Base):
    """Which experts each token of one reply was routed to, per MoE layer.

    ``expert_ids`` and ``gate_weights`` are compact binary arrays of shape
    (tokens, layers, top_k) — ids as uint8/uint16, weights as float16, compressed — whose exact
    layout is named by ``encoding`` and implemented in app/moe. A 2,000-token reply over 48
    layers with top-8 is about 2 MB before compression.
    """

    __tablename__ = "routing_trace"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), index=True
    )
    model: Mapped[str] = mapped_column(String(200))
    layer_count: Mapped[int] = mapped_column(Integer)
    expert_count: Mapped[int] = mapped_column(Integer)
    top_k: Mapped[int] = mapped_column(Integer)
    token_count: Mapped[int] = mapped_column(Integer)
    prompt_token_count: Mapped[int] = mapped_column(Integer, default=0)
    # True when the "experts" are MoEfied neuron groups of a dense model, not trained experts.
    moefied: Mapped[bool] = mapped_column(Boolean, default=False)
    tokens: Mapped[list[Any]] = mapped_column(default=list)  # token texts, in order
    encoding: Mapped[str] = mapped_column(String(32))
    expert_ids: Mapped[bytes] = mapped_column(LargeBinary)
    gate_weights: Mapped[bytes] = mapped_column(LargeBinary)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    message: Mapped[Message] = relationship(back_populates="routing_traces")


class Comment(Base):
    """A review comment, on a session and optionally anchored to one candidate or message."""

    __tablename__ = "comment"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("optimization_session.id", ondelete="CASCADE"), index=True
    )
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("candidate.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    session: Mapped[OptimizationSession] = relationship(back_populates="comments")


class ConairRound(Base):
    """One round of ConAIR: the ranking, the tests shown, the person's answers, the effort."""

    __tablename__ = "conair_round"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("optimization_session.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    ranking: Mapped[list[Any]] = mapped_column(default=list)  # [{"candidate_id", "score"}, ...]
    matrix: Mapped[dict[str, Any]] = mapped_column(default=dict)  # candidate x test outcomes
    tests_shown: Mapped[list[Any]] = mapped_column(default=list)  # test_case ids
    answers: Mapped[list[Any]] = mapped_column(default=list)  # [{"test_case_id", "answer", ...}]
    validations_asked: Mapped[int] = mapped_column(Integer, default=0)
    finished: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    session: Mapped[OptimizationSession] = relationship(back_populates="conair_rounds")


class Job(Base):
    """One background action (a chat turn, an evaluation, a validation, a ConAIR round...),
    durable: any process can show it, cancel it (``cancel_requested``, which the worker checks)
    or, when its worker's ``heartbeat_at`` goes stale, mark it ``interrupted``.

    ``kind`` names a job function in ``app.services.job_kinds`` and ``params`` its JSON
    arguments, so whichever process claims the row can run it. ``text`` is the reply streamed
    so far (written in batches), ``progress`` the (stage, info) events, ``routing_tail`` the
    latest MoE routing events for the live heatmap (bounded).
    """

    __tablename__ = "job"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("optimization_session.id", ondelete="CASCADE"), index=True
    )
    started_by: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    # True for kinds that change the session's candidates (a turn, a ConAIR round, an edit):
    # at most one such job is queued or running per session (the partial unique index below).
    holds_session: Mapped[bool] = mapped_column(Boolean, default=False)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    progress: Mapped[list[Any]] = mapped_column(default=list)
    text: Mapped[str] = mapped_column(Text, default="")
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    routing_tail: Mapped[list[Any]] = mapped_column(default=list)
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    error_type: Mapped[str | None] = mapped_column(String(64))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    rerun_of: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))

    __table_args__ = (
        Index("ix_job_state", "state"),
        Index(
            "uq_job_session_busy",
            "session_id",
            unique=True,
            sqlite_where=sql_text("holds_session = 1 AND state IN ('queued', 'running')"),
            postgresql_where=sql_text("holds_session AND state IN ('queued', 'running')"),
        ),
    )

    @validates("state")
    def _v_state(self, _key: str, value: str) -> str | None:
        return _check(value, JOB_STATE_VALUES, "job state")


class User(Base):
    """A person who signed in (OpenID Connect) or was named on the CLI with ``--as``.

    ``name`` is the identity sessions and comments record as their author: the provider's
    e-mail claim when it has one, else its ``sub``. ``issuer``/``subject`` tie the row to the
    provider's account, so a changed e-mail does not make a new person.
    """

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    issuer: Mapped[str | None] = mapped_column(String(500))
    subject: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="editor")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_app_user_identity"),)

    @validates("role")
    def _v_role(self, _key: str, value: str) -> str | None:
        return _check(value, USER_ROLE_VALUES, "role")


class AuditEvent(Base):
    """Who created, changed the visibility of, deleted, exported, imported or commented on a
    session, and who changed whose role. ``session_id`` is not a foreign key: the record of a
    deletion outlives the session."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(16))
    session_id: Mapped[int | None] = mapped_column(Integer, index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (Index("ix_audit_event_at", "at"),)

    @validates("action")
    def _v_action(self, _key: str, value: str) -> str | None:
        return _check(value, AUDIT_ACTION_VALUES, "audit action")
