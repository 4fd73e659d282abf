"""Worker processes as the supervisor sees them: spawn, talk with a deadline, read their CPU
clock from outside, cap their output, and find processes that outlive their welcome."""

from __future__ import annotations

import os
import resource
import selectors
import signal
import subprocess
import sys
import time

from . import protocol

TAIL_BYTES = 4096


class Stop(Exception):
    """Ends the evaluation with a status (``timeout``, ``crashed``, ``tampered``…)."""

    def __init__(
        self, status: str, message: str, role: str | None = None, stage: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.role = role
        self.stage = stage  # where it went wrong (sandbox/verdict.py ErrorStage), if known


def killed_by_signal(message: str) -> bool:
    """Whether a :class:`Stop`'s message says a process was killed by SIGKILL or SIGTERM (the
    processes share a uid: another side's code may have sent it)."""
    return "killed by SIGKILL" in message or "killed by SIGTERM" in message


class OutputLog:
    """All stdout/stderr of the code under test: a byte budget and the tails for the verdict."""

    def __init__(self, limit: int, parent: OutputLog | None = None) -> None:
        self.limit = limit
        self.total = 0
        self.tails = {"stdout": bytearray(), "stderr": bytearray()}
        self.parent = parent
        self.children: dict[str, OutputLog] = {}

    def for_role(self, role: str) -> OutputLog:
        """The tails of one side (several candidates: each verdict shows its own output); the
        byte budget stays this log's, shared by all."""
        if role not in self.children:
            self.children[role] = OutputLog(self.limit, parent=self)
        return self.children[role]

    def add(self, stream: str, data: bytes) -> bool:
        self.total += len(data)
        tail = self.tails[stream]
        tail += data[-TAIL_BYTES:]
        del tail[:-TAIL_BYTES]
        if self.parent is not None:
            return self.parent.add(stream, data)
        return self.total <= self.limit

    def as_dict(self) -> dict:
        text = {k: bytes(v).decode("utf-8", errors="replace") for k, v in self.tails.items()}
        return {"stdout": text["stdout"], "stderr": text["stderr"], "bytes": self.total}


def cpu_clock(pid: int) -> float:
    """CPU seconds (all threads) of another process, read by this process: unforgeable."""
    return time.clock_gettime((~pid << 3) | 2)


def _describe_signal(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class WorkerProcess:
    def __init__(
        self, role: str, config: dict, job: dict, output: OutputLog, quiet: bool = False
    ) -> None:
        self.role = role
        self.output = output
        limits = job["limits"]
        cmd_r, self.cmd_w = os.pipe()
        self.resp_r, resp_w = os.pipe()
        parent, package = os.path.split(os.path.dirname(os.path.abspath(__file__)))
        boot = (
            f"import sys; sys.path.insert(0, {parent!r}); from {package}.worker import main; main()"
        )

        def limit_resources() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"],) * 2)
            cpu = int(limits["cpu_s"]) + 1
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits["disk_bytes"],) * 2)
            resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"],) * 2)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        self.proc = subprocess.Popen(
            # argv and environment are byte-for-byte the same length for both sides (the
            # config follows on the pipe): their size shifts the stack's alignment, which
            # measurably tilted A/A comparisons when "baseline"/"candidate" were in argv.
            [sys.executable, "-s", "-B", "-P", "-c", boot, f"{cmd_r:05d}", f"{resp_w:05d}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if quiet else subprocess.PIPE,
            stderr=subprocess.DEVNULL if quiet else subprocess.PIPE,
            pass_fds=(cmd_r, resp_w),
            env=job["worker_env"],
            cwd=job["work_dir"],
            start_new_session=True,
            preexec_fn=limit_resources,
        )
        os.close(cmd_r)
        os.close(resp_w)
        protocol.send(self.cmd_w, config)
        self.pid = self.proc.pid
        self.frames = protocol.FrameBuffer(max_bytes=job.get("max_reply_bytes", 256 << 20))
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.resp_r, selectors.EVENT_READ, "reply")
        for name in ("stdout", "stderr"):
            if getattr(self.proc, name) is not None:
                self.selector.register(getattr(self.proc, name), selectors.EVENT_READ, name)
        self.threads = 1

    def cpu(self) -> float:
        return cpu_clock(self.pid)

    def native_threads(self) -> int:
        try:
            return len(os.listdir(f"/proc/{self.pid}/task"))
        except OSError:
            return 0

    def request(self, message: dict, deadline: float, what: str) -> dict:
        try:
            protocol.send(self.cmd_w, message)
        except BrokenPipeError:
            self._died(what)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise Stop("timeout", f"{what} did not finish within the time limit", self.role)
            for key, _ in self.selector.select(timeout=min(left, 1.0)):
                data = os.read(key.fd if key.data == "reply" else key.fileobj.fileno(), 1 << 16)
                if key.data == "reply":
                    if not data:
                        self._died(what)
                    try:
                        frames = self.frames.feed(data)
                    except (protocol.FrameTooLarge, ValueError):
                        # The harness's own replies are bounded and well-formed (values are
                        # encoded within a budget): garbage means the code under test wrote
                        # to the harness's pipe, or forked copies of the worker answered.
                        self.kill()
                        raise Stop(
                            "tampered",
                            f"{what}: garbled reply on the harness's pipe "
                            "(written to by the code under test, or by a fork of it)",
                            self.role,
                        ) from None
                    if frames:
                        reply = frames[0]
                        if "tampered" in reply:
                            self.kill()
                            raise Stop("tampered", f"{what}: {reply['tampered']}", self.role)
                        return reply
                elif not data:
                    self.selector.unregister(key.fileobj)
                elif not self.output.add(key.data, data):
                    self.kill()
                    raise Stop(
                        "output_limit",
                        f"{what} wrote more than {self.output.limit:,} bytes to stdout/stderr",
                        self.role,
                    )

    def _died(self, what: str) -> None:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.wait()
        self._drain()
        self.kill()
        if code == 0:
            raise Stop(
                "tampered",
                f"{what}: the process exited with status 0 before reporting "
                "(os._exit or sys.exit outside a call?)",
                self.role,
            )
        if code < 0:
            name = _describe_signal(-code)
            if -code in (signal.SIGXCPU,):
                raise Stop("timeout", f"{what}: CPU time limit exceeded ({name})", self.role)
            hint = {
                "SIGSEGV": " (a C-level crash, e.g. a stack overflow from deep recursion)",
                "SIGKILL": " (out of memory, or killed)",
            }.get(name, "")
            raise Stop("crashed", f"{what}: the process was killed by {name}{hint}", self.role)
        stderr = self.output.as_dict()["stderr"].strip().splitlines()
        last = f": {stderr[-1]}" if stderr else ""
        status = "memory" if "MemoryError" in last else "crashed"
        raise Stop(status, f"{what}: the process exited with status {code}{last}", self.role)

    def _drain(self) -> None:
        for key, _ in self.selector.select(timeout=0):
            if key.data in ("stdout", "stderr"):
                data = os.read(key.fileobj.fileno(), 1 << 16)
                if data:
                    self.output.add(key.data, data)

    def kill(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass

    def close(self, deadline: float | None = None) -> None:
        try:
            protocol.send(self.cmd_w, {"cmd": "exit"})
        except OSError:
            pass
        try:
            self.proc.wait(timeout=max(0.1, min(2.0, (deadline or 1e18) - time.monotonic())))
        except subprocess.TimeoutExpired:
            pass
        self._drain()
        self.kill()
        self.proc.wait()
        self.selector.close()
        for fd in (self.cmd_w, self.resp_r):
            try:
                os.close(fd)
            except OSError:
                pass
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def stray_processes(known: set[int]) -> list[int]:
    """Live processes in this PID namespace other than us and our workers."""
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid in known or pid == me or (pid == 1 and me != 1):
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in (b"Z", b"X"):
            found.append(pid)
    return found


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
