"""Runs the selected tests (the task's own file, the project's files and node ids) in a worker,
and measures which lines of the target function they execute (coverage.py)."""

from __future__ import annotations

import os
import sys

from .imports import function_lines

TASK_TESTS = "test_target.py"
#: Where pytest looks for its configuration in a project's root, in its own order.
CONFIG_FILES = (
    ("pytest.ini", None),
    (".pytest.ini", None),
    ("pyproject.toml", "[tool.pytest"),
    ("tox.ini", "[pytest]"),
    ("setup.cfg", "[tool:pytest]"),
)


class _Collector:
    def __init__(self) -> None:
        self.passed = 0
        self.failures: list[dict] = []

    def pytest_runtest_logreport(self, report) -> None:  # noqa: ANN001
        if report.passed and report.when == "call":
            self.passed += 1
        elif report.failed:
            name = _name(report.nodeid)
            if report.when != "call":
                name += f" ({report.when})"
            self.failures.append({"name": name, "message": _message(report)})

    def pytest_collectreport(self, report) -> None:  # noqa: ANN001
        if report.failed:
            self.failures.append({"name": "collection", "message": _message(report)})


def _name(nodeid: str) -> str:
    """The task's own tests by function name (as always); a project's by node id."""
    path, _, rest = nodeid.partition("::")
    return rest if os.path.basename(path) == TASK_TESTS or not rest else nodeid


def _message(report) -> str:  # noqa: ANN001
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)[:1000]
    return str(report.longrepr)[-1000:]


def _project_config(rootdir: str) -> list[str]:
    for name, section in CONFIG_FILES:
        path = os.path.join(rootdir, name)
        try:
            with open(path, encoding="utf-8") as f:
                if section is None or section in f.read():
                    return ["-c", path]
        except OSError:
            continue
    return []


def _environment_plugins(environment_dir: str | None) -> list[str]:
    """``-p`` for each pytest plugin installed in the project's environment: plugins are not
    auto-loaded (the sandbox's own, perfloop's tooling, are none of the tests' business and
    cost seconds per run), but a project's tests may rely on those of their environment."""
    if not environment_dir:
        return []
    from importlib.metadata import distributions

    out = []
    for dist in distributions(path=[environment_dir]):
        for ep in dist.entry_points:
            if ep.group == "pytest11":
                out += ["-p", ep.module]
    return out


def run_tests(
    paths: list[str],
    rootdir: str,
    cover: tuple[str, str] | None = None,
    environment_dir: str | None = None,
) -> dict:
    """Run pytest on ``paths``; ``cover`` = (file, qualname) of the target to measure."""
    try:
        import pytest
    except ImportError:
        return {
            "error": {
                "stage": "tests",
                "type": "ImportError",
                "message": "pytest is not installed in the sandbox",
            }
        }
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # this process runs nothing else
    collector = _Collector()
    project = any(os.path.basename(p.partition("::")[0]) != TASK_TESTS for p in paths)
    args = [
        *paths,
        "-p",
        "no:cacheprovider",
        "-p",
        "no:terminal",
        "-p",
        "no:faulthandler",
        "--rootdir",
        rootdir,
        *(_project_config(rootdir) if project else ["-o", "python_files=test_*.py"]),
        "-W",
        "default",
        "--capture=no",
        *_environment_plugins(environment_dir),
    ]
    measure = _Coverage(*cover) if cover else None
    plugins = [collector, measure] if measure else [collector]
    try:
        code = pytest.main(args, plugins=plugins)
    except BaseException as exc:  # noqa: BLE001 - a test or import that exits pytest itself
        collector.failures.append({"name": "session", "message": f"{type(exc).__name__}: {exc}"})
        code = 1
    finally:
        if measure:
            measure.stop()
    sys.modules.pop("test_target", None)
    result = {"coverage": measure.report() if measure else None}
    if int(code) == 5 and not collector.failures:  # no tests collected
        return {"passed": 0, "failed": 0, "failures": [], **result}
    if int(code) == 4 and not collector.failures:
        collector.failures.append(
            {
                "name": "session",
                "message": "pytest usage error: a test path or node id matched "
                f"nothing, or the project's pytest options need a plugin ({' '.join(paths)[:500]})",
            }
        )
    elif int(code) not in (0, 1) and not collector.failures:
        collector.failures.append({"name": "session", "message": f"pytest exited with {code}"})
    return {
        "passed": collector.passed,
        "failed": len(collector.failures),
        "failures": collector.failures,
        **result,
    }


class _Coverage:
    """coverage.py restricted to one file; reports the lines of one function's body."""

    def __init__(self, filename: str, qualname: str) -> None:
        self.filename = filename
        self.qualname = qualname
        self.cov = None
        self.running = False
        try:
            import coverage
        except ImportError:
            return
        self.cov = coverage.Coverage(
            data_file=None, config_file=False, include=[filename], branch=False
        )

    def pytest_sessionstart(self, session) -> None:  # noqa: ANN001
        # After pytest's own start-up (not worth tracing), before the tests are collected.
        if self.cov is not None:
            self.cov.start()
            self.running = True

    def stop(self) -> None:
        if self.running:
            self.cov.stop()
            self.running = False

    def report(self) -> dict | None:
        span = function_lines(self.filename, self.qualname)
        if self.cov is None or span is None:
            return None
        statements = self.cov.analysis2(self.filename)[1]
        executed = set(self.cov.get_data().lines(self.filename) or ())
        lines = [n for n in statements if span[0] <= n <= span[1]]
        missing = [n for n in lines if n not in executed]
        return {"lines": len(lines), "covered": len(lines) - len(missing), "missing": missing}
