"""The unisolated backend, for development on machines with neither bubblewrap nor Docker.

The code under test runs as this user, with this user's files and network. It still gets the
supervisor's rlimits, time limits and output caps, but nothing stops it from reading or
deleting files. It refuses to run unless explicitly allowed (``allow_process=True``, the
``--backend process`` flag, or ``PERFLOOP_SANDBOX_ALLOW_PROCESS=1``).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from ..task import Limits
from .base import (
    HARNESS_DIR,
    NO_MOUNTS,
    Backend,
    Layout,
    Mounts,
    OnEvent,
    SandboxRun,
    run_streaming,
    sandbox_env,
)

NOT_ALLOWED = (
    "the 'process' backend runs code without any isolation; enable it explicitly "
    "(allow_process=True, PERFLOOP_SANDBOX_ALLOW_PROCESS=1) on a development machine"
)


class ProcessBackend(Backend):
    name = "process"

    def __init__(self, allowed: bool = False, python: str | None = None) -> None:
        self.allowed = allowed
        self.python = python or sys.executable

    def unavailable_reason(self) -> str | None:
        return None if self.allowed else NOT_ALLOWED

    def layout(self, task_dir: Path, mounts: Mounts = NO_MOUNTS) -> Layout:
        return Layout(
            python=self.python,
            harness_parent=str(HARNESS_DIR.parent),
            harness_package=HARNESS_DIR.name,
            task_dir=str(task_dir),
            work_dir=str(task_dir.parent / "scratch"),
            pid_namespace=False,
            project_dir=mounts.project,  # no isolation: the host's own paths
            environment_dir=mounts.environment,
        )

    def run(
        self, task_dir: Path, limits: Limits, on_event: OnEvent, mounts: Mounts = NO_MOUNTS
    ) -> SandboxRun:
        layout = self.layout(task_dir, mounts)
        Path(layout.work_dir).mkdir(exist_ok=True)
        try:
            return run_streaming(
                layout.supervisor_argv(),
                limits=limits,
                on_event=on_event,
                env=sandbox_env(layout.work_dir),
                cwd=layout.work_dir,
            )
        finally:
            shutil.rmtree(layout.work_dir, ignore_errors=True)
