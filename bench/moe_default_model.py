"""The default model (SmolLM2-135M Q4_1 through llama.cpp, MoEfied, routing captured) on this
machine: time to first token and decode throughput, median of several runs.

    .venv/bin/python bench/moe_default_model.py [--runs 5] [--tokens 128]

Time to first token is measured from the ``chat_stream`` call to the first event, so it covers
templating, tokenization, the prompt pass and one decode step (a token is emitted once it has
been fed, which is when its routing is known).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from app.moe.engine import default_threads
from app.moe.llama_engine import LlamaCppEngine
from app.moe.registry import default_model_path

SHORT = [{"role": "user", "content": "Write a Python function that reverses a linked list."}]
CODE = """
def pairwise_distances(points):
    result = []
    for i in range(len(points)):
        row = []
        for j in range(len(points)):
            dx = points[i][0] - points[j][0]
            dy = points[i][1] - points[j][1]
            row.append((dx * dx + dy * dy) ** 0.5)
        result.append(row)
    return result
"""
LONG = [
    {"role": "system", "content": "You are a performance engineer. Answer with code."},
    {
        "role": "user",
        "content": "Make this faster; keep the output identical.\n"
        + CODE * 6
        + "\nThe line profiler shows 92% of the time in the inner loop.",
    },
]


def measure(engine, messages, max_tokens: int) -> tuple[float, float, int, int]:
    t0 = time.perf_counter()
    stream = engine.chat_stream(messages, max_tokens=max_tokens)
    first = last = None
    n = 0
    for _ in stream:
        last = time.perf_counter()
        first = first or last
        n += 1
    decode_rate = (n - 1) / (last - first) if n > 1 else float("nan")
    return first - t0, decode_rate, stream.summary.prompt_tokens, n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    cache = Path(tempfile.mkdtemp())
    t = time.perf_counter()
    engine = LlamaCppEngine(default_model_path(), name="default", cache_dir=cache)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    two = LlamaCppEngine(default_model_path(), cache_dir=cache, n_threads=2)
    warm = time.perf_counter() - t
    print(
        f"default model: {engine.info.name} ({engine.info.architecture}), {engine.info.engine}, "
        f"{default_threads()} thread(s)"
    )
    print(
        f"  load incl. MoEfication partition build: {cold:.2f} s; "
        f"with the cached partition {warm:.2f} s"
    )
    for label, messages in (("short prompt", SHORT), ("long prompt", LONG)):
        measure(engine, messages, 8)  # warm-up
        ttft, rates, prompt = [], [], 0
        for _ in range(args.runs):
            first, rate, prompt, n = measure(engine, messages, args.tokens)
            ttft.append(first)
            rates.append(rate)
        print(
            f"  {label} ({prompt} tokens): time to first token median "
            f"{statistics.median(ttft) * 1e3:.0f} ms (min {min(ttft) * 1e3:.0f}), decode "
            f"median {statistics.median(rates):.1f} tokens/s (max {max(rates):.1f}), "
            f"{args.runs} runs x {args.tokens} tokens"
        )
    # the thread-count default, measured side by side (interleaved rounds)
    rates: dict[int, list[float]] = {1: [], 2: []}
    one = LlamaCppEngine(default_model_path(), cache_dir=cache, n_threads=1)
    for _ in range(args.runs):
        for n, eng in ((1, one), (2, two)):
            rates[n].append(measure(eng, SHORT, args.tokens)[1])
    ratio = statistics.median(a / b for a, b in zip(rates[2], rates[1], strict=True))
    print(
        f"  decode with 1 thread median {statistics.median(rates[1]):.1f} tokens/s, with 2 "
        f"threads {statistics.median(rates[2]):.1f} tokens/s (2/1 ratio {ratio:.2f}), "
        f"load average now {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
