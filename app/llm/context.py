"""The model's context window, token counts, and trimming a conversation to fit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.llm import errors as E

DEFAULT_WINDOW = 8192
PER_MESSAGE_OVERHEAD = 4


def _local_engine(model: str) -> Any:
    from app.moe import get_engine

    return get_engine(model.split("/", 1)[1])


def context_window(model: str) -> int:
    """Input tokens the model accepts (the local model's own context; litellm's table for
    known remote models; ``DEFAULT_WINDOW`` otherwise)."""
    from app.llm.client import is_local, litellm_module

    if is_local(model):
        return int(_local_engine(model).info.context_length)
    litellm = litellm_module()
    try:
        info = litellm.get_model_info(model)
    except Exception:  # noqa: BLE001 - unknown model: a conservative default
        return DEFAULT_WINDOW
    return int(info.get("max_input_tokens") or info.get("max_tokens") or DEFAULT_WINDOW)


def count_tokens(model: str, messages: Sequence[dict[str, Any]]) -> int:
    from app.llm.client import is_local, litellm_module

    if is_local(model):
        engine = _local_engine(model)
        return sum(
            engine.count_tokens(m.get("content") or "") + PER_MESSAGE_OVERHEAD for m in messages
        )
    litellm = litellm_module()
    try:
        return int(litellm.token_counter(model=model, messages=list(messages)))
    except Exception:  # noqa: BLE001 - fall back to ~4 characters per token
        return sum(len(m.get("content") or "") // 4 + PER_MESSAGE_OVERHEAD for m in messages)


def trim_to_window(
    model: str,
    messages: Sequence[dict[str, Any]],
    *,
    reserve: int = 1024,
    window: int | None = None,
) -> list[dict[str, Any]]:
    """Drop the oldest conversation messages until the prompt plus ``reserve`` tokens for the
    reply fits the window. The system message(s) and the last message are always kept (they
    carry the instructions and the current code); if even those do not fit, ``ContextTooLong``
    says by how much."""
    messages = [dict(m) for m in messages]
    window = context_window(model) if window is None else window
    budget = window - reserve
    head = [m for m in messages[:-1] if m["role"] == "system"]
    middle = [m for m in messages[:-1] if m["role"] != "system"]
    last = messages[-1:]
    fixed = count_tokens(model, head + last)
    if fixed > budget:
        raise E.ContextTooLong(
            f"{model}: the instructions and the current code take {fixed} tokens, but the "
            f"model's window is {window} tokens with {reserve} kept for the reply — shorten "
            "the code or choose a model with a larger context",
            model=model,
        )
    kept: list[dict[str, Any]] = []
    used = fixed
    for m in reversed(middle):
        cost = count_tokens(model, [m])
        if used + cost > budget:
            break
        kept.insert(0, m)
        used += cost
    # A conversation should not start with an assistant reply to a dropped question.
    while kept and kept[0]["role"] == "assistant":
        kept.pop(0)
    return head + kept + last
