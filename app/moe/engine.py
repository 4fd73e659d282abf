"""The engine interface: chat messages in, tokens with their routing out.

``MoEEngine`` holds what both engines share — prompt formatting checks, sampling, stop strings,
the per-engine lock — and leaves to its subclasses (``llama_engine``, ``hf_engine``) the four
model operations: tokenize, prefill the prompt, feed one token, render a token. Nothing here
imports torch or llama.cpp.

Routing of a generated token is the routing of that token's own forward pass (the same
convention as for prompt tokens), so each token is emitted after it has been fed to the model;
the time to the first token therefore includes one decode step.
"""

from __future__ import annotations

import codecs
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from app.moe.errors import ContextTooLong, EngineUnavailable, InvalidRequest

EngineKind = Literal["llama.cpp", "transformers"]
_ROLES = {"system", "user", "assistant", "tool", "developer"}


@dataclass(frozen=True)
class ModelInfo:
    """What a client needs to know about the loaded model."""

    name: str
    engine: EngineKind
    layer_count: int  # MoE layers (the layers routing is reported for)
    expert_count: int
    top_k: int
    moefied: bool  # True: the "experts" are MoEfied neuron groups of a dense model
    context_length: int
    description: str
    architecture: str = ""
    path: str = ""
    moe_layers: tuple[int, ...] = ()  # block index of each reported layer


@dataclass
class TokenEvent:
    """One generated token and, per MoE layer, the experts it was routed to."""

    token: str  # text of the token ("" while a multi-byte character is incomplete)
    token_id: int
    experts: list[list[int]]  # [layer][k]
    weights: list[list[float]]  # [layer][k]


@dataclass
class GenerationSummary:
    """What is known once a reply is complete; ``prompt_*`` routing arrays are (P, L, K)."""

    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"]
    text: str
    prompt_token_texts: list[str]
    prompt_experts: np.ndarray
    prompt_weights: np.ndarray
    info: ModelInfo | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class ChatStream(Iterator[TokenEvent]):
    """The iterator ``chat_stream`` returns; ``summary`` is set once it is exhausted."""

    def __init__(self, events: Iterator[TokenEvent]) -> None:
        self._events = events
        self.summary: GenerationSummary | None = None

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> TokenEvent:
        return next(self._events)

    def close(self) -> None:
        close = getattr(self._events, "close", None)
        if close is not None:
            close()


