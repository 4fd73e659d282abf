"""ConAIR mode: the LLM proposes n candidates and m tests; the sandbox runs the candidate x test
matrix and compares the candidates' outputs on the workload (behaviour clusters); candidates
are ranked by consistency; the person validates the few tests that split the top candidates
most; validated tests dominate the ranking, rejected ones are repaired by the LLM, candidates
failing trusted tests are sent back with those failures. Every round is a ``conair_round`` row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.services.context import Context
from app.services.views import ConairState, TestAnswer

DEFAULT_CANDIDATES = 4
DEFAULT_TESTS = 6
QUESTIONS_PER_ROUND = 2
MAX_ROUNDS = 5

TokenFn = Callable[[str], None]
RoutingFn = Callable[[Any], None]
ProgressFn = Callable[[str, dict[str, Any]], None]


def start_conair(
    session_id: int,
    *,
    instruction: str | None = None,
    n_candidates: int = DEFAULT_CANDIDATES,
    n_tests: int = DEFAULT_TESTS,
    questions_per_round: int = QUESTIONS_PER_ROUND,
    model: str | None = None,
    on_token: TokenFn | None = None,
    on_routing: RoutingFn | None = None,
    on_progress: ProgressFn | None = None,
    ctx: Context | None = None,
) -> ConairState:
    """Round 1: ask the LLM for candidates and tests, run the matrix, rank, pick questions."""
    raise NotImplementedError


def conair_state(session_id: int, *, ctx: Context | None = None) -> ConairState:
    """The current ConAIR state of a session (raises ``NotFound`` if ConAIR never started)."""
    raise NotImplementedError


def answer_tests(
    session_id: int,
    answers: list[TestAnswer],
    *,
    validated_by: str | None = None,
    repair: bool = True,
    max_rounds: int = MAX_ROUNDS,
    model: str | None = None,
    on_token: TokenFn | None = None,
    on_routing: RoutingFn | None = None,
    on_progress: ProgressFn | None = None,
    ctx: Context | None = None,
) -> ConairState:
    """Record the person's answers (accept / reject / correct), re-rank, and unless the top
    candidate passes every trusted test with a stable ranking (or the round limit is hit) let
    the LLM repair rejected tests and failing candidates, re-run the matrix and open the next
    round with new questions."""
    raise NotImplementedError
