"""One LLM call inside a use-case: stream it, store the reply (or, on failure, what arrived
and why it stopped) with usage, cost, latency and routing trace, translate errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.llm import LLMError, StreamInterrupted, stream_chat, trim_to_window
from app.llm.types import ChatResult
from app.services.context import Context
from app.services.errors import Cancelled, ModelError
from app.services.routing import store_trace
from db import queries
from db.engine import unit_of_work

DEFAULT_REPLY_TOKENS = 1024


def call_model(
    ctx: Context,
    session_id: int,
    messages: list[dict[str, Any]],
    *,
    model: str,
    kind: str,
    temperature: float = 0.0,
    max_tokens: int | None = None,
    on_token: Callable[[str], None] | None = None,
    on_routing: Callable[[Any], None] | None = None,
    on_progress: Callable[[str, dict[str, Any]], None] | None = None,
    meta: dict[str, Any] | None = None,
    stored: dict[str, Any] | None = None,
) -> tuple[ChatResult, int]:
    """Returns (result, id of the stored assistant message). On failure the partial reply is
    stored (kind ``error``) and ``ModelError`` raised; ``Cancelled`` likewise."""
    reserve = max_tokens or DEFAULT_REPLY_TOKENS
    stored = dict(stored or {})
    partial: list[str] = []

    def token(text: str) -> None:
        partial.append(text)
        if on_token is not None:
            on_token(text)

    try:
        prompt = trim_to_window(model, messages, reserve=reserve)
        if on_progress is not None:
            on_progress("llm", {"model": model, "messages": len(prompt)})
        result = stream_chat(
            model,
            prompt,
            on_token=token,
            on_routing=on_routing,
            temperature=temperature,
            max_tokens=max_tokens,
            timeout=ctx.settings.llm_timeout_s,
            max_retries=ctx.settings.llm_max_retries,
            options=ctx.llm_options,
        )
    except (LLMError, Cancelled) as exc:
        text = exc.partial_text if isinstance(exc, StreamInterrupted) else "".join(partial)
        reason = "cancelled" if isinstance(exc, Cancelled) else str(exc)
        with unit_of_work(ctx.engine) as s:
            msg = queries.add_message(
                session=s,
                session_id=session_id,
                role="assistant",
                content=text,
                model=model,
                kind="error",
                meta={**(meta or {}), "error": reason, "partial": bool(text), "for": kind},
            )
            stored["message_id"] = msg.id
        if isinstance(exc, Cancelled):
            exc.stored.update(stored)
            raise
        raise ModelError(str(exc), retryable=exc.retryable, stored=stored) from exc
    with unit_of_work(ctx.engine) as s:
        msg = queries.add_message(
            session=s,
            session_id=session_id,
            role="assistant",
            content=result.text,
            model=model,
            kind=kind,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            cost=result.cost,
            latency_s=result.latency_s,
            meta={
                **(meta or {}),
                "first_token_s": result.first_token_s,
                "finish_reason": result.finish_reason,
                "attempts": result.attempts,
                "prompt_messages": len(prompt),
            },
        )
        store_trace(s, msg.id, result)
        queries.touch_session(session_id, session=s)
        return result, msg.id
