"""Plain, frozen dataclasses the services return. They hold no ORM objects, so a Streamlit page
can keep them across reruns after the unit of work that read them has closed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Granularity = Literal["overview", "step-by-step", "line-by-line"]
Answer = Literal["accept", "reject", "correct"]


@dataclass(frozen=True)
class SessionInfo:
    id: int
    title: str
    author: str
    created_at: datetime
    updated_at: datetime
    visibility: str
    mode: str
    model: str | None
    entry_point: str
    baseline_source: str
    workload_source: str
    tags: list[str]
    notes: str
    # Where the code lives (see db.models.OptimizationSession): "paste" for a pasted module.
    source_kind: str = "paste"
    project_path: str | None = None
    module: str | None = None
    module_file: str | None = None
    target: str | None = None
    environment: str | None = None
    project_tests: list[str] = field(default_factory=list)

    @property
    def is_module(self) -> bool:
        """The code is a real module (project or installed package), not a pasted `target`."""
        return self.module is not None


@dataclass(frozen=True)
class MessageView:
    id: int
    role: str
    kind: str  # chat | verdict | error | notice | conair | summary | instruction
    content: str
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float | None
    latency_s: float | None
    created_at: datetime
    meta: dict[str, Any] = field(default_factory=dict)
    routing_trace_id: int | None = None


@dataclass(frozen=True)
class HotLine:
    """One line of the line profile (the candidate's entry function and what it calls)."""

    line: int
    hits: int
    time: float
    share: float  # 0..1 of the profiled time
    source: str


@dataclass(frozen=True)
class EvaluationView:
    id: int
    candidate_id: int
    status: str  # pending | running | ok | failed | timeout | memory | ... | error
    correct: bool | None
    tests_passed: int | None
    tests_failed: int | None
    test_failures: list[dict[str, Any]]  # [{"name", "message"}]
    equivalent: bool | None
    mismatches: list[Any]
    speedup: float | None
    ci_low: float | None
    ci_high: float | None
    verdict: str | None  # faster | slower | not significant
    peak_memory_bytes: int | None
    line_profile: list[HotLine]
    error: str | None
    backend: str
    duration_s: float | None
    started_at: datetime | None
    finished_at: datetime | None
    # The selected tests' coverage of the target: {"lines", "covered", "missing"} (module
    # sessions whose sandbox measured it), else None.
    coverage: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.status not in ("pending", "running")

    def hottest(self, n: int = 5) -> list[HotLine]:
        return sorted(self.line_profile, key=lambda h: h.time, reverse=True)[:n]


@dataclass(frozen=True)
class CandidateView:
    id: int
    session_id: int
    parent_id: int | None
    origin: str  # baseline | llm | human | summary | conair
    source: str
    label: str | None
    message_id: int | None
    created_at: datetime
    iteration: int  # 0 = the baseline; then one per chat turn / ConAIR round / summary edit
    is_best: bool
    evaluation: EvaluationView | None  # the latest one
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TestCaseView:
    __test__ = False  # not a pytest class

    id: int
    name: str
    source: str
    origin: str  # user | llm
    validation: str  # unvalidated | accepted | rejected | corrected
    corrected_source: str | None
    round: int | None

    @property
    def effective_source(self) -> str:
        return self.corrected_source or self.source


@dataclass(frozen=True)
class CommentView:
    id: int
    author: str
    text: str
    candidate_id: int | None
    message_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class SpeedupPoint:
    """One point of the speedup chart: a candidate's latest evaluation."""

    iteration: int
    candidate_id: int
    origin: str
    speedup: float | None
    ci_low: float | None
    ci_high: float | None
    verdict: str | None
    correct: bool | None


@dataclass(frozen=True)
class SessionFigures:
    best_candidate_id: int | None
    best_speedup: float | None
    best_ci: tuple[float, float] | None
    candidates_tried: int  # excluding the baseline
    candidates_correct: int
    candidates_faster: int
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None  # None when no call's cost is known
    llm_time_s: float
    eval_time_s: float
    wall_time_s: float  # first to last row of the session
    eff_at_k: dict[int, float]  # ENAMEL eff@k over the candidates, k = 1, 5, 10 where n >= k
    series: list[SpeedupPoint]

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class SessionView:
    """Everything a page shows about one session."""

    info: SessionInfo
    messages: list[MessageView]
    candidates: list[CandidateView]  # in creation order; parent_id makes the tree
    tests: list[TestCaseView]
    comments: list[CommentView]
    figures: SessionFigures
    ready: bool  # the baseline passed validation and was evaluated
    validation_error: str | None  # why not ready, in words

    def candidate(self, candidate_id: int) -> CandidateView:
        for c in self.candidates:
            if c.id == candidate_id:
                return c
        raise KeyError(candidate_id)

    def children(self, candidate_id: int | None) -> list[CandidateView]:
        return [c for c in self.candidates if c.parent_id == candidate_id]

    @property
    def baseline(self) -> CandidateView | None:
        return next((c for c in self.candidates if c.origin == "baseline"), None)

    @property
    def best(self) -> CandidateView | None:
        return next((c for c in self.candidates if c.is_best), None)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    latency_s: float = 0.0


@dataclass(frozen=True)
class TurnResult:
    """What one chat turn produced. ``notice`` explains an empty ``candidates`` list."""

    session_id: int
    user_message_id: int
    assistant_message_id: int
    reply: str
    candidates: list[CandidateView]
    verdict_message_id: int | None
    usage: Usage
    notice: str | None = None


@dataclass(frozen=True)
class RankedCandidate:
    candidate_id: int
    rank: int  # 1 = best
    score: float
    tests_passed: int  # generated tests of the run it passes (the matrix)
    # Failures on trusted evidence: accepted/corrected tests, the session's own tests, and
    # different outputs from the baseline on the workload (counts 1).
    trusted_failed: int
    cluster: int  # behaviour cluster index (same outputs on the workload)
    correct: bool | None = None  # on trusted evidence (its latest evaluation); None: unknown
    unvalidated_failed: int = 0  # generated tests nobody validated yet that it fails …
    unvalidated_total: int = 0  # … of this many (they rank, they never make it "incorrect")
    speedup: float | None = None  # its latest evaluation's speedup and 95% CI
    ci_low: float | None = None
    ci_high: float | None = None
    verdict: str | None = None  # faster | slower | not significant


@dataclass(frozen=True)
class TestQuestion:
    """A test the person is asked to validate, and why it was chosen."""

    __test__ = False

    test: TestCaseView
    split: float  # how evenly it splits the top candidates (1 = half pass, half fail)
    passing: list[int]  # ids of the top candidates passing it
    failing: list[int]  # ids of the top candidates failing it
    # The original code fails it: it contradicts the baseline, whose behaviour an
    # optimisation keeps, so it is asked about first (most likely its expectation is wrong).
    contradicts_baseline: bool = False


@dataclass(frozen=True)
class ConairRoundView:
    number: int
    ranking: list[dict[str, Any]]
    tests_shown: list[int]
    answers: list[dict[str, Any]]
    validations_asked: int
    finished: bool
    created_at: datetime


@dataclass(frozen=True)
class TestAnswer:
    """The person's answer on one shown test; ``corrected_source`` only with ``correct``."""

    __test__ = False

    test_case_id: int
    answer: Answer
    corrected_source: str | None = None


@dataclass(frozen=True)
class ConairState:
    session_id: int
    round: int  # the current round's number (1-based)
    candidates: list[CandidateView]
    tests: list[TestCaseView]
    # matrix[candidate_id][test_case_id] = "pass" | "fail" | "error"
    matrix: dict[int, dict[int, str]]
    clusters: list[list[int]]  # candidate ids with identical workload behaviour
    ranking: list[RankedCandidate]
    questions: list[TestQuestion]  # tests to validate now (empty when finished)
    effort: int  # validations asked so far, all rounds of this run
    rounds: list[ConairRoundView]
    finished: bool
    reason: str | None = None  # why it finished: "top passes every trusted test", "round limit"
    run: int = 1  # ConAIR runs of the session, 1-based; a finished run can be followed by another
    # baseline_outcomes[test_case_id] = "pass" | "fail" | "error": the original code on the tests
    baseline_outcomes: dict[int, str] = field(default_factory=dict)

    @property
    def top(self) -> RankedCandidate | None:
        return self.ranking[0] if self.ranking else None


@dataclass(frozen=True)
class SummaryItem:
    """One bullet of a code summary; ``spans`` are 1-based inclusive line ranges of the code."""

    text: str
    spans: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class SummaryView:
    id: int
    candidate_id: int
    granularity: Granularity
    items: list[SummaryItem]
    edited_items: list[SummaryItem] | None
    model: str | None
    created_at: datetime
    repairs: list[str] = field(default_factory=list)  # spans fixed or dropped, in words


@dataclass(frozen=True)
class ItemChange:
    """How one item differs between two summaries: added, removed or changed."""

    kind: Literal["added", "removed", "changed"]
    before: SummaryItem | None
    after: SummaryItem | None


@dataclass(frozen=True)
class SummaryEditResult:
    candidate: CandidateView  # origin "summary", evaluated
    summary: SummaryView  # the refreshed summary of the new candidate
    changes: list[ItemChange]  # refreshed vs edited summary
    edit_changes: list[ItemChange]  # edited vs original: what the person asked for
    diff: str  # unified diff, old -> new code
    message_id: int


@dataclass(frozen=True)
class RoutingView:
    """A stored routing trace, decoded: experts[token][layer] = ids, weights likewise."""

    id: int
    message_id: int
    model: str
    layer_count: int
    expert_count: int
    top_k: int
    moefied: bool
    tokens: list[str]
    experts: list[list[list[int]]]
    weights: list[list[list[float]]]


@dataclass(frozen=True)
class ReplayStep:
    """One step of a replayed session, in the order things happened."""

    index: int
    kind: Literal["message", "candidate", "evaluation", "conair_round", "summary", "comment"]
    at: datetime
    message: MessageView | None = None
    candidate: CandidateView | None = None
    evaluation: EvaluationView | None = None
    conair_round: ConairRoundView | None = None
    summary: SummaryView | None = None
    comment: CommentView | None = None
    routing: RoutingView | None = None
