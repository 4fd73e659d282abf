"""Runs the task's pytest-style tests against ``target`` inside a worker."""

from __future__ import annotations

import os
import sys


class _Collector:
    def __init__(self) -> None:
        self.passed = 0
        self.failures: list[dict] = []

    def pytest_runtest_logreport(self, report) -> None:  # noqa: ANN001
        if report.passed and report.when == "call":
            self.passed += 1
        elif report.failed:
            name = report.nodeid.split("::", 1)[-1]
            if report.when != "call":
                name += f" ({report.when})"
            self.failures.append({"name": name, "message": _message(report)})

    def pytest_collectreport(self, report) -> None:  # noqa: ANN001
        if report.failed:
            self.failures.append({"name": "collection", "message": _message(report)})


def _message(report) -> str:  # noqa: ANN001
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)[:1000]
    return str(report.longrepr)[-1000:]


def run_tests(path: str) -> dict:
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
    collector = _Collector()
    args = [
        path,
        "-p",
        "no:cacheprovider",
        "-p",
        "no:terminal",
        "-p",
        "no:faulthandler",
        "--rootdir",
        os.path.dirname(path),
        "-o",
        "python_files=test_*.py",
        "-W",
        "default",
        "--capture=no",
    ]
    try:
        code = pytest.main(args, plugins=[collector])
    except BaseException as exc:  # noqa: BLE001 - a test or import that exits pytest itself
        collector.failures.append({"name": "session", "message": f"{type(exc).__name__}: {exc}"})
        code = 1
    sys.modules.pop("test_target", None)
    if int(code) == 5 and not collector.failures:  # no tests collected
        return {"passed": 0, "failed": 0, "failures": []}
    if int(code) not in (0, 1) and not collector.failures:
        collector.failures.append({"name": "session", "message": f"pytest exited with {code}"})
    return {
        "passed": collector.passed,
        "failed": len(collector.failures),
        "failures": collector.failures,
    }
