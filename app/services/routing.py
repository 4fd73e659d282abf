"""Storing the routing trace of an assistant message (local MoE models) and reading it back."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.llm.types import ChatResult
from app.services.views import RoutingView
from db import queries
from db.models import RoutingTrace


def store_trace(s: Session, message_id: int, result: ChatResult) -> int | None:
    """Encode the reply's per-token routing with ``app.moe.trace`` into ``routing_trace``."""
    events = result.routing
    info = result.routing_info
    if not events or info is None:
        return None
    import numpy as np

    from app.moe.trace import encode_routing

    experts = np.asarray([e.experts for e in events], dtype=np.int64)
    weights = np.asarray([e.weights for e in events], dtype=np.float32)
    encoding, ids_blob, weights_blob = encode_routing(experts, weights)
    row = queries.add_routing_trace(
        session=s,
        message_id=message_id,
        model=info.model,
        layer_count=int(experts.shape[1]),
        expert_count=info.expert_count,
        top_k=int(experts.shape[2]),
        token_count=int(experts.shape[0]),
        prompt_token_count=0,
        moefied=info.moefied,
        tokens=[e.token for e in events],
        encoding=encoding,
        expert_ids=ids_blob,
        gate_weights=weights_blob,
        meta={"description": info.description, "model_string": result.model},
    )
    return row.id


def routing_view(row: RoutingTrace) -> RoutingView:
    from app.moe.trace import decode_routing

    experts, weights = decode_routing(
        row.encoding, row.expert_ids, row.gate_weights, row.token_count, row.layer_count, row.top_k
    )
    return RoutingView(
        id=row.id,
        message_id=row.message_id,
        model=row.model,
        layer_count=row.layer_count,
        expert_count=row.expert_count,
        top_k=row.top_k,
        moefied=row.moefied,
        tokens=list(row.tokens or []),
        experts=experts.tolist(),
        weights=weights.tolist(),
    )
