"""What an LLM call gives back: the text, usage, cost, latency, and for the local MoE backend
the routing of every generated token."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RoutingEvent:
    """The experts one generated token was routed to: ``experts[layer]`` = ids (top-k),
    ``weights[layer]`` = their gate weights. ``index`` counts generated tokens from 0."""

    index: int
    token: str
    token_id: int | None
    experts: list[list[int]]
    weights: list[list[float]]


@dataclass(frozen=True)
class RoutingInfo:
    """The MoE model's shape, as reported by app/moe (``moefied``: neuron groups of a dense
    model, not trained experts)."""

    model: str
    layer_count: int
    expert_count: int
    top_k: int
    moefied: bool
    description: str = ""


@dataclass(frozen=True)
class ChatResult:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float | None  # None when litellm does not know the price
    latency_s: float
    first_token_s: float | None
    finish_reason: str | None
    routing: list[RoutingEvent] = field(default_factory=list)
    routing_info: RoutingInfo | None = None
    attempts: int = 1
    raw: dict[str, Any] = field(default_factory=dict)
