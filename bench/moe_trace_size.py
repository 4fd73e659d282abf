"""Routing trace encoding: size and round trip of a 2,000-token trace of a 48-layer,
128-expert, top-8 model (issue 4 target: < 2.5 MB, exact ids, weights within float16).

    .venv/bin/python bench/moe_trace_size.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from app.moe.trace import decode_routing, encode_routing

T, LAYERS, K, EXPERTS = 2000, 48, 8, 128


def realistic_trace(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Top-8 of softmax(router logits) with a skewed per-layer expert popularity."""
    rng = np.random.default_rng(seed)
    popularity = rng.normal(0, 1.0, size=(1, LAYERS, EXPERTS))
    logits = rng.normal(size=(T, LAYERS, EXPERTS)) + popularity
    ids = np.argsort(-logits, axis=2)[:, :, :K]
    top = np.take_along_axis(logits, ids, axis=2)
    weights = np.exp(top) / np.exp(top).sum(axis=2, keepdims=True)
    return ids, weights.astype(np.float32)


def main() -> None:
    ids, weights = realistic_trace()
    raw = ids.astype(np.uint8).nbytes + weights.astype(np.float16).nbytes
    enc_times, dec_times = [], []
    for _ in range(7):
        t0 = time.perf_counter()
        encoding, ids_blob, w_blob = encode_routing(ids, weights)
        t1 = time.perf_counter()
        ids2, w2 = decode_routing(encoding, ids_blob, w_blob, T, LAYERS, K)
        t2 = time.perf_counter()
        enc_times.append(t1 - t0)
        dec_times.append(t2 - t1)
    size = len(ids_blob) + len(w_blob)
    print(f"trace {T} tokens x {LAYERS} layers x top-{K} of {EXPERTS} experts, '{encoding}'")
    print(f"  raw uint8 ids + float16 weights: {raw / 1e6:.3f} MB")
    print(f"  encoded: ids {len(ids_blob) / 1e6:.3f} MB + weights {len(w_blob) / 1e6:.3f} MB")
    print(f"  total {size / 1e6:.3f} MB (target < 2.5 MB): {'OK' if size < 2.5e6 else 'OVER'}")
    print(f"  ids exact: {np.array_equal(ids, ids2)}")
    err = float(np.abs(w2 - weights).max())
    exact16 = np.array_equal(w2, weights.astype(np.float16).astype(np.float32))
    print(f"  weights == float16(weights): {exact16}; max abs error {err:.2e}")
    print(
        f"  encode median {statistics.median(enc_times) * 1e3:.1f} ms, "
        f"decode median {statistics.median(dec_times) * 1e3:.1f} ms (7 runs)"
    )


if __name__ == "__main__":
    main()
