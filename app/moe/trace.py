"""Compact binary encoding of routing traces, as stored in ``db.models.RoutingTrace``.

A trace is two arrays of shape (tokens, layers, top_k): expert ids and gate weights. Ids are
stored exactly (uint8 when there are at most 256 experts, else uint16, little-endian); weights
as float16 with the two bytes of every value split into two planes ("byte shuffle": the high
bytes of gate weights repeat a lot, so zlib finds them); both blobs are zlib-compressed. A
2,000-token trace of a 48-layer, top-8, 128-expert model takes about 1.7 MB.
"""

from __future__ import annotations

import zlib

import numpy as np

from app.moe.errors import TraceDecodeError

_VERSION = "1"
_ID_DTYPES = {"u8": np.dtype("<u1"), "u16": np.dtype("<u2")}


def encoding_name(max_expert_id: int) -> str:
    ids = "u8" if max_expert_id < 256 else "u16"
    return f"{ids}-f16shuf-zlib-{_VERSION}"


def encode_routing(experts: np.ndarray, weights: np.ndarray) -> tuple[str, bytes, bytes]:
    """Encode (T, L, K) expert ids and gate weights; returns (encoding, ids blob, weights blob)."""
    experts = np.asarray(experts)
    weights = np.asarray(weights)
    if experts.ndim != 3 or experts.shape != weights.shape:
        raise ValueError(
            f"experts and weights must both be (tokens, layers, top_k); got {experts.shape} "
            f"and {weights.shape}"
        )
    if experts.size and (experts.min() < 0 or experts.max() > 0xFFFF):
        raise ValueError("expert ids must lie in 0..65535")
    encoding = encoding_name(int(experts.max()) if experts.size else 0)
    id_dtype = _ID_DTYPES[encoding.split("-", 1)[0]]
    ids_blob = zlib.compress(np.ascontiguousarray(experts, dtype=id_dtype).tobytes(), 6)
    half = np.ascontiguousarray(weights, dtype="<f2").view(np.uint8).reshape(-1, 2)
    weights_blob = zlib.compress(np.ascontiguousarray(half.T).tobytes(), 6)
    return encoding, ids_blob, weights_blob


def decode_routing(
    encoding: str,
    ids_blob: bytes,
    weights_blob: bytes,
    token_count: int,
    layer_count: int,
    top_k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_routing`: (T, L, K) int64 expert ids and float32 weights."""
    parts = encoding.split("-")
    if len(parts) != 4 or parts[0] not in _ID_DTYPES or parts[1:] != ["f16shuf", "zlib", "1"]:
        raise TraceDecodeError(f"unknown routing trace encoding {encoding!r}")
    shape = (token_count, layer_count, top_k)
    n = token_count * layer_count * top_k
    try:
        raw_ids = zlib.decompress(ids_blob)
        raw_weights = zlib.decompress(weights_blob)
    except zlib.error as exc:
        raise TraceDecodeError(f"corrupt routing trace: {exc}") from exc
    id_dtype = _ID_DTYPES[parts[0]]
    if len(raw_ids) != n * id_dtype.itemsize or len(raw_weights) != n * 2:
        raise TraceDecodeError(
            f"routing trace holds {len(raw_ids)} id bytes and {len(raw_weights)} weight bytes, "
            f"not the {n} entries of shape {shape}"
        )
    experts = np.frombuffer(raw_ids, dtype=id_dtype).astype(np.int64).reshape(shape)
    planes = np.frombuffer(raw_weights, dtype=np.uint8).reshape(2, n)
    weights = np.ascontiguousarray(planes.T).view("<f2").astype(np.float32).reshape(shape)
    return experts, weights


def routing_trace_fields(events, summary, *, include_prompt: bool = True) -> dict:
    """The column values of a ``db.models.RoutingTrace`` row for one reply (no DB import here).

    Layout: the rows of the (T, L, K) arrays are the prompt's tokens first (when
    ``include_prompt``; ``prompt_token_count`` says how many), then the reply's; ``tokens`` holds
    the text of each row. ``events``/``summary`` are what ``MoEEngine.chat_stream`` produced.
    """
    info = summary.info
    experts = np.asarray([e.experts for e in events], dtype=np.int64)
    weights = np.asarray([e.weights for e in events], dtype=np.float32)
    experts = experts.reshape(len(events), info.layer_count, info.top_k)
    weights = weights.reshape(len(events), info.layer_count, info.top_k)
    tokens = [e.token for e in events]
    prompt_count = 0
    if include_prompt and summary.prompt_experts.size:
        experts = np.concatenate([summary.prompt_experts, experts])
        weights = np.concatenate([summary.prompt_weights, weights])
        tokens = list(summary.prompt_token_texts) + tokens
        prompt_count = summary.prompt_tokens
    encoding, ids_blob, weights_blob = encode_routing(experts, weights)
    return {
        "model": info.name,
        "layer_count": info.layer_count,
        "expert_count": info.expert_count,
        "top_k": info.top_k,
        "token_count": len(tokens),
        "prompt_token_count": prompt_count,
        "moefied": info.moefied,
        "tokens": tokens,
        "encoding": encoding,
        "expert_ids": ids_blob,
        "gate_weights": weights_blob,
        "meta": {
            "engine": info.engine,
            "architecture": info.architecture,
            "moe_layers": list(info.moe_layers),
            "description": info.description,
            "finish_reason": summary.finish_reason,
        },
    }
