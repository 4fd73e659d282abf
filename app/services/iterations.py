"""Chat turns: assemble the prompt (performance system prompt, current code, profiling-guided
feedback, the conversation trimmed to the model's window), stream the reply, extract the code
it proposes, store candidates, evaluate them on the bounded pool, add a verdict message."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from app.llm import prompts
from app.services._llm import call_model
from app.services.access import Actor, acting, require_change
from app.services.candidates import base_candidate_id, store_numbered
from app.services.code import extract_code
from app.services.context import Context, get_context
from app.services.errors import InvalidInput
from app.services.evaluation import evaluate_new, evaluate_on_pool
from app.services.sessions import load_view
from app.services.views import CandidateView, EvaluationView, SessionView, TurnResult, Usage
from db import queries
from db.engine import unit_of_work

#: What the CLI (and an empty chat box) asks for.
DEFAULT_INSTRUCTION = (
    "Make the current version faster. Keep its behaviour exactly the same for every input."
)
#: Message kinds that form the conversation the model sees again.
CONVERSATION_KINDS = ("chat", "verdict")
#: How many recent candidates' verdicts go into the prompt besides the current version's.
RECENT_VERDICTS = 3
#: Local models with at most this context get the compact prompt.
COMPACT_CONTEXT = 8192

TokenFn = Callable[[str], None]
RoutingFn = Callable[[Any], None]
ProgressFn = Callable[[str, dict[str, Any]], None]


def feedback_of(candidate: CandidateView, label: str, *, current: bool = False) -> prompts.Feedback:
    """The sandbox's verdict on one candidate, reduced to what the model needs to see."""
    ev: EvaluationView | None = candidate.evaluation
    if ev is None:
        return prompts.Feedback(
            label=label, status="not evaluated", correct=None, is_current=current
        )
    return prompts.Feedback(
        label=label,
        status=ev.status,
        correct=ev.correct,
        speedup=ev.speedup,
        ci_low=ev.ci_low,
        ci_high=ev.ci_high,
        verdict=ev.verdict,
        tests_failed=ev.tests_failed,
        failures=[(str(f.get("name")), str(f.get("message", ""))) for f in ev.test_failures],
        mismatches=[str(m) for m in ev.mismatches],
        hot_lines=[
            prompts.ProfileLine(h.line, h.hits, h.time, h.share, h.source) for h in ev.line_profile
        ],
        peak_memory_bytes=ev.peak_memory_bytes,
        error=ev.error,
        is_current=current,
    )


def label_of(c: CandidateView) -> str:
    if c.origin == "baseline":
        return "the original (baseline)"
    return f"candidate {c.id} (iteration {c.iteration}, {c.origin})"


def feedback_for(view: SessionView, base: CandidateView) -> list[prompts.Feedback]:
    """The current version's verdict and profile first, then the latest other attempts."""
    items = [feedback_of(base, f"current version = {label_of(base)}", current=True)]
    others = [
        c
        for c in view.candidates
        if c.id != base.id and c.origin != "baseline" and c.evaluation is not None
    ]
    for c in others[-RECENT_VERDICTS:]:
        items.append(feedback_of(c, label_of(c)))
    return items


def conversation(view: SessionView, *, before_id: int | None = None) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for m in view.messages:
        if before_id is not None and m.id >= before_id:
            break
        if m.kind not in CONVERSATION_KINDS or m.role not in ("user", "assistant"):
            continue
        out.append({"role": m.role, "content": m.content})
    return out


