"""What every backend shares: the job layout inside the sandbox and reading its event stream.

A backend runs the supervisor (``sandbox/harness``) inside some isolation with the task
directory mounted read-only, and hands each event line to the engine as it arrives. The event
channel is the supervisor's stdout; nothing else writes there (see ``harness/supervisor.py``).
"""

from __future__ import annotations

import compileall
import dataclasses
import json
import os
import selectors
import shutil
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..harness.cpus import affinity, usable_cpus
from ..task import Limits

HARNESS_DIR = Path(__file__).resolve().parent.parent / "harness"
#: Bytes of events we accept from the supervisor beyond the code's own output budget.
EVENT_BYTES = 64 * 1024**2
STDERR_TAIL = 16 * 1024
#: How long after the wall limit the host kills the sandbox (the supervisor stops itself first).
GRACE_S = 2.0

SUPERVISOR_BOOT = (
    "import importlib, sys; sys.path.insert(0, sys.argv[1]); "
    "importlib.import_module(sys.argv[2] + '.supervisor').main(sys.argv[3])"
)


def compile_harness() -> None:
    """Write the harness's bytecode (``__pycache__``) from the host, where it is stale or
    missing. Inside the sandbox the harness is mounted read-only and runs with ``-B``, so
    nothing in there can write (or poison) it; without these files every process the
    harness starts compiled its modules again (the worker's: ~25 ms of each start, and timing
    starts one per side every round). Only stale files are rewritten (a stat per module);
    where the harness's directory cannot be written (an installed read-only package), the
    processes compile in memory as before."""
    compileall.compile_dir(HARNESS_DIR, quiet=2, maxlevels=0)


OnEvent = Callable[[dict], None]
#: Where the isolating backends mount a task's project and environment (read-only).
PROJECT_MOUNT = "/opt/perfloop/project"
ENVIRONMENT_MOUNT = "/opt/perfloop/environment"


@dataclass(frozen=True)
class Mounts:
    """Host directories a task brings besides its staged files, mounted read-only."""

    project: str | None = None  # the project's root
    environment: str | None = None  # a site-packages directory

    def bind_pairs(self) -> list[tuple[str, str]]:
        """(host path, path inside) for the isolating backends."""
        pairs = []
        if self.project:
            pairs.append((self.project, PROJECT_MOUNT))
        if self.environment:
            pairs.append((self.environment, ENVIRONMENT_MOUNT))
        return pairs


NO_MOUNTS = Mounts()


def sandbox_env(home: str) -> dict[str, str]:
    """The complete environment of the code under test: nothing inherited from the host."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",  # same dict/set layout in every process and for both sides
        "PYTHONIOENCODING": "utf-8",
        "OPENBLAS_NUM_THREADS": "1",  # single-threaded numeric libraries: CPU time stays fair
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
    }


@dataclass
class SandboxRun:
    """What came back from one sandboxed run, besides the events."""

    exit_code: int | None = None
    timed_out: bool = False
    output_exceeded: bool = False
    stderr: str = ""
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Layout:
    """Where things are as seen from inside the sandbox."""

    python: str
    harness_parent: str
    harness_package: str
    task_dir: str
    work_dir: str
    pid_namespace: bool
    project_dir: str | None = None  # the project's root inside the sandbox
    environment_dir: str | None = None  # the environment's site-packages inside the sandbox

    def supervisor_argv(self) -> list[str]:
        return [
            self.python,
            "-I",
            "-B",
            "-c",
            SUPERVISOR_BOOT,
            self.harness_parent,
            self.harness_package,
            f"{self.task_dir}/job.json",
        ]


class EventReader:
    """Splits the supervisor's stdout into JSON events, within a byte budget."""

    def __init__(self, on_event: OnEvent, max_bytes: int) -> None:
        self.on_event = on_event
        self.max_bytes = max_bytes
        self.total = 0
        self.buffer = b""

    def feed(self, data: bytes) -> bool:
        """Consume bytes; ``False`` once the budget is exceeded."""
        self.total += len(data)
        if self.total > self.max_bytes:
            return False
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line.strip():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    self.on_event(event)
        return True


class Backend(ABC):
    name: str = ""
    #: The sandbox runs in this process's own cgroup (bwrap, process: no cgroup of its own, and
    #: bwrap shows it no /sys), so the host reads the CPU-quota throttling around its timing
    #: (``timing.throttled_s``); Docker's container has its own, which the harness reads.
    shares_host_cgroup: bool = True

    @abstractmethod
    def unavailable_reason(self) -> str | None:
        """``None`` when this backend can run here, else why not (for the user)."""

    @abstractmethod
    def layout(self, task_dir: Path, mounts: Mounts = NO_MOUNTS) -> Layout:
        """Paths inside the sandbox for a task staged in ``task_dir`` on the host."""

    @abstractmethod
    def run(
        self, task_dir: Path, limits: Limits, on_event: OnEvent, mounts: Mounts = NO_MOUNTS
    ) -> SandboxRun:
        """Run the supervisor on ``task_dir`` (which holds job.json) and stream its events;
        ``mounts`` are bound read-only where :meth:`layout` says."""


def mounted_layout(layout: Layout, mounts: Mounts) -> Layout:
    """``layout`` with the fixed mount points of the isolating backends for ``mounts``."""
    return dataclasses.replace(
        layout,
        project_dir=PROJECT_MOUNT if mounts.project else None,
        environment_dir=ENVIRONMENT_MOUNT if mounts.environment else None,
    )


def run_streaming(
    argv: list[str],
    *,
    limits: Limits,
    on_event: OnEvent,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> SandboxRun:
    """Run a sandbox process, stream its events, kill its process group at the wall limit.

    Under a cgroup CPU quota smaller than this process's affinity, the sandbox starts on as many
    CPUs as the quota holds (``taskset``): it cannot see the quota itself (no ``/sys`` inside
    bwrap), and spare-CPU work would otherwise throttle the timing CPU (harness/cpus.py)."""
    cpus = usable_cpus()
    if cpus != affinity() and (taskset := shutil.which("taskset")):
        argv = [taskset, "--cpu-list", ",".join(map(str, cpus)), *argv]
    start = time.monotonic()
    deadline = start + limits.wall_s + GRACE_S
    reader = EventReader(on_event, EVENT_BYTES + limits.max_output_bytes)
    result = SandboxRun()
    stderr = bytearray()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env if env is not None else {},
        cwd=cwd,
        start_new_session=True,
    )
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ, "stdout")
            selector.register(proc.stderr, selectors.EVENT_READ, "stderr")
            open_streams = 2
            while open_streams:
                left = deadline - time.monotonic()
                if left <= 0:
                    result.timed_out = True
                    break
                for key, _ in selector.select(timeout=min(left, 0.5)):
                    data = os.read(key.fileobj.fileno(), 1 << 16)
                    if not data:
                        selector.unregister(key.fileobj)
                        open_streams -= 1
                    elif key.data == "stdout":
                        if not reader.feed(data):
                            result.output_exceeded = True
                            open_streams = 0
                            break
                    else:
                        stderr += data
                        del stderr[:-STDERR_TAIL]
    finally:
        _kill_group(proc)
        result.exit_code = proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    result.stderr = stderr.decode("utf-8", errors="replace")
    result.duration_s = time.monotonic() - start
    return result


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
