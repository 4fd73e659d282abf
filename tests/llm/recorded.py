"""A stand-in for remote providers, which this environment cannot reach: a litellm custom
provider that replays a recorded transcript (one reply per call, streamed in small chunks)
and records the messages it was sent. Tests that use it say so in their names."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from app.llm import litellm_module

# Through app.llm, so litellm is configured the way the app configures it (offline price list).
litellm = litellm_module()
CustomLLM = litellm.CustomLLM

PROVIDER = "recorded"


@dataclass
class Broken:
    """A reply that streams ``text`` and then fails with ``error`` (a provider error
    mid-stream)."""

    text: str
    error: Exception


@dataclass
class Transcript(CustomLLM):
    replies: list[str | Broken | Exception] = field(default_factory=list)
    chunk: int = 7
    calls: list[list[dict[str, Any]]] = field(default_factory=list)
    # Recorded routing: like the local MoE provider, report each chunk's experts (2 layers,
    # top-2 of 4, deterministic) to the sink app.llm passes in litellm's metadata.
    routing: bool = False
    delay_s: float = 0.0  # pause before each chunk (a slow provider)

    def __post_init__(self) -> None:
        super().__init__()

    def streaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Iterator[dict]:
        self.calls.append([dict(m) for m in messages])
        if not self.replies:
            raise AssertionError("the recorded transcript has no reply left for this call")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        text = reply.text if isinstance(reply, Broken) else reply
        sink = ((kwargs.get("litellm_params") or {}).get("metadata") or {}).get("perfloop_routing")
        if self.routing and sink is not None:
            from app.llm.types import RoutingInfo

            sink.set_info(RoutingInfo("recorded-moe", 2, 4, 2, moefied=False))
        for n, i in enumerate(range(0, len(text), self.chunk)):
            piece = text[i : i + self.chunk]
            if self.routing and sink is not None:
                from app.llm.types import RoutingEvent

                experts = [[n % 4, (n + 1) % 4], [(n + 2) % 4, (n + 3) % 4]]
                sink.event(RoutingEvent(n, piece, None, experts, [[0.75, 0.25], [0.5, 0.5]]))
            if self.delay_s:
                time.sleep(self.delay_s)
            yield _chunk(piece)
        if isinstance(reply, Broken):
            raise reply.error
        prompt = sum(len(m.get("content") or "") for m in messages) // 4
        done = len(text) // 4
        yield _chunk(
            "",
            finished=True,
            usage={
                "prompt_tokens": prompt,
                "completion_tokens": done,
                "total_tokens": prompt + done,
            },
        )

    def completion(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - we stream
        raise NotImplementedError


def _chunk(text: str, *, finished: bool = False, usage: dict | None = None) -> dict:
    return {
        "text": text,
        "is_finished": finished,
        "finish_reason": "stop" if finished else None,
        "usage": usage,
        "index": 0,
        "tool_use": None,
    }


def install(
    replies: list[str | Broken | Exception], *, routing: bool = False, delay_s: float = 0.0
) -> Transcript:
    """Register a transcript as provider ``recorded``; use model ``recorded/transcript``."""
    from app.llm import register_provider

    transcript = Transcript(replies=list(replies), routing=routing, delay_s=delay_s)
    register_provider(PROVIDER, transcript)
    return transcript


def connection_error(message: str = "connection reset by peer") -> Exception:
    return litellm.APIConnectionError(message=message, llm_provider=PROVIDER, model="transcript")
