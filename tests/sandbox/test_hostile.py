"""Hostile and broken code under test, one test per case, on bwrap and on Docker.

Each test checks the status and message the verdict gives, and where it matters that the host
was not affected (files, processes, network, secrets).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from app.config import get_settings

pytestmark = pytest.mark.slow

LOOP_FOREVER = "def f(n):\n    while True:\n        pass\n"


def assert_no_speedup(verdict: dict) -> None:
    assert verdict["speedup"] is None and verdict["ci95"] is None and verdict["verdict"] is None
    assert verdict["correct"] is False
    json.dumps(verdict)  # always serialisable


def test_infinite_loop(evaluate):
    verdict = evaluate(LOOP_FOREVER, limits={"wall_s": 3})
    assert verdict["status"] == "timeout", verdict["message"]
    assert "time limit" in verdict["message"]
    assert verdict["duration_s"] < 8
    assert_no_speedup(verdict)


def test_sleep(evaluate):
    verdict = evaluate("import time\ndef f(n):\n    time.sleep(3600)\n", limits={"wall_s": 3})
    assert verdict["status"] == "timeout"
    assert verdict["duration_s"] < 8


def test_blocking_read(evaluate):
    code = (
        "import os, sys\ndef f(n):\n    sys.stdin.read()\n    r, w = os.pipe()\n    os.read(r, 1)\n"
    )
    verdict = evaluate(code, limits={"wall_s": 3})
    assert verdict["status"] == "timeout"
    assert verdict["duration_s"] < 8


def test_memory_bomb(evaluate):
    code = "def f(n):\n    hog = []\n    while True:\n        hog.append(bytearray(10**7))\n"
    verdict = evaluate(code, limits={"memory_bytes": 512 * 1024**2})
    assert verdict["status"] == "memory", verdict["message"]
    assert "memory" in verdict["message"]
    assert_no_speedup(verdict)


def _host_processes() -> int:
    return sum(1 for name in os.listdir("/proc") if name.isdigit())


def test_fork_bomb(evaluate):
    code = (
        "import os\ndef f(n):\n    while True:\n        try:\n            os.fork()\n"
        "        except OSError:\n            pass\n"
    )
    before = _host_processes()
    peak = [before]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _host_processes())
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        verdict = evaluate(code, limits={"wall_s": 4, "max_processes": 32})
    finally:
        done.set()
        watcher.join()
    assert verdict["status"] in ("timeout", "tampered"), verdict["message"]
    assert peak[0] - before <= 32 + 8  # the sandbox's own processes, bounded by the limit
    time.sleep(0.5)
    assert _host_processes() <= before + 5  # and all gone afterwards
    assert_no_speedup(verdict)


def test_recursion_bomb(evaluate):
    # Python 3.11 keeps Python frames off the C stack: with the recursion limit lifted, this
    # grows until memory runs out and unwinding takes tens of seconds. Any of these is fine as
    # long as it is bounded and says what happened.
    code = "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n) + 1\n"
    verdict = evaluate(code, limits={"wall_s": 5, "memory_bytes": 256 * 1024**2})
    assert verdict["status"] in ("crashed", "failed", "memory", "timeout"), verdict["message"]
    assert verdict["message"] or verdict["mismatches"]
    assert verdict["duration_s"] < 10
    assert_no_speedup(verdict)


def test_plain_recursion_error(evaluate):
    verdict = evaluate("def f(n):\n    return f(n) + 1\n")
    assert verdict["status"] == "failed"
    assert "raised RecursionError" in verdict["mismatches"][0]["reason"]


def test_endless_output(evaluate):
    code = "def f(n):\n    while True:\n        print('spam' * 100)\n"
    verdict = evaluate(code)
    assert verdict["status"] == "output_limit", verdict["message"]
    assert "spam" in verdict["output"]["stdout"]
    assert len(verdict["output"]["stdout"]) <= 8192
    assert_no_speedup(verdict)


def test_non_utf8_output(evaluate):
    code = (
        "import sys\ndef f(n):\n    sys.stdout.buffer.write(b'\\xff\\xfe\\x80 bytes\\n')\n"
        "    sys.stdout.flush()\n    return sum(range(n))\n"
    )
    verdict = evaluate(code)
    assert verdict["status"] == "ok", verdict["message"]
    assert "\ufffd" in verdict["output"]["stdout"] and "bytes" in verdict["output"]["stdout"]
    json.dumps(verdict)


def test_huge_return_value(evaluate):
    verdict = evaluate("def f(n):\n    return 'x' * 10**8\n")
    assert verdict["status"] == "failed", verdict["message"]
    assert "too large" in verdict["mismatches"][0]["reason"]
    assert len(json.dumps(verdict)) < 200_000
    assert_no_speedup(verdict)


def test_reading_environment_secrets(evaluate, monkeypatch):
    monkeypatch.setenv("PERFLOOP_SANDBOX_TEST_SECRET", "hunter2-secret")
    code = (
        "import os\ndef f(n):\n    seen = dict(os.environ)\n"
        "    try:\n        seen['init'] = open('/proc/1/environ').read()\n"
        "    except OSError:\n        pass\n"
        "    return '2-secret' in repr(seen) or sum(range(n))\n"
    )
    verdict = evaluate(code)
    assert "hunter2" not in json.dumps(verdict)
    assert verdict["equivalent"] is True, verdict["mismatches"]


def test_reading_files_outside_the_sandbox(evaluate, tmp_path_factory):
    settings = get_settings()
    data_dir = Path(settings.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret_db = data_dir / "sandbox-test-secret.db"
    secret_home = Path.home() / ".perfloop-sandbox-test-secret"
    for path in (secret_db, secret_home):
        path.write_text("top secret")
    paths = [
        str(secret_db),
        str(secret_home),
        str(Path(__file__).resolve()),
        str(Path(__file__).resolve().parents[2] / "app" / "config.py"),
        "/etc/shadow",
    ]
    code = (
        "def f(n):\n    found = []\n"
        f"    for p in {paths!r}:\n"
        "        try:\n            found.append(open(p).read()[:20])\n"
        "        except OSError:\n            pass\n"
        "    return found or sum(range(n))\n"
    )
    try:
        verdict = evaluate(code)
    finally:
        secret_db.unlink()
        secret_home.unlink()
    assert "top secret" not in json.dumps(verdict)
    assert verdict["equivalent"] is True, verdict["mismatches"]


def test_network_access(evaluate):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    port = server.getsockname()[1]
    code = (
        f"import socket\ndef f(n):\n    for host in [('127.0.0.1', {port}), ('1.1.1.1', 53)]:\n"
        "        try:\n            socket.create_connection(host, timeout=1).close()\n"
        "            return 'connected'\n        except OSError:\n            pass\n"
        "    return sum(range(n))\n"
    )
    verdict = evaluate(code)
    with pytest.raises(TimeoutError):
        server.accept()
    server.close()
    assert verdict["equivalent"] is True, verdict["mismatches"]


def test_writing_outside_the_work_dir(evaluate, tmp_path):
    targets = [
        tmp_path / "pwned",
        Path(__file__).parent / "pwned",
        Path("/etc/pwned"),
        "/opt/perfloop/task/pwned",
        "/opt/perfloop/perfloop_harness/pwned",
    ]
    code = (
        "def f(n):\n    wrote = []\n"
        f"    for p in {[str(t) for t in targets]!r}:\n"
        "        try:\n            open(p, 'w').write('x')\n            wrote.append(p)\n"
        "        except OSError:\n            pass\n"
        "    return wrote or sum(range(n))\n"
    )
    verdict = evaluate(code)
    assert verdict["equivalent"] is True, verdict["mismatches"]
    assert not (tmp_path / "pwned").exists() and not (Path(__file__).parent / "pwned").exists()


def test_filling_the_disk(evaluate):
    code = (
        "import os\ndef f(n):\n    chunk = b'x' * 2**20\n    total = 0\n"
        "    for path in ('/scratch/fill', '/tmp/fill', os.path.expanduser('~/fill')):\n"
        "        try:\n            with open(path, 'wb') as fh:\n"
        "                for _ in range(4096):\n                    fh.write(chunk)\n"
        "                    total += len(chunk)\n"
        "        except OSError:\n            pass\n"
        "        try:\n            os.unlink(path)\n        except OSError:\n            pass\n"
        "    return total < 4096 * 2**20 or 'unbounded'\n"
    )
    baseline = "def f(n):\n    return True\n"
    verdict = evaluate(code, baseline=baseline)
    assert verdict["equivalent"] is True, verdict["mismatches"]


def test_planting_symlinks(evaluate, tmp_path):
    secret = Path.home() / ".perfloop-sandbox-test-symlink-secret"
    secret.write_text("top secret")
    code = (
        "import os\ndef f(n):\n    done = []\n"
        f"    for link, target in [('/scratch/home', {str(secret)!r}),\n"
        "                         ('/scratch/shadow', '/etc/shadow'),\n"
        "                         ('/opt/perfloop/task/evil', '/'),\n"
        f"                         ({str(tmp_path / 'evil')!r}, '/')]:\n"
        "        try:\n            os.symlink(target, link)\n"
        "            done.append(open(link).read())\n"
        "        except OSError:\n            pass\n"
        "    return done or sum(range(n))\n"
    )
    try:
        verdict = evaluate(code)
    finally:
        secret.unlink()
    assert verdict["equivalent"] is True, verdict["mismatches"]
    assert not (tmp_path / "evil").exists()


def test_killing_other_processes(evaluate):
    victim = subprocess.Popen(["sleep", "60"])
    code = (
        "import os, signal\ndef f(n):\n"
        f"    for pid in (-1, 1, {victim.pid}, {os.getpid()}):\n"
        "        try:\n            os.kill(pid, signal.SIGKILL)\n"
        "        except OSError:\n            pass\n"
        "    return sum(range(n))\n"
    )
    try:
        verdict = evaluate(code)
        assert victim.poll() is None, "a host process was killed from inside the sandbox"
    finally:
        victim.kill()
        victim.wait()
    assert verdict["status"] == "tampered", verdict["message"]
    assert_no_speedup(verdict)


def test_ignoring_sigterm(evaluate):
    code = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + LOOP_FOREVER
    verdict = evaluate(code, limits={"wall_s": 3})
    assert verdict["status"] == "timeout"
    assert verdict["duration_s"] < 8


def _processes_with(marker: str) -> list[str]:
    found = []
    for name in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(name)
    return found


def test_daemonizing(evaluate):
    code = (
        "import os\ndef f(n):\n    if os.fork() == 0:\n        os.setsid()\n"
        "        if os.fork() == 0:\n            os.execvp('sleep', ['sleep', '97531'])\n"
        "        os._exit(0)\n    os.wait()\n    return sum(range(n))\n"
    )
    verdict = evaluate(code)
    assert verdict["status"] == "tampered", verdict["message"]
    assert "process" in verdict["message"]
    time.sleep(0.3)
    assert _processes_with("97531") == []
    assert_no_speedup(verdict)


def test_leaving_threads_running(evaluate):
    code = (
        "import threading, time\ndef f(n):\n"
        "    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        "    return sum(range(n))\n"
    )
    verdict = evaluate(code)
    assert verdict["status"] == "tampered", verdict["message"]
    assert "thread" in verdict["message"]
    assert_no_speedup(verdict)


def test_syntax_error(evaluate):
    verdict = evaluate("def f(n):\n    return (n +\n")
    assert verdict["status"] == "failed"
    assert "SyntaxError" in verdict["message"] and "does not import" in verdict["message"]
    assert_no_speedup(verdict)


def test_import_error(evaluate):
    verdict = evaluate("import no_such_module_xyz\ndef f(n):\n    return n\n")
    assert verdict["status"] == "failed"
    assert "ModuleNotFoundError" in verdict["message"]
    assert "no_such_module_xyz" in verdict["message"]


def test_missing_entry_point(evaluate):
    verdict = evaluate("def g(n):\n    return sum(range(n))\n")
    assert verdict["status"] == "failed"
    assert "'f'" in verdict["message"] and "entry point" in verdict["message"]


def test_tests_that_error(evaluate):
    tests = (
        "from target import f\n\ndef test_ok():\n    assert f(3) == 3\n\n"
        "def test_errors():\n    raise TypeError('broken test')\n\n"
        "def test_wrong():\n    assert f(4) == 7\n"
    )
    verdict = evaluate(BASELINE_COPY, tests=tests)
    assert verdict["status"] == "failed"
    assert verdict["tests"]["passed"] == 1 and verdict["tests"]["failed"] == 2
    messages = {f["name"]: f["message"] for f in verdict["tests"]["failures"]}
    assert "broken test" in messages["test_errors"]
    assert "6 == 7" in messages["test_wrong"]
    assert_no_speedup(verdict)


BASELINE_COPY = "def f(n):\n    return sum(range(n))\n"
