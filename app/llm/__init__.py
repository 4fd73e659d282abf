"""The LLM gateway: the only place that imports litellm (lazily: it costs ~2 s at import).

``stream_chat(model, messages, on_token=..., on_routing=...)`` calls any litellm model string
the same way, the local MoE backend (``perfloop-moe/<name>``) included. Failures are
``app.llm.errors.LLMError`` subclasses whose message is meant for the person.
"""

from app.llm.client import complete, is_local, litellm_module, register_provider, stream_chat
from app.llm.context import context_window, count_tokens, trim_to_window
from app.llm.errors import (
    AuthError,
    BadRequest,
    ContentRefused,
    ContextTooLong,
    LLMError,
    LLMTimeout,
    ProviderUnavailable,
    RateLimited,
    StreamInterrupted,
)
from app.llm.types import ChatResult, RoutingEvent, RoutingInfo

__all__ = [
    "AuthError",
    "BadRequest",
    "ChatResult",
    "ContentRefused",
    "ContextTooLong",
    "LLMError",
    "LLMTimeout",
    "ProviderUnavailable",
    "RateLimited",
    "RoutingEvent",
    "RoutingInfo",
    "StreamInterrupted",
    "complete",
    "context_window",
    "count_tokens",
    "is_local",
    "litellm_module",
    "register_provider",
    "stream_chat",
    "trim_to_window",
]
