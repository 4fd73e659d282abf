"""The parts of project sessions that need no sandbox: resolving MODULE:QUALNAME, splicing a
proposed method into the real module byte for byte, what the model is shown, ruff hints and
the patch (which `git apply` and `patch -p1` accept, after which the project's tests pass)."""

from __future__ import annotations

import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.services.code import extract_code, splice
from app.services.code_context import callees, module_imports, target_source
from app.services.hints import hot_hints, performance_hints
from app.services.patches import unified_patch
from app.services.targets import TargetError, resolve
from tests.services.projectkit import FASTER_METHOD, FILES, write_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "proj")


@pytest.mark.parametrize(
    ("spec", "kind", "first", "last"),
    [
        ("statkit.stats:Stat.extrema", "method", 22, 34),
        ("statkit.stats:Stat.scale", "staticmethod", 36, 38),
        ("statkit.stats:Stat.empty", "classmethod", 40, 42),
        ("statkit.stats:mean", "function", 45, 46),
        ("statkit._util:clip", "function", 1, 2),
    ],
)
def test_targets_resolve_to_their_lines(project, spec, kind, first, last):
    t = resolve(spec, project=project)
    assert (t.kind, t.first_line, t.last_line) == (kind, first, last)
    assert t.relpath == spec.split(":")[0].replace(".", "/") + ".py"
    assert t.source == (project / t.relpath).read_text()


def test_a_package_module_resolves_to_its_init(project):
    (project / "statkit" / "__init__.py").write_text("def top():\n    return 1\n")
    assert resolve("statkit:top", project=project).relpath == "statkit/__init__.py"


def test_an_installed_module_is_found_without_importing_it():
    t = resolve("json.decoder:JSONDecoder.raw_decode")
    assert t.path.name == "decoder.py" and t.relpath == "json/decoder.py"
    assert t.kind == "method"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("statkit.stats", "MODULE:QUALNAME"),
        ("statkit.stats:Stat", "is a class"),
        ("statkit.stats:Stat.nope", "defines no `nope`"),
        ("statkit.stats:Stat.extrema.inner", "functions nested in it"),
        ("statkit.stats:outer.<locals>.inner", "nested function"),
        ("statkit.stats:<lambda>", "lambda"),
        ("statkit.nothere:f", "No module `statkit.nothere`"),
        ("statkit.stats.x:f", "not a package"),
    ],
)
def test_bad_targets_get_clear_messages(project, spec, message):
    with pytest.raises(TargetError, match=message):
        resolve(spec, project=project)


def test_nested_functions_lambdas_and_values_are_refused(project):
    (project / "statkit" / "odd.py").write_text(
        "def outer():\n    def inner():\n        return 1\n    return inner\n\n"
        "square = lambda x: x * x\nLIMIT = 3\n"
    )
    with pytest.raises(TargetError, match="nested function"):
        resolve("statkit.odd:inner", project=project)
    with pytest.raises(TargetError, match="is a lambda"):
        resolve("statkit.odd:square", project=project)
    with pytest.raises(TargetError, match="not a function or method"):
        resolve("statkit.odd:LIMIT", project=project)


def test_c_extensions_and_modules_without_source_are_refused(project):
    with pytest.raises(TargetError, match="C extension"):
        resolve("numpy._core._multiarray_umath:add")
    with pytest.raises(TargetError, match="no Python source"):
        resolve("sys:exit")
    src = project / "compiled.py"
    src.write_text("def f():\n    return 1\n")
    py_compile.compile(str(src), cfile=str(project / "compiled.pyc"))
    src.unlink()
    with pytest.raises(TargetError, match="no .py source"):
        resolve("compiled:f", project=project)


def test_a_proposed_method_is_spliced_and_the_rest_stays_byte_for_byte(project):
    base = (project / "statkit/stats.py").read_text().replace("\n", "\r\n")  # CRLF survives
    out, names = splice(base, FASTER_METHOD.replace("    ", "", 1), "Stat.extrema")
    assert names == ["Stat.extrema"]
    before, after = base.split("    def extrema")[0], base.split("    @staticmethod")[1]
    assert out.startswith(before) and out.endswith(after)
    assert "band = h[i : i + 256]\r\n" in out and "\n" not in out.replace("\r\n", "")