def merge_roles(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Join consecutive messages of one role (some providers insist on alternation)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if out and out[-1]["role"] == m["role"] and m["role"] != "system":
            out[-1] = {**out[-1], "content": out[-1]["content"] + "\n\n" + m["content"]}
        else:
            out.append(dict(m))
    return out


def compact_prompt_for(model: str) -> bool:
    """Small local models get the compact prompt (see ``prompts.COMPACT_SYSTEM_PROMPT``):
    a local model with a context of at most ``COMPACT_CONTEXT`` tokens."""
    from app.llm import context_window, is_local

    return is_local(model) and context_window(model) <= COMPACT_CONTEXT


def build_prompt(
    view: SessionView,
    base: CandidateView,
    instruction: str,
    *,
    before_id: int | None = None,
    compact: bool = False,
) -> list[dict[str, Any]]:
    """System prompt + conversation + this turn's message (request, current code, feedback).
    ``compact``: a short system prompt and message and no history, for small models."""
    if view.info.is_module:
        from app.services.code_context import module_turn_text

        text = module_turn_text(view, base, instruction, feedback_for(view, base), compact=compact)
        system = prompts.COMPACT_SYSTEM_PROMPT if compact else prompts.SYSTEM_PROMPT
        history = [] if compact else conversation(view, before_id=before_id)
        return merge_roles(
            [{"role": "system", "content": system}, *history, {"role": "user", "content": text}]
        )
    if compact:
        text = prompts.compact_turn_message(
            instruction, code=base.source, feedback=feedback_for(view, base)
        )
        return [
            {"role": "system", "content": prompts.COMPACT_SYSTEM_PROMPT},
            {"role": "user", "content": text},
        ]
    last = prompts.turn_message(
        instruction,
        code=base.source,
        entry=view.info.entry_point,
        feedback=feedback_for(view, base),
    )
    return merge_roles(
        [{"role": "system", "content": prompts.SYSTEM_PROMPT}]
        + conversation(view, before_id=before_id)
        + [{"role": "user", "content": last}]
    )


def require_ready(view, session_id: int) -> None:  # noqa: ANN001 - a SessionView
    """Refuse to optimise a session whose inputs did not pass validation (nothing is lost:
    the session stays stored)."""
    if not view.ready:
        raise InvalidInput(
            f"This session is not ready for optimisation: {view.validation_error}",
            stored={"session_id": session_id},
        )


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
    actor: Actor | None = None,
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
    c = get_context(ctx)
    text = (text or "").strip() or DEFAULT_INSTRUCTION
    if on_progress:
        on_progress("prompt", {"session_id": session_id})
    with unit_of_work(c.engine) as s:
        require_change(s, session_id, acting(actor, c), c.settings)
        view = load_view(s, session_id)
        require_ready(view, session_id)
        model = model or view.info.model or c.model
        base = view.candidate(base_candidate_id(s, session_id, parent_id))
        user = queries.add_message(
            session=s,
            session_id=session_id,
            role="user",
            content=text,
            kind="chat",
            meta={"parent_id": base.id},
        )
        user_id = user.id
        messages = build_prompt(view, base, text, compact=compact_prompt_for(model))
        user.meta = {**user.meta, "prompt": messages[-1]["content"], "model": model}
    stored = {"session_id": session_id, "user_message_id": user_id}
    result, reply_id = call_model(
        c,
        session_id,
        messages,
        model=model,
        kind="chat",
        temperature=temperature,
        max_tokens=max_tokens,
        on_token=on_token,
        on_routing=on_routing,
        on_progress=on_progress,
        meta={"parent_id": base.id},
        stored=stored,
    )
    usage = Usage(result.prompt_tokens, result.completion_tokens, result.cost, result.latency_s)
    if on_progress:
        on_progress("extract", {"message_id": reply_id})
    extraction = extract_code(
        result.text, base.source, view.info.entry_point, spliced=view.info.is_module
    )
    notice = extraction.notice()
    if notice is not None:
        with unit_of_work(c.engine) as s:
            queries.add_message(
                session=s,
                session_id=session_id,
                role="system",
                content=notice,
                kind="notice",
                meta={"reply_id": reply_id, "problems": extraction.problems},
            )
        if on_progress:
            on_progress("done", {"candidates": 0})
        return TurnResult(
            session_id=session_id,
            user_message_id=user_id,
            assistant_message_id=reply_id,
            reply=result.text,
            candidates=[],
            verdict_message_id=None,
            usage=usage,
            notice=notice,
        )
    ids = store_proposals(c, session_id, extraction.proposals, base.id, reply_id, origin="llm")
    return _finish_turn(
        c,
        session_id,
        ids,
        evaluate=evaluate,
        on_progress=on_progress,
        result=TurnResult(
            session_id=session_id,
            user_message_id=user_id,
            assistant_message_id=reply_id,
            reply=result.text,
            candidates=[],
            verdict_message_id=None,
            usage=usage,
            notice="; ".join(extraction.problems) or None,
        ),
    )


def store_proposals(
    ctx: Context,
    session_id: int,
    proposals: Sequence[Any],
    parent_id: int,
    message_id: int | None,
    *,
    origin: str,
    extra_meta: dict[str, Any] | None = None,
) -> list[int]:

    def write(s: Any, iteration: int) -> list[int]:
        ids = []
        for p in proposals:
            row = queries.add_candidate(
                session=s,
                session_id=session_id,
                source=p.source,
                origin=origin,
                parent_id=parent_id,
                message_id=message_id,
                iteration=iteration,
                block=p.index,
                meta={"kind": p.kind, "names": list(p.names), **(extra_meta or {})},
            )
            ids.append(row.id)
        return ids

    return store_numbered(ctx, session_id, write)


def verdict_text(view: SessionView, candidate_ids: Sequence[int], errors: dict[int, str]) -> str:
    items = []
    for cid in candidate_ids:
        cand = view.candidate(cid)
        if cid in errors:
            items.append(
                prompts.Feedback(
                    label=label_of(cand), status="error", correct=None, error=errors[cid]
                )
            )
        else:
            items.append(feedback_of(cand, label_of(cand)))
    return prompts.verdict_message(items)


def _finish_turn(
    c: Context,
    session_id: int,
    ids: list[int],
    *,
    evaluate: bool,
    on_progress: ProgressFn | None,
    result: TurnResult,
) -> TurnResult:
    errors: dict[int, str] = {}
    if evaluate and ids:
        outcome = evaluate_new(ids, c, on_progress=on_progress)
        errors = {cid: err for cid, (_, _, err) in outcome.items() if err}
    verdict_id = None
    with unit_of_work(c.engine) as s:
        view = load_view(s, session_id)
        if evaluate and ids:
            verdict_id = queries.add_message(
                session=s,
                session_id=session_id,
                role="user",
                content=verdict_text(view, ids, errors),
                kind="verdict",
                meta={"candidate_ids": ids},
            ).id
        cands = [view.candidate(i) for i in ids]
    if on_progress:
        on_progress("done", {"candidates": len(ids)})
    return TurnResult(
        session_id=result.session_id,
        user_message_id=result.user_message_id,
        assistant_message_id=result.assistant_message_id,
        reply=result.reply,
        candidates=cands,
        verdict_message_id=verdict_id,
        usage=result.usage,
        notice=result.notice,
    )


def evaluate_candidate(
    candidate_id: int,
    *,
    on_progress: ProgressFn | None = None,
    actor: Actor | None = None,
    ctx: Context | None = None,
) -> EvaluationView:
    """Evaluate one candidate against the session's baseline in the sandbox, on the bounded
    pool, and store the evaluation (a row in status "running" first, then the verdict).
    Raises ``SandboxFailed`` when the sandbox itself could not run."""
    from app.services.access import session_of_candidate
    from app.services.candidates import get_candidate
    from app.services.errors import SandboxFailed

    c = get_context(ctx)
    who = acting(actor, c)
    with unit_of_work(c.engine) as s:
        require_change(s, session_of_candidate(s, candidate_id), who, c.settings)
    outcome = evaluate_on_pool([candidate_id], c, on_progress=on_progress)
    _, _, err = outcome[candidate_id]
    if err:
        raise SandboxFailed(err, stored={"candidate_id": candidate_id})
    ev = get_candidate(candidate_id, actor=who, ctx=c).evaluation
    assert ev is not None
    return ev
