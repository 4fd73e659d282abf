"""Real code: a module of a project (or of an installed package) optimized where it lives.

A small package is written by each test: relative imports, a sibling module using numpy, a
class with state, an ``__init__`` that imports the module under optimization, and its own
tests. Every test runs on both isolating backends (``backend`` fixture in conftest.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sandbox
from sandbox import InvalidTask

from .conftest import QUICK_LIMITS, QUICK_TIMING

INIT = """\
from .stats import Stat

READY = True
"""
UTIL = """\
import numpy as np


def as_array(values):
    return np.asarray(list(values), dtype=np.int64)
"""
STATS = """\
from math import fsum as total

from ._util import as_array

square = lambda x: x * x  # noqa: E731


class Stat:
    def __init__(self, values):
        self.values = as_array(values)
        self.calls = 0

    def extrema(self):
        \"\"\"Smallest and largest value, or None.\"\"\"
        self.calls += 1
        lo = None
        hi = None
        for v in self.values.tolist():
            if lo is None or v < lo:
                lo = v
            if hi is None or v > hi:
                hi = v
        if lo is None:
            return None
        return (lo, hi)

    @property
    def size(self):
        return len(self.values)

    @staticmethod
    def spread(lo, hi):
        out = 0
        for _ in range(lo, hi):
            out += 1
        return out

    @classmethod
    def of(cls, *values):
        return cls(values)
"""
# Vectorized: the same results (Python ints, None when empty), the same state change.
FAST_EXTREMA = '''\
    def extrema(self):
        """Smallest and largest value, or None."""
        self.calls += 1
        if self.values.size == 0:
            return None
        return (int(self.values.min()), int(self.values.max()))
'''
# The project's own pytest configuration and conftest.py apply: with --strict-markers an
# unregistered "stats" marker, or a missing "small" fixture, would fail the test.
PYPROJECT = """\
[tool.pytest.ini_options]
addopts = "--strict-markers"
markers = ["stats: tests of mypkg.stats"]
"""
CONFTEST = """\
import pytest


@pytest.fixture
def small():
    return [3, 1, 2]
"""
PROJECT_TESTS = """\
import pytest

import mypkg
from mypkg import Stat


@pytest.mark.stats
def test_extrema(small):
    s = Stat(small)
    assert s.extrema() == (1, 3)
    assert s.calls == 1 and mypkg.READY


def test_empty():
    assert Stat([]).extrema() is None
"""
WORKLOAD = """\
import numpy as np

from mypkg import Stat


def cases():
    rng = np.random.default_rng(0)
    return [(Stat(rng.integers(0, 255, 2_000)),), (Stat(rng.integers(-5, 5, 300)),)]
"""


#: For the tests that assert "faster": samples of 20 ms (the default) rather than the quick
#: 5 ms, which a garbage collection or a busy neighbour can double on a loaded machine (seen:
#: a 7x faster candidate "not significant" at a load of 8 on 2 cores).
# Sequential timing settles a clear speedup in a few rounds; two (QUICK_TIMING) never can.
SURE_TIMING = {
    **QUICK_TIMING,
    "min_sample_s": 0.02,
    "pairs_per_round": 3,
    "max_rounds": 10,
    "budget_s": 4.0,
}


def make_project(root: Path, stats: str = STATS) -> Path:
    project = root / "project"
    for rel, text in {
        "mypkg/__init__.py": INIT,
        "mypkg/_util.py": UTIL,
        "mypkg/stats.py": stats,
        "tests/test_stats.py": PROJECT_TESTS,
        "tests/conftest.py": CONFTEST,
        "pyproject.toml": PYPROJECT,
    }.items():
        path = project / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return project


def fast_stats() -> str:
    start = STATS.index("    def extrema(self):")
    end = STATS.index("    @property")
    return STATS[:start] + FAST_EXTREMA + "\n" + STATS[end:]


def tree_digest(root: Path) -> str:
    """Every path, mode and byte under ``root``: any write into the project changes it."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(f"{path.relative_to(root)}:{path.stat().st_mode:o}".encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def line_of(source: str, text: str) -> int:
    return source.splitlines().index(text) + 1


