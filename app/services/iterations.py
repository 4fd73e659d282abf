"""Chat turns: assemble the prompt (performance system prompt, current code, profiling-guided
feedback, the conversation trimmed to the model's window), stream the reply, extract the code
it proposes, store candidates, evaluate them on the bounded pool, add a verdict message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.services.context import Context
from app.services.views import EvaluationView, TurnResult

#: What the CLI (and an empty chat box) asks for.
DEFAULT_INSTRUCTION = (
    "Make the current version faster. Keep its behaviour exactly the same for every input."
)

TokenFn = Callable[[str], None]
RoutingFn = Callable[[Any], None]
ProgressFn = Callable[[str, dict[str, Any]], None]


def run_turn(
    session_id: int,
    text: str = DEFAULT_INSTRUCTION,
    *,
    parent_id: int | None = None,
    model: str | None = None,
    temperature: float = 0.0,
    max_tokens: int | None = None,
    evaluate: bool = True,
    on_token: TokenFn | None = None,
    on_routing: RoutingFn | None = None,
    on_progress: ProgressFn | None = None,
    ctx: Context | None = None,
) -> TurnResult:
    """One chat turn, blocking until every proposed candidate is evaluated.

    ``parent_id`` picks the version to improve (branching from any candidate); default: the
    best candidate, else the baseline. The user's message is stored before the call, the
    reply as soon as it is complete (a partial reply is stored with kind ``error`` if the
    provider fails mid-stream, then ``ModelError`` is raised). A reply without code returns a
    ``TurnResult`` with no candidates and a ``notice``. Progress stages: "prompt", "llm",
    "extract", then per candidate the sandbox's stages with ``info["candidate_id"]``, "done".
    """
    raise NotImplementedError


def evaluate_candidate(
    candidate_id: int,
    *,
    on_progress: ProgressFn | None = None,
    ctx: Context | None = None,
) -> EvaluationView:
    """Evaluate one candidate against the session's baseline in the sandbox, on the bounded
    pool, and store the evaluation (a row in status "running" first, then the verdict)."""
    raise NotImplementedError
