"""Routing trace encoding: exact ids, float16 weights, the size target of issue 4."""

import numpy as np
import pytest

from app.moe.errors import TraceDecodeError
from app.moe.trace import decode_routing, encode_routing


def _realistic_trace(t: int, layers: int, k: int, experts: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(t, layers, experts)).astype(np.float32)
    ids = np.argsort(-logits, axis=2)[:, :, :k]
    top = np.take_along_axis(logits, ids, axis=2)
    w = np.exp(top) / np.exp(top).sum(axis=2, keepdims=True)
    return ids, w.astype(np.float32)


def test_large_trace_fits_target_and_round_trips():
    # 2,000 tokens x 48 layers x top-8 of 128 experts must encode to < 2.5 MB
    ids, w = _realistic_trace(2000, 48, 8, 128)
    encoding, ids_blob, w_blob = encode_routing(ids, w)
    assert encoding == "u8-f16shuf-zlib-1"
    assert len(ids_blob) + len(w_blob) < 2.5e6
    ids2, w2 = decode_routing(encoding, ids_blob, w_blob, 2000, 48, 8)
    assert np.array_equal(ids2, ids)
    np.testing.assert_array_equal(w2, w.astype(np.float16).astype(np.float32))
    assert np.abs(w2 - w).max() <= 2**-11  # float16 has an 11-bit significand


def test_many_experts_use_wide_ids():
    ids, w = _realistic_trace(10, 3, 4, 300, seed=1)
    encoding, a, b = encode_routing(ids, w)
    assert encoding.startswith("u16-")
    ids2, _ = decode_routing(encoding, a, b, 10, 3, 4)
    assert np.array_equal(ids2, ids)


def test_empty_trace_round_trips():
    encoding, a, b = encode_routing(np.zeros((0, 2, 2), int), np.zeros((0, 2, 2)))
    ids, w = decode_routing(encoding, a, b, 0, 2, 2)
    assert ids.shape == w.shape == (0, 2, 2)


def test_bad_inputs_are_rejected():
    ids, w = _realistic_trace(4, 2, 2, 8)
    encoding, a, b = encode_routing(ids, w)
    with pytest.raises(TraceDecodeError):
        decode_routing(encoding, a, b, 5, 2, 2)  # wrong shape
    with pytest.raises(TraceDecodeError):
        decode_routing("u8-f32-gzip-9", a, b, 4, 2, 2)
    with pytest.raises(TraceDecodeError):
        decode_routing(encoding, b"garbage", b, 4, 2, 2)
    with pytest.raises(ValueError):
        encode_routing(ids, w[:, :1])