@pytest.fixture
def run_project(backend: str):
    def run(project: Path | None, candidate: str | None = None, **fields: object) -> dict:
        task = {
            "module": "mypkg.stats",
            "entry": "Stat.extrema",
            "baseline": STATS,
            "workload": WORKLOAD,
            "timing": QUICK_TIMING,
            **fields,
        }
        if project is not None:
            task["project"] = str(project)
        if candidate is not None:
            task["candidate"] = candidate
        verdict = sandbox.evaluate(task, backend=backend, limits={**QUICK_LIMITS, "wall_s": 60})
        assert verdict["backend"] == backend
        json.dumps(verdict)
        return verdict

    return run


def test_a_method_of_a_project_is_optimized_in_place(run_project, tmp_path):
    project = make_project(tmp_path)
    before = tree_digest(project)
    verdict = run_project(
        project,
        fast_stats(),
        project_tests=["tests/test_stats.py::test_extrema"],
        timing=SURE_TIMING,
    )
    assert verdict["status"] == "ok", verdict["message"]
    # The node id selected one of the two tests; it ran on the baseline and the candidate.
    assert verdict["tests"] == {"passed": 1, "failed": 0, "failures": [], "ran": True}
    assert verdict["equivalent"] is True and verdict["mismatches"] == []
    assert verdict["verdict"] == "faster" and verdict["speedup"] > 2  # ~7x
    # Coverage of the baseline's Stat.extrema by test_extrema: every body statement but the
    # "return None" of an empty Stat (the docstring is not a statement).
    assert verdict["coverage"] == {
        "lines": 11,
        "covered": 10,
        "missing": [line_of(STATS, "            return None")],
    }
    profiled = {line["function"] for line in verdict["line_profile"]}
    assert "Stat.extrema" in profiled
    assert verdict["line_profile"][0]["source"] == "        self.calls += 1"
    assert tree_digest(project) == before
    assert not list(project.rglob("__pycache__")) and not (project / ".pytest_cache").exists()


def test_the_project_tests_see_the_candidate(run_project, tmp_path):
    project = make_project(tmp_path)
    swapped = fast_stats().replace(
        "return (int(self.values.min()), int(self.values.max()))",
        "return (int(self.values.max()), int(self.values.min()))",
    )
    verdict = run_project(project, swapped, project_tests=["tests/test_stats.py"])
    assert verdict["status"] == "failed" and verdict["correct"] is False
    assert verdict["tests"]["passed"] == 1 and verdict["tests"]["failed"] == 1
    failure = verdict["tests"]["failures"][0]
    assert failure["name"] == "tests/test_stats.py::test_extrema"
    assert "(3, 1) == (1, 3)" in failure["message"]
    # Both tests ran on the baseline: the empty case is covered too.
    assert verdict["coverage"] == {"lines": 11, "covered": 11, "missing": []}


def test_baseline_mode_with_task_tests_and_project_tests(run_project, tmp_path):
    project = make_project(tmp_path)
    own = (
        "from mypkg.stats import Stat\n\n"
        "def test_single():\n    assert Stat([7]).extrema() == (7, 7)\n"
    )
    verdict = run_project(project, tests=own, project_tests=["tests/test_stats.py::test_empty"])
    assert verdict["status"] == "ok", verdict["message"]
    assert verdict["mode"] == "baseline" and verdict["speedup"] is None
    assert verdict["tests"]["passed"] == 2
    # test_single runs all but "return None", which test_empty (selected by node id) runs.
    assert verdict["coverage"] == {"lines": 11, "covered": 11, "missing": []}


def test_static_and_class_methods_and_run_workload(run_project, tmp_path):
    project = make_project(tmp_path)
    faster = STATS.replace(
        "        out = 0\n        for _ in range(lo, hi):\n"
        "            out += 1\n        return out\n",
        "        return max(0, hi - lo)\n",
    )
    verdict = run_project(
        project,
        faster,
        entry="Stat.spread",
        timing=SURE_TIMING,
        workload="from mypkg import Stat\n\ndef cases():\n    return [(0, 20_000), (5, 2)]\n",
    )
    assert verdict["status"] == "ok", verdict["message"]
    assert verdict["verdict"] == "faster" and verdict["coverage"] is None
    run = (
        "from mypkg.stats import Stat\n\n"
        "def run():\n    s = Stat.of(*range(2_000))\n    return [s.extrema() for _ in range(20)]\n"
    )
    verdict = run_project(project, fast_stats(), entry="Stat.of", workload=run, timing=SURE_TIMING)
    assert verdict["status"] == "ok", verdict["message"]
    assert verdict["equivalent"] is True and verdict["verdict"] == "faster"
    wrong = fast_stats().replace("int(self.values.max())", "int(self.values.max()) + 1")
    verdict = run_project(project, wrong, workload=run)
    assert verdict["status"] == "failed" and verdict["mismatch_count"] == 1
    assert "(0, 2000)" in verdict["mismatches"][0]["got"]


