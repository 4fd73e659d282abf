"""Where the time of a chat turn goes: the model, the sandbox, and perfloop's own overhead
(prompt assembly, code extraction, database writes, view building).

    .venv/bin/python bench/services_turn.py [--turns N] [--backend bwrap|process]

The LLM is litellm's mock provider (a fixed reply with a faster version), so the figures show
the services and the sandbox, not a network. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

BASELINE = """\
def count_common(a, b):
    n = 0
    for x in a:
        if x in b:
            n += 1
    return n
"""
FASTER = """\
def count_common(a, b):
    seen = set(b)
    return sum(1 for x in a if x in seen)
"""
WORKLOAD = """\
def cases():
    a = list(range(0, 6000, 2)) + [6, 6, 6]
    b = list(range(0, 6000, 3))
    return [(a, b)]
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--backend", default="bwrap")
    args = parser.parse_args()

    from alembic import command
    from alembic.config import Config

    from app import services
    from app.config import get_settings
    from db.engine import make_engine

    root = Path(__file__).resolve().parent.parent
    url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    cfg = Config(str(root / "alembic.ini"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")
    ctx = services.Context.from_settings(
        get_settings(),
        engine=make_engine(url),
        sandbox_backend=args.backend,
        allow_process=args.backend == "process",
        model="openai/gpt-4o-mini",
        llm_options={"mock_response": f"Use a set.\n```python\n{FASTER}```"},
    )
    t0 = time.perf_counter()
    view = services.create_session(
        baseline_source=BASELINE, entry_point="count_common", workload_source=WORKLOAD, ctx=ctx
    )
    create_s = time.perf_counter() - t0
    rows = []
    for _ in range(args.turns):
        t0 = time.perf_counter()
        turn = services.run_turn(view.info.id, ctx=ctx)
        wall = time.perf_counter() - t0
        evals = sum(c.evaluation.duration_s or 0 for c in turn.candidates)
        rows.append((wall, turn.usage.latency_s, evals, wall - turn.usage.latency_s - evals))
        # The next turn proposes the same code again: start from the baseline each time.
        services.mark_best(view.baseline.id, ctx=ctx)
    services.clear_best(view.info.id, ctx=ctx)
    t0 = time.perf_counter()
    final = services.get_session(view.info.id, ctx=ctx)
    view_s = time.perf_counter() - t0
    print(f"create + validate + baseline evaluation: {create_s:6.2f} s")
    print(f"{'turn':>4} {'wall s':>8} {'llm s':>8} {'sandbox s':>10} {'overhead s':>11}")
    for i, (wall, llm, ev, over) in enumerate(rows, 1):
        print(f"{i:>4} {wall:8.2f} {llm:8.2f} {ev:10.2f} {over:11.3f}")
    print("(turn 1 includes importing litellm, ~2-3 s, once per process)")
    warm = rows[1:] or rows
    print(f"median services overhead per warm turn: {statistics.median(r[3] for r in warm):.3f} s")
    print(
        f"get_session with {len(final.candidates)} candidates, {len(final.messages)} "
        f"messages: {view_s * 1000:.1f} ms"
    )
    print(
        f"best speedup: {final.figures.best_speedup:.1f}x "
        f"(CI {final.figures.best_ci[0]:.1f}-{final.figures.best_ci[1]:.1f})"
        if final.figures.best_speedup
        else "no faster candidate"
    )
    ctx.close()


if __name__ == "__main__":
    main()
