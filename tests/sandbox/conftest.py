"""Fixtures for the sandbox tests: the real backends, a Docker engine started on demand.

bwrap must be usable (``make test`` installs bubblewrap): a test fails, never skips, when it is
not. The Docker tests start ``dockerd --iptables=false --bridge=none`` themselves when no engine
answers, and build the sandbox image from the cached debootstrap root filesystem.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import sandbox
from sandbox.backends.docker import unix_engine_answers

DOCKER_SOCKET = Path("/var/run/docker.sock")
DOCKERD_LOG = Path("/tmp/perfloop-test-dockerd.log")

#: Small budgets: the hostile tests are about statuses, not precise timing.
QUICK_TIMING = {
    "budget_s": 0.2,
    "min_rounds": 2,
    "max_rounds": 2,
    "pairs_per_round": 2,
    "min_sample_s": 0.005,
}
QUICK_LIMITS = {
    "wall_s": 20,
    "cpu_s": 10,
    "memory_bytes": 1024**3,
    "max_processes": 48,
    "max_output_bytes": 256 * 1024,
    "disk_bytes": 16 * 1024**2,
}

BASELINE = "def f(n):\n    return sum(range(n))\n"
WORKLOAD = "def cases():\n    return [(10,), (1000,)]\n"


def _docker_answers() -> bool:
    return unix_engine_answers(str(DOCKER_SOCKET))  # False while the file is missing


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[None]:
    """A Docker engine: the running one, or one started here (and stopped at the end)."""
    proc = None
    if not _docker_answers():
        if shutil.which("dockerd") is None:
            pytest.fail("dockerd is not installed (make test installs docker.io)", pytrace=False)
        with DOCKERD_LOG.open("ab") as log:  # dockerd keeps its own copy of the descriptor
            proc = subprocess.Popen(
                ["dockerd", "--iptables=false", "--bridge=none"],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while not _docker_answers():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dockerd did not start; see {DOCKERD_LOG}", pytrace=False)
            time.sleep(0.5)
    yield
    if proc is not None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def docker_image(docker_engine: None) -> str:
    from sandbox.image import build_image

    return build_image()


@pytest.fixture(
    params=["bwrap", pytest.param("docker", marks=pytest.mark.docker)],
)
def backend(request: pytest.FixtureRequest) -> str:
    """Each hostile-input test runs on both isolating backends."""
    if request.param == "docker":
        request.getfixturevalue("docker_image")
    reason = sandbox.available_backends()[request.param]
    if reason is not None:
        pytest.fail(f"backend {request.param} unavailable: {reason}", pytrace=False)
    return request.param


Evaluate = Callable[..., dict]


@pytest.fixture
def evaluate(backend: str) -> Evaluate:
    """``evaluate(candidate=..., **task_fields)`` on the test's backend with quick settings."""

    def run(
        candidate: str | None = None,
        *,
        limits: dict | None = None,
        progress: Callable[[str, dict], None] | None = None,
        **fields: object,
    ) -> dict:
        task = {
            "baseline": BASELINE,
            "entry": "f",
            "workload": WORKLOAD,
            "timing": QUICK_TIMING,
            **fields,
        }
        if candidate is not None:
            task["candidate"] = candidate
        verdict = sandbox.evaluate(
            task, backend=backend, limits={**QUICK_LIMITS, **(limits or {})}, progress=progress
        )
        assert verdict["backend"] == backend
        return verdict

    return run