def test_a_project_that_does_not_import_gets_a_clear_message(run_project, tmp_path):
    broken = STATS.replace("from ._util import as_array", "from ._missing import as_array")
    project = make_project(tmp_path, broken)
    verdict = run_project(project, baseline=broken, project_tests=["tests/test_stats.py"])
    assert verdict["status"] == "error" and verdict["error_stage"] == "import"
    message = verdict["message"]
    assert message.startswith("the baseline does not import: importing mypkg.stats raised")
    assert "ModuleNotFoundError: No module named 'mypkg._missing'" in message
    assert "mypkg/stats.py, line 3" in message and "Traceback" not in message
    # A candidate that does not compile is the candidate's failure, pointing at its line.
    project = make_project(tmp_path / "ok")
    verdict = run_project(project, STATS.replace("        lo = None\n", "        lo = = None\n"))
    assert verdict["status"] == "failed" and verdict["error_stage"] == "parse"
    assert verdict["message"].startswith("the candidate does not import: importing mypkg")
    line = line_of(STATS, "        lo = None")
    assert (
        "SyntaxError" in verdict["message"]
        and f"cand/mypkg/stats.py, line {line})" in verdict["message"]
    )


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("Stat.nope", "mypkg.stats has no 'Stat.nope' (Stat has no 'nope')"),
        ("Stat.size", "Stat.size is a property, not a function or method"),
        ("square", "square is a lambda"),
        ("total", "total is not a Python function (builtin_function_or_method"),
        ("as_array", "as_array is defined in /"),
    ],
)
def test_targets_that_cannot_be_optimized(run_project, tmp_path, entry, expected):
    project = make_project(tmp_path)
    verdict = run_project(project, entry=entry)
    assert verdict["status"] == "error" and verdict["error_stage"] == "entry"
    assert expected in verdict["message"]


def test_a_candidate_cannot_write_into_the_project(run_project, tmp_path):
    project = make_project(tmp_path)
    before = tree_digest(project)
    writer = (
        "import os\n"
        "with open(os.path.join(os.path.dirname(__file__), 'planted.py'), 'w') as f:\n"
        "    f.write('x = 1')\n" + fast_stats()
    )
    verdict = run_project(project, writer)
    assert verdict["status"] == "failed" and verdict["error_stage"] == "import"
    assert "Read-only file system" in verdict["message"]
    assert tree_digest(project) == before


def test_nested_functions_are_refused_before_running():
    with pytest.raises(InvalidTask, match="nested function or a lambda"):
        sandbox.parse_task(
            {"module": "m", "entry": "outer.<locals>.inner", "baseline": "", "workload": ""}
        )
    with pytest.raises(InvalidTask, match="not a directory"):
        sandbox.parse_task(
            {"project": "/no/such/dir", "entry": "f", "baseline": "", "workload": ""}
        )


