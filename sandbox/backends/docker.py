"""Docker backend: one throw-away container per evaluation, through the ``docker`` SDK.

No network, read-only root, tmpfs /scratch and /tmp, memory/pids limits, a cpuset of whole CPUs
(no CPU quota, which would throttle the timing: see ``cpu_options``), every capability dropped,
``no-new-privileges``, uid 65534. The image (``sandbox/Dockerfile``) is built offline
by ``python -m sandbox build-image``; the harness and the task are bind-mounted read-only, so
harness changes need no rebuild. The supervisor is the container's PID 1.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

from ..harness.cpus import usable_cpus
from ..image import IMAGE
from ..task import Limits
from .base import (
    EVENT_BYTES,
    GRACE_S,
    HARNESS_DIR,
    NO_MOUNTS,
    STDERR_TAIL,
    Backend,
    EventReader,
    Layout,
    Mounts,
    OnEvent,
    SandboxRun,
    mounted_layout,
    sandbox_env,
)

DEFAULT_URL = "unix:///var/run/docker.sock"
HARNESS_MOUNT = "/opt/perfloop/perfloop_harness"
TASK_MOUNT = "/opt/perfloop/task"
#: Room for the supervisor and a second worker beside the per-worker address-space limit.
MEMORY_SLACK = 512 * 1024**2


_CLIENTS: dict[str, object] = {}
_CLIENTS_LOCK = threading.Lock()


def _client(base_url: str):  # noqa: ANN202
    """One client (one connection pool) per engine for the whole process."""
    with _CLIENTS_LOCK:
        if base_url not in _CLIENTS:
            import docker

            _CLIENTS[base_url] = docker.DockerClient(base_url=base_url, timeout=60)
        return _CLIENTS[base_url]


def unix_engine_answers(path: str, timeout: float = 5.0) -> bool:
    """The engine listening on the unix socket ``path`` answers ``GET /_ping`` with 200.

    Asked over a plain socket that is always closed, before any SDK client is made: the SDK's
    unix connection never closes the socket of a refused connect (a socket file left by an
    engine that is not running, or one that is still starting), and the garbage collector
    later reports it as a ResourceWarning.
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status_line = sock.recv(64).split(b"\r\n", 1)[0]
    except OSError:
        return False
    return status_line.split(b" ")[1:2] == [b"200"]


