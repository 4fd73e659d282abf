"""Agreement with pyperf: the sandbox's speedup vs pyperf's ratio of means on three pairs.

pyperf runs ``timeit`` in its own worker processes (``--fast``: 6 processes × 3 values, wall
clock); the sandbox runs with its defaults. Target: agreement within 3%.
Run: ``.venv/bin/python bench/sandbox_pyperf.py [backend]``
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from sandbox_common import load

import sandbox

PAIRS = {
    "sum loop vs sum()": (
        "def f(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s\n",
        "def f(xs):\n    return sum(xs)\n",
        "def cases():\n    return [(list(range(20000)),)]\n",
    ),
    "string concat vs join": (
        "def f(n):\n    s = ''\n    for i in range(n):\n        s += str(i)\n    return s\n",
        "def f(n):\n    return ''.join(map(str, range(n)))\n",
        "def cases():\n    return [(5000,)]\n",
    ),
    "list membership vs set": (
        "def f(xs, ys):\n    return [y for y in ys if y in xs]\n",
        "def f(xs, ys):\n    s = set(xs)\n    return [y for y in ys if y in s]\n",
        "def cases():\n    return [(list(range(300)), list(range(0, 600, 3)))]\n",
    ),
}


def pyperf_mean(code: str, workload: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "target.py").write_text(code)
        Path(tmp, "workload.py").write_text(workload)
        out = Path(tmp, "out.json")
        setup = (
            f"import sys; sys.path.insert(0, {tmp!r}); from target import f; "
            "from workload import cases; import copy; C = list(cases())"
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pyperf",
                "timeit",
                "--fast",
                "-q",
                "-o",
                str(out),
                "-s",
                setup,
                "for a in C: f(*copy.deepcopy(a))",
            ],
            check=True,
            capture_output=True,
        )
        data = json.loads(out.read_text())
        values = [v for run in data["benchmarks"][0]["runs"] for v in run.get("values", [])]
        return sum(values) / len(values)


def main() -> None:
    backend = sys.argv[1] if len(sys.argv) > 1 else "bwrap"
    print(f"sandbox ({backend}) vs pyperf; {load()}")
    for name, (baseline, candidate, workload) in PAIRS.items():
        ratio = pyperf_mean(baseline, workload) / pyperf_mean(candidate, workload)
        v = sandbox.evaluate(
            {"baseline": baseline, "candidate": candidate, "entry": "f", "workload": workload},
            backend=backend,
        )
        low, high = v["ci95"]
        diff = v["speedup"] / ratio - 1
        print(
            f"{name:24} pyperf ×{ratio:7.3f}   sandbox ×{v['speedup']:7.3f} "
            f"[{low:.3f}, {high:.3f}] {v['timing']['clock']}   difference {diff * 100:+5.1f}%"
        )


if __name__ == "__main__":
    main()
