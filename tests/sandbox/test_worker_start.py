"""What a worker costs to start: timing starts a process per side every round, so the harness
imports little at start and its bytecode is written by the host (the sandbox runs it -B)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys

import pytest

from sandbox.backends.base import HARNESS_DIR, compile_harness
from sandbox.harness.imports import TargetError, resolve_entry


def test_a_worker_imports_none_of_the_heavy_modules_at_start():
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from harness import worker; "
        "print(' '.join(m for m in ('inspect', 'ast', 'dataclasses', 'pathlib', 'traceback', "
        "'importlib.abc') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-B", "-P", "-c", code, str(HARNESS_DIR.parent)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == ""


def test_the_host_writes_the_harness_bytecode_where_it_is_stale(tmp_path, monkeypatch):
    harness = tmp_path / "harness"
    harness.mkdir()
    (harness / "worker.py").write_text("X = 1\n")
    monkeypatch.setattr("sandbox.backends.base.HARNESS_DIR", harness)
    compile_harness()
    pycs = list((harness / "__pycache__").glob("worker.*.pyc"))
    assert len(pycs) == 1
    first = pycs[0].read_bytes()
    source = harness / "worker.py"
    source.write_text("X = 2  # changed\n")
    stat = source.stat()
    os.utime(source, (stat.st_atime, stat.st_mtime + 10))  # compileall compares seconds
    compile_harness()
    assert pycs[0].read_bytes() != first


class _Base:
    def inherited(self):
        return 1


class _Target(_Base):
    @staticmethod
    def static():
        return 2

    @property
    def prop(self):
        return 3

    def wrapped(self):
        return 4

    wrapped = functools.wraps(wrapped)(functools.lru_cache(maxsize=None)(wrapped))


def _module():
    import types

    module = types.ModuleType("target")
    module._Target = _Target
    module.plain = lambda: 0

    def f():
        return 5

    module.f = f
    return module


def test_entry_points_resolve_as_inspect_would():
    module = _module()
    assert resolve_entry(module, "f")[1] is module.f
    assert resolve_entry(module, "_Target.inherited")[1] is _Base.inherited
    assert resolve_entry(module, "_Target.static")[1] is vars(_Target)["static"].__func__
    call, function = resolve_entry(module, "_Target.wrapped")
    assert function.__name__ == "wrapped" and call is _Target.wrapped
    for name, stage in [("_Target.prop", "property"), ("plain", "lambda"), ("nope", "no 'nope'")]:
        with pytest.raises(TargetError, match=stage):
            resolve_entry(module, name)