def test_a_class_block_merges_member_by_member_and_adds_helpers(project):
    base = (project / "statkit/stats.py").read_text()
    block = (
        "import itertools\n\nclass Stat:\n" + FASTER_METHOD + "\n    def _first(self):\n"
        "        return 0\n\n\ndef helper():\n    return 2\n"
    )
    out, names = splice(base, block, "Stat.extrema")
    assert names == ["Stat.extrema", "Stat._first", "helper"]
    assert out.index("import itertools") < out.index("class Stat")
    assert out.index("def _first") < out.index("def mean")  # inside the class
    assert out.rstrip().endswith("def helper():\n    return 2")
    assert "def histogram(self):" in out and "def scale(x):" in out


def test_extract_code_uses_qualnames_for_dotted_entries(project):
    base = (project / "statkit/stats.py").read_text()
    reply = f"Scan from both ends.\n\n```python\n{FASTER_METHOD}```\n"
    got = extract_code(reply, base, "Stat.extrema")
    assert len(got.proposals) == 1
    assert "next(j for j in range(255, -1, -1)" in got.proposals[0].source
    gone = extract_code("```python\nclass Other:\n    pass\n```", base, "Stat.extrema")
    assert gone.proposals[0].source.count("def extrema") == 1  # the target is still there


def test_the_model_sees_the_target_its_callees_and_the_imports(project):
    source = (project / "statkit/stats.py").read_text()
    assert target_source(source, "Stat.extrema").startswith("    def extrema(self):")
    found = {
        c.name: c for c in callees(source, "Stat.extrema", module="statkit.stats", root=project)
    }
    assert set(found) == {"self.histogram", "clip"}
    assert found["clip"].where == "statkit._util:clip"
    assert found["clip"].source == FILES["statkit/_util.py"]
    assert "np.bincount" in found["self.histogram"].source
    assert module_imports(source) == "import numpy as np\nfrom ._util import clip\n"


def test_ruff_hints_fall_on_hot_lines():
    source = (
        "def f(xs):\n    out = []\n    for x in xs:\n        out.append(x * 2)\n    return out\n"
    )
    hints = performance_hints(source)
    assert [(h.line, h.code) for h in hints] == [(4, "PERF401")]
    hot = hot_hints(hints, [{"line": 3, "share": 0.2}, {"line": 4, "share": 0.38}])
    assert [h.text() for h in hot] == [
        "line 4 (38 % of time): PERF401 Use a list comprehension to create a transformed list"
    ]
    assert hot_hints(hints, [{"line": 4, "share": 0.01}]) == []
    assert performance_hints("def (:\n") == []  # a syntax error gives no hints, no crash


def test_speed_furb_rules_are_on():
    hints = performance_hints("def f(xs):\n    return sorted(xs)[0]\n")
    assert [h.code for h in hints] == ["FURB192"]


@pytest.mark.parametrize("tool", ["git", "patch"])
def test_the_patch_applies_to_a_fresh_copy_and_the_tests_pass(project, tmp_path, tool):
    base = (project / "statkit/stats.py").read_text()
    new, _ = splice(base, FASTER_METHOD, "Stat.extrema")
    patch = unified_patch(base, new, "statkit/stats.py")
    assert patch.startswith("diff --git a/statkit/stats.py b/statkit/stats.py\n")
    fresh = tmp_path / "fresh"
    shutil.copytree(project, fresh)
    cmd = ["git", "apply", "-"] if tool == "git" else ["patch", "-p1"]
    done = subprocess.run(cmd, cwd=fresh, input=patch, text=True, capture_output=True)
    assert done.returncode == 0, done.stderr + done.stdout
    assert (fresh / "statkit/stats.py").read_text() == new
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=fresh,
        capture_output=True,
        text=True,
    )
    assert tests.returncode == 0 and "3 passed" in tests.stdout, tests.stdout + tests.stderr


def test_a_patch_marks_a_missing_final_newline():
    patch = unified_patch("a\nb", "a\nc", "x.py")
    assert patch.endswith("-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n")
    assert unified_patch("same\n", "same\n", "x.py") == ""
