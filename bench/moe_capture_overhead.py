"""Routing capture overhead: decode tokens/s with capture vs without, same engine, same model,
same run (issue 4 targets: within 15% for llama.cpp, within 5% for transformers).

    .venv/bin/python bench/moe_capture_overhead.py [--rounds 7] [--tokens 64]

Engines are loaded side by side and measured in interleaved rounds (A, B, A, B, ...), so a
burst of load from elsewhere on the machine hits both; the figure of merit is the median of the
per-round ratios. Each measurement prefills the same prompt, then times greedy decode steps,
converting each token's routing to lists as ``chat_stream`` does.

Models: the default model (SmolLM2-135M Q4_1, MoEfied, llama.cpp) and a synthetic Qwen3-MoE
(8 layers, 32 experts, top-4, hidden 256, float32, seeded random weights) built locally as a
GGUF for llama.cpp and as an HF checkpoint for transformers.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from app.moe.hf_engine import TransformersEngine
from app.moe.llama_engine import LlamaCppEngine
from app.moe.registry import default_model_path
from app.moe.tiny import build_tiny_moe

PROMPT = [{"role": "user", "content": "Explain how a hash map works, with a Python example."}]


def decode_rate(engine, ids: list[int], tokens: int) -> float:
    logits, *_ = engine._prefill(ids)
    start = time.perf_counter()
    for _ in range(tokens):
        logits, experts, weights = engine._step(int(np.argmax(logits)))
        experts.tolist()
        weights.tolist()
    return tokens / (time.perf_counter() - start)


def compare(label: str, engines: dict[str, object], rounds: int, tokens: int) -> None:
    names = list(engines)
    ids = next(iter(engines.values()))._encode_chat(PROMPT)
    for engine in engines.values():
        decode_rate(engine, ids, 8)  # warm-up
    rates: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(rounds):
        for n in names:
            rates[n].append(decode_rate(engines[n], ids, tokens))
    base = names[-1]
    print(f"{label} ({len(ids)}-token prompt, {rounds} rounds x {tokens} tokens)")
    for n in names:
        line = f"  {n:<28} median {statistics.median(rates[n]):7.1f} tokens/s"
        if n != base:
            ratio = statistics.median(a / b for a, b in zip(rates[n], rates[base], strict=True))
            line += f"   ratio to '{base}' {ratio:.3f} (overhead {100 * (1 - ratio):.1f}%)"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        path = default_model_path()
        compare(
            "llama.cpp, default model (SmolLM2-135M Q4_1, MoEfied 30 layers x 8 groups, top-2)",
            {
                "capture (C graph filter)": LlamaCppEngine(path, cache_dir=cache),
                "capture (Python filter)": LlamaCppEngine(
                    path, cache_dir=cache, native_filter=False
                ),
                "no capture": LlamaCppEngine(path, cache_dir=cache, capture_routing=False),
            },
            args.rounds,
            args.tokens,
        )
        model = build_tiny_moe(
            Path(tmp) / "moe", layers=8, experts=32, top_k=4, hidden=256, moe_ff=256, seed=1
        )
        compare(
            "llama.cpp, synthetic Qwen3-MoE (8 layers, 32 experts, top-4, f32)",
            {
                "capture (C graph filter)": LlamaCppEngine(model.gguf_path, cache_dir=cache),
                "no capture": LlamaCppEngine(
                    model.gguf_path, cache_dir=cache, capture_routing=False
                ),
            },
            args.rounds,
            args.tokens,
        )
        compare(
            "transformers, the same synthetic Qwen3-MoE (HF checkpoint, float32)",
            {
                "capture (router hook)": TransformersEngine(model.hf_dir),
                "no capture": TransformersEngine(model.hf_dir, capture_routing=False),
            },
            args.rounds,
            args.tokens,
        )


if __name__ == "__main__":
    main()