def default_threads() -> int:
    """Half the usable cores (at least one): one core of two stays free for the sandbox.

    Measured here on two shared cores: with other processes busy, llama.cpp's OpenMP workers
    spin at every barrier and two threads fell to 2.5 tokens/s while one thread kept ~60; the
    sandbox's timings suffer from the same contention.
    """
    return max(1, len(os.sched_getaffinity(0)) // 2)


def normalise_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Check OpenAI-style chat messages; content parts are joined into one string."""
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty list")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise InvalidRequest(f"messages[{i}] needs a role among {sorted(_ROLES)}")
        content = message.get("content")
        if content is None:
            content = ""
        if isinstance(content, list):
            try:
                content = "".join(p["text"] for p in content if p.get("type") == "text")
            except (AttributeError, KeyError, TypeError) as exc:
                raise InvalidRequest(f"messages[{i}].content parts must be text parts") from exc
        if not isinstance(content, str):
            raise InvalidRequest(f"messages[{i}].content must be a string")
        role = "system" if message["role"] == "developer" else message["role"]
        out.append({"role": role, "content": content})
    return out


def sample_token(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """Greedy at temperature 0, else a draw from softmax(logits / temperature)."""
    if temperature <= 0.0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    return int(rng.choice(p.size, p=p))


def _stop_prefix_len(text: str, stops: list[str]) -> int:
    """Length of the longest suffix of ``text`` that starts some stop string."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best


class MoEEngine:
    """A loaded model that streams tokens with routing; one generation at a time."""

    info: ModelInfo

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self.last_usage: GenerationSummary | None = None

    # --- what an engine implements -------------------------------------------------------
    def _encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        raise NotImplementedError

    def _tokenize(self, text: str) -> list[int]:
        raise NotImplementedError

    def _prefill(self, ids: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run the prompt from an empty cache: (last logits, experts (P,L,K), weights)."""
        raise NotImplementedError

    def _step(self, token_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Feed one token: (next logits, experts (L,K), weights (L,K)) of that token."""
        raise NotImplementedError

    def _piece(self, token_id: int, special: bool = False) -> bytes:
        raise NotImplementedError

    def _is_end(self, token_id: int) -> bool:
        raise NotImplementedError

    # --- public API -------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes (no special tokens added); for trimming history to fit."""
        return len(self._tokenize(text))

    def count_chat_tokens(self, messages: list[dict[str, Any]]) -> int:
        """Tokens the formatted prompt of ``messages`` takes, template included."""
        return len(self._encode_chat(normalise_messages(messages)))

    def chat_stream(
        self,
        messages: list[dict[str, Any]],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> ChatStream:
        """Stream the reply to ``messages`` token by token, each with its routing.

        Validation (messages, context length) happens here, before the first ``next``; the
        model runs in the thread that iterates. ``stream.summary`` (and ``last_usage``) hold
        usage, finish reason and the prompt's routing once the stream is exhausted.
        """
        if self._closed:
            raise EngineUnavailable("this engine has been closed")
        chat = normalise_messages(messages)
        if max_tokens < 1:
            raise InvalidRequest("max_tokens must be at least 1")
        if temperature < 0:
            raise InvalidRequest("temperature must not be negative")
        stops = [s for s in ([stop] if isinstance(stop, str) else stop or []) if s]
        ids = self._encode_chat(chat)
        if len(ids) + 1 > self.info.context_length:
            raise ContextTooLong(len(ids), self.info.context_length)
        stream = ChatStream(iter(()))
        stream._events = self._generate(ids, max_tokens, temperature, stops, seed, stream)
        return stream

    def chat(
        self, messages: list[dict[str, Any]], **kwargs: Any
    ) -> tuple[list[TokenEvent], GenerationSummary]:
        """The whole reply at once: its events and the summary."""
        stream = self.chat_stream(messages, **kwargs)
        events = list(stream)
        assert stream.summary is not None
        return events, stream.summary

    def _generate(
        self,
        ids: list[int],
        max_tokens: int,
        temperature: float,
        stops: list[str],
        seed: int | None,
        stream: ChatStream,
    ) -> Iterator[TokenEvent]:
        with self._lock:
            if self._closed:  # closed between chat_stream() and the first next()
                raise EngineUnavailable("this engine has been closed")
            logits, prompt_experts, prompt_weights = self._prefill(ids)
            rng = np.random.default_rng(seed)
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            room = min(max_tokens, self.info.context_length - len(ids))
            finish: Literal["stop", "length"] = "length"
            pending: list[TokenEvent] = []  # held back: could be the start of a stop string
            text: list[str] = []
            generated = 0
            for _ in range(room):
                token_id = sample_token(logits, temperature, rng)
                if self._is_end(token_id):
                    finish = "stop"
                    break
                logits, experts, weights = self._step(token_id)
                generated += 1
                event = TokenEvent(
                    decoder.decode(self._piece(token_id)),
                    token_id,
                    experts.tolist(),
                    weights.tolist(),
                )
                if not stops:
                    text.append(event.token)
                    yield event
                    continue
                pending.append(event)
                tail = "".join(e.token for e in pending)
                hits = [i for i in (tail.find(s) for s in stops) if i >= 0]
                if hits:
                    cut = min(hits)
                    for e in pending:
                        if cut <= 0:
                            break
                        e.token = e.token[:cut]
                        cut -= len(e.token)
                        text.append(e.token)
                        yield e
                    pending = []
                    finish = "stop"
                    break
                keep = _stop_prefix_len(tail, stops)
                releasable = len(tail) - keep
                while pending and len(pending[0].token) <= releasable:
                    e = pending.pop(0)
                    releasable -= len(e.token)
                    text.append(e.token)
                    yield e
            for e in pending:
                text.append(e.token)
                yield e
            summary = GenerationSummary(
                prompt_tokens=len(ids),
                completion_tokens=generated,
                finish_reason=finish,
                text="".join(text),
                prompt_token_texts=[
                    self._piece(i, special=True).decode("utf-8", "replace") for i in ids
                ],
                prompt_experts=prompt_experts,
                prompt_weights=prompt_weights,
                info=self.info,
            )
            stream.summary = summary
            self.last_usage = summary

    def close(self) -> None:
        """Free the model once any running generation ends; the engine is unusable afterwards."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._release()

    def _release(self) -> None:
        """Free the engine's native resources (called once, under the lock)."""


def routing_arrays(events: list[TokenEvent]) -> tuple[np.ndarray, np.ndarray]:
    """Stack the routing of streamed events into (T, L, K) arrays for ``trace.encode_routing``."""
    if not events:
        return np.zeros((0, 0, 0), dtype=np.int64), np.zeros((0, 0, 0), dtype=np.float32)
    return (
        np.asarray([e.experts for e in events], dtype=np.int64),
        np.asarray([e.weights for e in events], dtype=np.float32),
    )
