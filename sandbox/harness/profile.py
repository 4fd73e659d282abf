"""Per-line profile of the target function and the functions of its module it calls
(line_profiler), over the workload's calls (or its ``run()``).

``share`` is a line's time divided by the entry function's total time (callee time included),
so a callee's lines show their share of the whole call.
"""

from __future__ import annotations

import inspect
import time


def _functions(module, entry) -> list:  # noqa: ANN001
    found = [inspect.unwrap(entry)]
    for obj in list(vars(module).values()):
        candidates = [obj]
        if isinstance(obj, type) and obj.__module__ == module.__name__:
            candidates = [getattr(v, "__func__", v) for v in vars(obj).values()]
        for fn in candidates:
            fn = inspect.unwrap(fn) if callable(fn) else fn
            if inspect.isfunction(fn) and fn.__module__ == module.__name__ and fn not in found:
                found.append(fn)
    return [f for f in found if inspect.isfunction(f)]


def profile_calls(worker, min_s: float) -> dict:  # noqa: ANN001
    try:
        from line_profiler import LineProfiler
    except ImportError:
        return {"error": "line_profiler is not installed in the sandbox"}
    from .worker import source_line

    functions = _functions(worker.module, worker.function)
    if not functions:
        return {"error": "the entry point is not a Python function; nothing to profile"}
    profiler = LineProfiler()
    for fn in functions:
        profiler.add_function(fn)
    runs, start = 0, time.perf_counter()
    while True:
        batch = [make() for make in worker.fresh]
        profiler.enable_by_count()
        try:
            for args, kwargs in batch:
                worker.call(args, kwargs)
        finally:
            profiler.disable_by_count()
        runs += 1
        if time.perf_counter() - start >= min_s or runs >= 1000:
            break
    stats = profiler.get_stats()
    unit = stats.unit
    entry_code = functions[0].__code__
    report = []
    for (filename, first_line, name), timings in stats.timings.items():
        if not timings:
            continue
        lines = [{"line": ln, "hits": hits, "time_s": t * unit} for ln, hits, t in timings]
        report.append(
            {
                "function": name,
                "filename": filename,
                "first_line": first_line,
                "total_s": sum(x["time_s"] for x in lines),
                "lines": lines,
                "is_entry": (filename, first_line)
                == (entry_code.co_filename, entry_code.co_firstlineno),
            }
        )
    entries = [f for f in report if f["is_entry"]]
    total = entries[0]["total_s"] if entries else sum(f["total_s"] for f in report)
    for fn in report:
        for line in fn["lines"]:
            line["share"] = line["time_s"] / total if total > 0 else 0.0
            line["source"] = source_line(fn["filename"], line["line"])
    report.sort(key=lambda f: (not f["is_entry"], -f["total_s"]))
    return {"functions": report, "total_s": total, "runs": runs, "unit_s": unit}
