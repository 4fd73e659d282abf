"""The LLM gateway: the only place that imports litellm (lazily: it costs ~2 s at import).

``stream_chat(model, messages, on_token=..., on_routing=...)`` calls any litellm model string
the same way, the local MoE backend (``perfloop-moe/<name>``) included.
"""

from app.llm.types import ChatResult, RoutingEvent, RoutingInfo

__all__ = ["ChatResult", "RoutingEvent", "RoutingInfo"]
