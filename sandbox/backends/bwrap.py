"""bubblewrap backend (the default on Linux): namespaces, read-only binds, rlimits, its own uid.

- All namespaces are unshared (no network), the root is an empty tmpfs into which only the
  system directories, the Python installation, the harness and the task are bound read-only;
  /scratch and /tmp are size-limited tmpfs mounts, the only writable places. The host's /root,
  /home, /work/main/data (the app's database) simply do not exist inside.
- The environment is cleared; ``--new-session`` (no terminal injection), ``--die-with-parent``,
  ``--as-pid-1`` (the supervisor is PID 1, so the code under test cannot signal it).
- Started by root, bwrap runs privileged (no user namespace) and ``setpriv`` switches to a
  fresh unprivileged uid (random, never 0, not shared with other evaluations) with no
  capabilities and ``no_new_privs``: RLIMIT_NPROC then really bounds the sandbox's processes and
  threads, and that uid owns nothing on the host. (A user namespace would map the sandbox back
  to uid 0, for which RLIMIT_NPROC is not enforced.) Switching uid clears the parent-death
  signal, so the supervisor re-arms it.
- Started by an ordinary user, all namespaces incl. the user namespace are unshared and
  RLIMIT_NPROC counts that user's other processes too: the limit becomes ``max_processes``
  above what the user already runs.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import subprocess
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
    mounted_layout,
    run_streaming,
    sandbox_env,
)

UID_BASE = 200_000  # sandbox uids are drawn from [UID_BASE, UID_BASE + UID_SPAN)
UID_SPAN = 100_000
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/alternatives",
)
HARNESS_MOUNT = "/opt/perfloop/perfloop_harness"
TASK_MOUNT = "/opt/perfloop/task"


class BwrapBackend(Backend):
    name = "bwrap"

    def __init__(self, bwrap: str = "bwrap", python: str | None = None) -> None:
        self.bwrap = shutil.which(bwrap)
        self.setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        self.prlimit = shutil.which("prlimit") or "/usr/bin/prlimit"
        self.python = python or sys.executable
        self._probe: str | None | bool = False

    def unavailable_reason(self) -> str | None:
        if not sys.platform.startswith("linux"):
            return "bubblewrap needs Linux"
        if self.bwrap is None:
            return "bubblewrap is not installed (Debian: apt-get install bubblewrap)"
        if os.geteuid() == 0 and not os.path.exists(self.setpriv):
            return "setpriv (util-linux) is needed to drop root privileges inside bubblewrap"
        if not os.path.exists(self.prlimit):
            return "prlimit (util-linux) is needed to set the sandbox's resource limits"
        if self._probe is False:
            self._probe = self._try()
        return self._probe

    def _try(self) -> str | None:
        try:
            proc = subprocess.run(
                [
                    self.bwrap,
                    "--unshare-all",
                    "--die-with-parent",
                    "--as-pid-1",
                    "--ro-bind",
                    "/usr",
                    "/usr",
                    *_system_links(),
                    "--",
                    "/usr/bin/true",
                ],
                capture_output=True,
                timeout=20,
                env={},
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"bubblewrap could not start: {exc}"
        if proc.returncode:
            return (
                "bubblewrap cannot create namespaces here (user namespaces disabled?): "
                + proc.stderr.decode(errors="replace").strip()[-300:]
            )
        return None

    def layout(self, task_dir: Path, mounts: Mounts = NO_MOUNTS) -> Layout:
        layout = Layout(
            python=self.python,
            harness_parent=str(Path(HARNESS_MOUNT).parent),
            harness_package=Path(HARNESS_MOUNT).name,
            task_dir=TASK_MOUNT,
            work_dir="/scratch",
            pid_namespace=True,
        )
        return mounted_layout(layout, mounts)

    def command(self, task_dir: Path, limits: Limits, mounts: Mounts = NO_MOUNTS) -> list[str]:
        """The bwrap command line (and, as root, the switch to a fresh uid inside it)."""
        args = []
        for path in SYSTEM_DIRS:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        for path in ETC_FILES:
            if os.path.exists(path):
                args += ["--ro-bind", path, path]
        # The writable tmpfs mounts come first: a Python installation that lives under /tmp
        # (a checkout there, as CI may use) must be bound on top of them, not hidden by them.
        args += [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--perms",
            "1777",
            "--size",
            str(limits.disk_bytes),
            "--tmpfs",
            "/scratch",
            "--perms",
            "1777",
            "--size",
            str(max(1 << 20, limits.disk_bytes // 4)),
            "--tmpfs",
            "/tmp",
        ]
        python_dirs = _python_dirs(self.python)
        binds = mounts.bind_pairs()
        inside = [HARNESS_MOUNT, TASK_MOUNT, *(dest for _, dest in binds)]
        for parent in _parents([*python_dirs, *inside]):
            args += ["--perms", "0755", "--dir", parent]  # bwrap would make them 0700
        for prefix in python_dirs:
            args += ["--ro-bind", prefix, prefix]
        for source, dest in binds:  # the project and its environment: read-only
            args += ["--ro-bind", source, dest]
        args += [
            "--ro-bind",
            str(HARNESS_DIR),
            HARNESS_MOUNT,
            "--ro-bind",
            str(task_dir),
            TASK_MOUNT,
            "--chdir",
            "/scratch",
            "--hostname",
            "sandbox",
            "--die-with-parent",
            "--new-session",
            "--as-pid-1",
            "--clearenv",
        ]
        for key, value in sandbox_env("/scratch").items():
            args += ["--setenv", key, value]
        inner = self.layout(task_dir).supervisor_argv()
        if os.geteuid() == 0:
            # Privileged bwrap (no user namespace), then a fresh unprivileged uid: its processes
            # are counted by RLIMIT_NPROC, and it owns nothing on the host.
            uid = str(_fresh_uid())
            args = [
                "--unshare-pid",
                "--unshare-net",
                "--unshare-ipc",
                "--unshare-uts",
                "--unshare-cgroup-try",
                *args,
            ]
            inner = [
                self.setpriv,
                "--reuid",
                uid,
                "--regid",
                uid,
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--",
                *inner,
            ]
        else:
            args = ["--unshare-all", "--cap-drop", "ALL", *args]
        return [*self._rlimits(limits), self.bwrap, *args, "--", *inner]

    def _rlimits(self, limits: Limits) -> list[str]:
        """``prlimit`` in front of bwrap: no preexec_fn, so callers may use threads."""
        nproc = limits.max_processes
        if os.geteuid() != 0:  # an ordinary user: its other processes count too
            nproc += _processes_of(os.getuid())
        nofile = limits.open_files + 64
        return [
            self.prlimit,
            f"--nproc={nproc}:{nproc}",
            "--core=0:0",
            f"--nofile={nofile}:{nofile}",
            f"--fsize={limits.disk_bytes}:{limits.disk_bytes}",
            "--",
        ]

    def run(
        self, task_dir: Path, limits: Limits, on_event: OnEvent, mounts: Mounts = NO_MOUNTS
    ) -> SandboxRun:
        return run_streaming(
            self.command(task_dir, limits, mounts), limits=limits, on_event=on_event
        )


def _parents(paths: list[str]) -> list[str]:
    out: list[str] = []
    for path in paths:
        for parent in reversed(Path(path).parents):
            p = str(parent)
            if (
                p != "/"
                and p not in out
                and not any(p == d or p.startswith(d + "/") for d in SYSTEM_DIRS)
            ):
                out.append(p)
    return out


def _system_links() -> list[str]:
    args = []
    for path in SYSTEM_DIRS[1:]:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
    return args


def _fresh_uid() -> int:
    return UID_BASE + secrets.randbelow(UID_SPAN)


@functools.cache
def _python_dirs(python: str) -> list[str]:
    """The directories the interpreter needs: its venv and its base installation."""
    if python == sys.executable:
        out = [sys.prefix, sys.base_prefix]
    else:
        out = subprocess.run(
            [python, "-I", "-c", "import sys; print(sys.prefix); print(sys.base_prefix)"],
            capture_output=True,
            text=True,
            check=True,
            env={},
        ).stdout.split()
    real = str(Path(os.path.realpath(python)).parent.parent)
    dirs = []
    for d in [*out, real]:
        if not any(d == s or d.startswith(s + "/") for s in ("/usr", *dirs)):
            dirs.append(d)
    return dirs


def _processes_of(uid: int) -> int:
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{name}/task"))
            except OSError:
                pass
    return count
