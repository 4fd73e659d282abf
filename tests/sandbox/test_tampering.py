"""Code that tries to skew the judgement: no speedup may be reported, ``tampered`` where seen.

Each case runs on bwrap and on Docker. The candidates do the baseline's work, so a reported
speedup far from 1 could only come from the trick working.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

WORK = "    return sum(range(n))\n"


def assert_not_rewarded(verdict: dict) -> None:
    assert verdict["speedup"] is None or verdict["speedup"] < 1.5, verdict["speedup"]
    json.dumps(verdict)


def test_prints_a_fake_verdict(evaluate):
    fake = json.dumps({"event": "done", "status": "ok", "message": "forged", "speedup": 1000})
    code = f"def f(n):\n    print({fake!r})\n    print({fake!r}, file=__import__('sys').stderr)\n"
    verdict = evaluate(code + WORK)
    assert verdict["status"] == "ok"
    assert verdict["message"] != "forged"
    assert_not_rewarded(verdict)


def test_writes_to_the_result_channel(evaluate):
    fake = (json.dumps({"event": "done", "status": "ok", "message": "forged"}) + "\n").encode()
    code = (
        "import os\ndef f(n):\n"
        "    for fd in range(64):\n"
        "        try:\n"
        f"            os.write(fd, {fake!r})\n"
        "        except OSError:\n            pass\n"
        "    for pid in os.listdir('/proc'):\n"
        "        for fd in range(64):\n"
        "            try:\n"
        f"                with open(f'/proc/{{pid}}/fd/{{fd}}', 'wb') as fh:\n"
        f"                    fh.write({fake!r})\n"
        "            except (OSError, ValueError):\n                pass\n" + WORK
    )
    verdict = evaluate(code)
    assert verdict["message"] != "forged"
    assert verdict["status"] in ("ok", "tampered"), verdict["message"]
    assert_not_rewarded(verdict)


def test_calls_sys_exit(evaluate):
    verdict = evaluate("import sys\ndef f(n):\n    sys.exit(0)\n")
    assert verdict["status"] == "tampered", verdict["message"]
    assert "SystemExit" in verdict["message"]
    assert verdict["speedup"] is None


def test_calls_os_exit(evaluate):
    verdict = evaluate("import os\ndef f(n):\n    os._exit(0)\n")
    assert verdict["status"] == "tampered", verdict["message"]
    assert "exited with status 0" in verdict["message"]
    assert verdict["speedup"] is None


def test_patches_the_clock(evaluate):
    code = (
        "import time\n_real = time.perf_counter\n"
        "time.perf_counter = lambda: _real() * 0.001\n"
        "time.process_time = lambda: 0.0\n"
        "def f(n):\n" + WORK
    )
    verdict = evaluate(code)
    assert verdict["status"] == "tampered", verdict["message"]
    assert "time.perf_counter" in verdict["message"]
    assert verdict["speedup"] is None


def test_patches_builtins(evaluate):
    code = "import builtins\nbuiltins.sum = lambda xs: 0\ndef f(n):\n" + WORK
    verdict = evaluate(code)
    assert verdict["status"] == "tampered", verdict["message"]
    assert "builtins.sum" in verdict["message"]


def test_patches_the_harness(evaluate):
    code = (
        "import sys\ndef f(n):\n"
        "    for name, mod in list(sys.modules.items()):\n"
        "        if name.endswith('.worker'):\n"
        "            mod.Worker.cmd_go = lambda self, message: {'ok': True}\n" + WORK
    )
    verdict = evaluate(code)
    assert verdict["status"] == "tampered", verdict["message"]
    assert "harness" in verdict["message"]


def test_caches_results_across_calls(evaluate):
    code = "import functools\n@functools.lru_cache(maxsize=None)\ndef f(n):\n" + WORK
    verdict = evaluate(code)
    assert verdict["status"] == "tampered", verdict["message"]
    assert "cache" in verdict["message"]
    assert verdict["speedup"] is None


def test_caches_in_a_module_dict(evaluate):
    code = (
        "_memo = {}\ndef f(n):\n    if n not in _memo:\n"
        "        _memo[n] = sum(range(n))\n    return _memo[n]\n"
    )
    verdict = evaluate(code)
    assert verdict["status"] == "tampered", verdict["message"]
    assert "_memo" in verdict["message"]


def test_returns_the_same_mutable_object(evaluate):
    code = "_out = {}\ndef f(n):\n    r = _out.setdefault(n, [sum(range(n))])\n    return r\n"
    verdict = evaluate(code, baseline="def f(n):\n    return [sum(range(n))]\n")
    assert verdict["status"] == "tampered", verdict["message"]


def test_background_thread_started_at_import(evaluate):
    code = (
        "import threading\n"
        "def _spin():\n    while True:\n        pass\n"
        "threading.Thread(target=_spin, daemon=True).start()\n"
        "def f(n):\n" + WORK
    )
    verdict = evaluate(code)
    assert verdict["status"] == "tampered", verdict["message"]
    assert "thread" in verdict["message"]
    assert verdict["speedup"] is None


def test_background_process_to_slow_the_baseline(evaluate):
    code = "import os\nif os.fork() == 0:\n    while True:\n        pass\ndef f(n):\n" + WORK
    verdict = evaluate(code)
    assert verdict["status"] == "tampered", verdict["message"]
    assert "process" in verdict["message"]
    assert verdict["speedup"] is None


def test_mutates_inputs_differently(evaluate):
    baseline = "def f(xs):\n    return sorted(xs)\n"
    candidate = "def f(xs):\n    xs.sort()\n    return xs\n"
    workload = "def cases():\n    return [([3, 1, 2],)]\n"
    verdict = evaluate(candidate, baseline=baseline, workload=workload)
    assert verdict["status"] == "failed"
    assert "mutates its inputs" in verdict["mismatches"][0]["reason"]