def test_project_fields_are_checked_before_running(tmp_path):
    project = make_project(tmp_path)
    task = {"module": "mypkg.stats", "entry": "Stat.extrema", "baseline": "", "workload": ""}
    with pytest.raises(InvalidTask, match="'tests/nope.py' does not exist in the project"):
        sandbox.parse_task({**task, "project": str(project), "project_tests": ["tests/nope.py"]})
    with pytest.raises(InvalidTask, match="relative to the project root"):
        sandbox.parse_task({**task, "project": str(project), "project_tests": ["../x.py"]})
    with pytest.raises(InvalidTask, match="needs a 'project'"):
        sandbox.parse_task({**task, "project_tests": ["tests/test_stats.py"]})
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(InvalidTask, match="readable by other users"):
        sandbox.parse_task({**task, "project": str(private)})
    venv = tmp_path / "venv" / "lib" / "python3.9" / "site-packages"
    venv.mkdir(parents=True)
    with pytest.raises(InvalidTask, match="is for python3.9; the sandbox runs python3"):
        sandbox.parse_task({**task, "environment": str(tmp_path / "venv")})
    here = tmp_path / "venv311" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    (here / "site-packages").mkdir(parents=True)
    parsed = sandbox.parse_task({**task, "environment": str(tmp_path / "venv311")})
    assert parsed.environment == str(here / "site-packages")
    parsed = sandbox.parse_task(
        {**task, "project": str(project), "project_tests": ["tests/test_stats.py::test_empty"]}
    )
    assert parsed.project == str(project) and parsed.module == "mypkg.stats"
    assert parsed.baseline == ""  # given: the task's, not the file's
    without = {k: v for k, v in task.items() if k != "baseline"}
    assert sandbox.parse_task({**without, "project": str(project)}).baseline == STATS
    with pytest.raises(InvalidTask, match="the project has no module mypkg.nope"):
        sandbox.parse_task({**without, "project": str(project), "module": "mypkg.nope"})
    assert parsed.project_tests == ("tests/test_stats.py::test_empty",)


def test_a_c_extension_module_is_refused(run_project):
    verdict = run_project(
        None, module="math", entry="fsum", baseline="", workload="def cases():\n    return []\n"
    )
    assert verdict["status"] == "error" and verdict["error_stage"] == "entry"
    assert "module math has no Python source" in verdict["message"]


def test_an_environment_shadows_the_apps_packages_but_not_the_harness(run_project, tmp_path):
    site = tmp_path / "env" / "site-packages"
    site.mkdir(parents=True)
    (site / "idna.py").write_text("__version__ = 'from the environment'\n")
    (site / "coverage.py").write_text("raise ImportError('not the harness coverage')\n")
    envmod = textwrap.dedent(
        """\
        import idna


        def label(n):
            out = ""
            for _ in range(n):
                out += "a"
            return idna.__version__ + out
        """
    )
    (site / "envmod.py").write_text(envmod)
    before = tree_digest(site.parent)
    tests = (
        "import idna\nfrom envmod import label\n\n"
        "def test_label():\n    assert label(1) == 'from the environmenta'\n"
        "    assert idna.__version__ == 'from the environment'\n"
    )
    verdict = run_project(
        None,
        envmod.replace('out = ""\n    for _ in range(n):\n        out += "a"', 'out = "a" * n'),
        module="envmod",
        entry="label",
        baseline=envmod,
        environment=str(site),
        tests=tests,
        timing=SURE_TIMING,
        workload="def cases():\n    return [(2,), (5_000,)]\n",
    )
    assert verdict["status"] == "ok", verdict["message"]
    assert verdict["tests"]["passed"] == 1 and verdict["verdict"] == "faster"
    # Measured by the harness's own coverage.py: the environment's "coverage" is not it.
    assert verdict["coverage"] == {"lines": 4, "covered": 4, "missing": []}
    assert tree_digest(site.parent) == before and not list(site.rglob("__pycache__"))


def test_cli_with_a_project_next_to_the_task_file(backend, tmp_path):
    """TASK.json names the project relative to itself; the human output shows the coverage."""
    make_project(tmp_path)
    task = {
        "project": "project",
        "entry": "mypkg.stats:Stat.extrema",
        "workload": WORKLOAD,
        "project_tests": ["tests/test_stats.py::test_empty"],
        "timing": QUICK_TIMING,
        "limits": {"wall_s": 60},
    }
    (tmp_path / "TASK.json").write_text(json.dumps(task))
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "sandbox", "evaluate", "TASK.json", "--backend", backend],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    # test_empty runs self.calls/lo/hi, the for line, "if lo is None:" and "return None".
    not_run = [
        line_of(STATS, text)
        for text in (
            "            if lo is None or v < lo:",
            "                lo = v",
            "            if hi is None or v > hi:",
            "                hi = v",
            "        return (lo, hi)",
        )
    ]
    expected = ", ".join(map(str, not_run))
    assert f"tests: 6 of 11 lines (55%); not run: {expected}\n" in proc.stdout