class DockerBackend(Backend):
    name = "docker"
    shares_host_cgroup = False

    def __init__(
        self, base_url: str = DEFAULT_URL, image: str = IMAGE, cpus: int | None = None
    ) -> None:
        self.base_url = base_url
        self.image = image
        self.cpus = cpus  # at most this many CPUs; None: all this host may use (see cpu_options)

    def cpu_options(self) -> dict:
        """The container's CPUs: a cpuset of whole CPUs and no quota. A quota is what throttles
        (harness/cpus.py: one CPU of quota on two visible CPUs froze the timing 20 of 27
        periods; even a quota of as many CPUs as the cpuset leaves a few ms of slice-accounting
        throttling), and a cpuset bounds the container's CPU time just as well. A local engine
        gets the CPUs this process may use; a remote one CPUs ``0..cpus-1``, or all of its own."""
        if self.base_url.startswith("unix://"):
            cpus = usable_cpus()[: self.cpus] if self.cpus else usable_cpus()
            return {"cpuset_cpus": ",".join(map(str, cpus))} if cpus else {}
        return {"cpuset_cpus": f"0-{self.cpus - 1}"} if self.cpus else {}

    def client(self):  # noqa: ANN201
        return _client(self.base_url)

    def unavailable_reason(self) -> str | None:
        try:
            import docker
        except ImportError:
            return "the 'docker' Python package is not installed"
        if self.base_url.startswith("unix://"):
            path = self.base_url[7:]
            if not Path(path).exists():
                return (
                    f"no Docker engine: {path} does not exist "
                    "(start dockerd, e.g. `dockerd --iptables=false --bridge=none`)"
                )
            if not unix_engine_answers(path):
                return f"the Docker engine at {self.base_url} does not answer"
        try:
            self.client().ping()
        except Exception as exc:  # noqa: BLE001 - any failure means: not usable
            return f"the Docker engine at {self.base_url} does not answer: {exc}"
        try:
            self.client().images.get(self.image)
        except docker.errors.ImageNotFound:
            return f"image {self.image} is not built: run `python -m sandbox build-image`"
        except docker.errors.APIError as exc:
            return f"cannot inspect image {self.image}: {exc}"
        return None

    def layout(self, task_dir: Path, mounts: Mounts = NO_MOUNTS) -> Layout:
        layout = Layout(
            python="/usr/bin/python3",
            harness_parent=str(Path(HARNESS_MOUNT).parent),
            harness_package=Path(HARNESS_MOUNT).name,
            task_dir=TASK_MOUNT,
            work_dir="/scratch",
            pid_namespace=True,
        )
        return mounted_layout(layout, mounts)

    def run(
        self, task_dir: Path, limits: Limits, on_event: OnEvent, mounts: Mounts = NO_MOUNTS
    ) -> SandboxRun:
        import docker
        from docker.types import Ulimit

        # A client of its own, closed at the end: the attach stream's socket goes with it.
        client = docker.DockerClient(base_url=self.base_url, timeout=60)
        result = SandboxRun()
        start = time.monotonic()
        memory = 2 * limits.memory_bytes + MEMORY_SLACK
        container = client.containers.create(
            self.image,
            command=self.layout(task_dir, mounts).supervisor_argv(),
            user="65534:65534",
            network_mode="none",
            read_only=True,
            tmpfs={
                "/scratch": f"size={limits.disk_bytes},mode=1777",
                "/tmp": f"size={max(1 << 20, limits.disk_bytes // 4)},mode=1777",
            },
            volumes={
                str(HARNESS_DIR): {"bind": HARNESS_MOUNT, "mode": "ro"},
                str(task_dir): {"bind": TASK_MOUNT, "mode": "ro"},
                # the project and its environment, read-only
                **{src: {"bind": dest, "mode": "ro"} for src, dest in mounts.bind_pairs()},
            },
            working_dir="/scratch",
            environment=sandbox_env("/scratch"),
            hostname="sandbox",
            mem_limit=memory,
            memswap_limit=memory,
            pids_limit=limits.max_processes,
            **self.cpu_options(),
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            ulimits=[
                Ulimit(name="core", soft=0, hard=0),
                Ulimit(name="nofile", soft=limits.open_files + 64, hard=limits.open_files + 64),
                Ulimit(name="fsize", soft=limits.disk_bytes, hard=limits.disk_bytes),
            ],
            labels={"perfloop.sandbox": "1"},
            detach=True,
            stdin_open=False,
            tty=False,
        )
        timer = threading.Timer(limits.wall_s + GRACE_S, self._kill, (container, result))
        stream = sock = None
        try:
            stream = client.api.attach_socket(
                container.id, params={"stdout": 1, "stderr": 1, "stream": 1, "logs": 1}
            )
            sock = getattr(stream, "_sock", stream)
            sock.settimeout(None)  # the wall-clock timer ends the stream, not the socket
            container.start()
            timer.start()
            self._pump(sock, limits, on_event, result)
            try:
                result.exit_code = container.wait(timeout=10).get("StatusCode")
            except Exception:  # noqa: BLE001 - a container that does not stop is killed below
                result.exit_code = None
            container.reload()
            if container.attrs.get("State", {}).get("OOMKilled"):
                result.notes.append("the container was killed for exceeding its memory limit")
        finally:
            timer.cancel()
            if sock is not None:
                sock.close()
            if stream is not None:
                stream.close()
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
            client.close()
        result.duration_s = time.monotonic() - start
        return result

    def _pump(
        self,
        sock,
        limits: Limits,
        on_event: OnEvent,  # noqa: ANN001
        result: SandboxRun,
    ) -> None:
        """Demultiplex the attach stream: frames of (stream id, 3 zero bytes, length)."""
        reader = EventReader(on_event, EVENT_BYTES + limits.max_output_bytes)
        stderr = bytearray()
        buffer = bytearray()
        while True:
            data = sock.recv(1 << 16)
            if not data:
                break
            buffer += data
            while len(buffer) >= 8:
                kind, size = buffer[0], struct.unpack(">I", buffer[4:8])[0]
                if len(buffer) < 8 + size:
                    break
                payload = bytes(buffer[8 : 8 + size])
                del buffer[: 8 + size]
                if kind == 1 and not reader.feed(payload):
                    result.output_exceeded = True
                    return
                if kind == 2:
                    stderr += payload
                    del stderr[:-STDERR_TAIL]
                    result.stderr = stderr.decode("utf-8", errors="replace")

    @staticmethod
    def _kill(container, result: SandboxRun) -> None:  # noqa: ANN001
        result.timed_out = True
        try:
            container.kill()
        except Exception:  # noqa: BLE001 - it may have just exited
            pass
