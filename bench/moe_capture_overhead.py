"""Routing capture overhead: decode tokens/s with capture vs without, same engine, same model,
same run (issue 4 targets: within 15% for llama.cpp, within 5% for transformers).

    .venv/bin/python bench/moe_capture_overhead.py [--rounds 7] [--tokens 64]

Engines are loaded side by side and measured in interleaved rounds (A, B, A, B, ...), so a
burst of load from elsewhere on the machine hits both; the figure of merit is the median of the
per-round ratios. Both wall-clock and process CPU time are reported: on two shared cores the
wall clock follows other people's load, while CPU time (the engines run one thread by default)
measures the work itself. Each measurement prefills the same prompt, then times greedy decode steps,
converting each token's routing to lists as ``chat_stream`` does.

Models: the default model (SmolLM2-135M Q4_1, MoEfied, llama.cpp) and a synthetic Qwen3-MoE
(8 layers, 32 experts, top-4, hidden 256, float32, seeded random weights) built locally as a
GGUF for llama.cpp and as an HF checkpoint for transformers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from app.moe.engine import default_threads
from app.moe.hf_engine import TransformersEngine
from app.moe.llama_engine import LlamaCppEngine
from app.moe.registry import default_model_path
from app.moe.tiny import build_tiny_moe

PROMPT = [{"role": "user", "content": "Explain how a hash map works, with a Python example."}]


def decode_rate(engine, ids: list[int], tokens: int) -> tuple[float, float]:
    """(wall-clock, CPU-time) tokens/s of ``tokens`` greedy decode steps after the prompt."""
    logits, *_ = engine._prefill(ids)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(tokens):
        logits, experts, weights = engine._step(int(np.argmax(logits)))
        experts.tolist()
        weights.tolist()
    return tokens / (time.perf_counter() - wall), tokens / (time.process_time() - cpu)


def compare(label: str, engines: dict[str, object], rounds: int, tokens: int) -> None:
    names = list(engines)
    ids = next(iter(engines.values()))._encode_chat(PROMPT)
    for engine in engines.values():
        decode_rate(engine, ids, 8)  # warm-up
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    load = os.getloadavg()[0]
    for _ in range(rounds):
        for n in names:
            w, c = decode_rate(engines[n], ids, tokens)
            wall[n].append(w)
            cpu[n].append(c)
    base = names[-1]
    print(
        f"{label}: {len(ids)}-token prompt, {rounds} interleaved rounds x {tokens} tokens, "
        f"{default_threads()} thread(s), load average {load:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    for n in names:
        line = (
            f"  {n:<26} wall {statistics.median(wall[n]):7.1f} tok/s   "
            f"CPU {statistics.median(cpu[n]):7.1f} tok/s"
        )
        if n != base:
            rw = statistics.median(a / b for a, b in zip(wall[n], wall[base], strict=True))
            rc = statistics.median(a / b for a, b in zip(cpu[n], cpu[base], strict=True))
            line += f"   vs '{base}': wall {rw:.3f}, CPU {rc:.3f} (overhead {100 * (1 - rc):.1f}%)"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=11)
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
