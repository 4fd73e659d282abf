"""How a worker imports the code under test when it is a module of a project or a package.

The project's root goes first on ``sys.path`` and the environment's site-packages ahead of the
interpreter's own (the harness imported what it needs before). A side whose source differs
from the module's file gets it through :class:`SourceOverlay`: ``import MODULE`` then runs that
source, compiled under the staged file's name (profiles, tracebacks and coverage show its
lines), while ``__file__`` and a package's ``__path__`` stay the original's so that data files
and sibling modules resolve as in the project.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types

# Every round of timing starts fresh workers, so what a worker imports at start is paid per
# process: ``inspect`` (with the ``importlib.abc`` it pulls in: ``importlib.resources``,
# ``pathlib``), ``ast``, ``site``, ``traceback`` and ``dataclasses`` were over a third of a
# worker's ~105 ms start here. They are imported where they are needed (an import error, a
# project's environment, a function's lines).


class TargetError(Exception):
    """The target cannot be optimized as named (with the stage of the problem)."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


class _OverlayLoader:  # an importlib.abc.Loader (duck-typed: see the imports above)
    def __init__(self, source_path: str, source: str, is_package: bool) -> None:
        self.source_path = source_path
        self.source = source
        self._is_package = is_package

    def create_module(self, spec):  # noqa: ANN001, ANN201
        return None

    def exec_module(self, module) -> None:  # noqa: ANN001
        code = compile(self.source, self.source_path, "exec", dont_inherit=True)
        exec(code, module.__dict__)  # noqa: S102 - the code under test, inside the sandbox

    def get_source(self, fullname: str) -> str:
        return self.source

    def is_package(self, fullname: str) -> bool:
        return self._is_package


class SourceOverlay:  # an importlib.abc.MetaPathFinder (duck-typed)
    """``import NAME`` yields ``source`` (staged at ``source_path``) instead of the module's
    file, unless they are the same text: then the original file is imported as it is."""

    def __init__(self, name: str, source_path: str) -> None:
        self.name = name
        self.source_path = source_path
        with open(source_path, encoding="utf-8") as f:
            self.source = f.read()

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001, ANN201
        if fullname != self.name:
            return None
        original = _original_spec(fullname, path, self)
        if original is None:
            return None  # the usual ModuleNotFoundError
        _require_source(fullname, original.origin)
        try:
            with open(original.origin, encoding="utf-8") as f:
                if f.read() == self.source:
                    return None
        except (OSError, UnicodeDecodeError):
            pass
        loader = _OverlayLoader(
            self.source_path, self.source, original.submodule_search_locations is not None
        )
        return importlib.util.spec_from_file_location(
            fullname,
            original.origin,
            loader=loader,
            submodule_search_locations=original.submodule_search_locations,
        )


def _original_spec(fullname: str, path, skip):  # noqa: ANN001, ANN202
    for finder in sys.meta_path:
        if finder is skip or not hasattr(finder, "find_spec"):
            continue
        spec = finder.find_spec(fullname, path, None)
        if spec is not None:
            return spec
    return None


def _require_source(name: str, origin: str | None) -> None:
    if not origin or not origin.endswith(".py"):
        raise TargetError(
            "entry",
            f"module {name} has no Python source to optimize ({origin or 'built in'}: "
            "a C extension, compiled or namespace module)",
        )


def prepare_path(project_dir: str | None, environment_dir: str | None) -> None:
    """Project root first on ``sys.path``, then the environment (with its ``.pth`` files)."""
    if environment_dir:
        import site

        before = list(sys.path)
        site.addsitedir(environment_dir)
        added = [p for p in sys.path if p not in before]
        sys.path[:] = added + [p for p in sys.path if p not in added]
        importlib.invalidate_caches()
    if project_dir:
        sys.path.insert(0, project_dir)


def import_module(name: str, source_path: str):  # noqa: ANN201
    """Import ``name`` with this side's source. The finder goes in before anything is
    imported: a package ``__init__`` that imports the module must get this side's too."""
    sys.meta_path.insert(0, SourceOverlay(name, source_path))
    # A module the harness itself imported (from the standard library, say) is imported
    # afresh, so that this side's source is the one the code under test gets.
    sys.modules.pop(name, None)
    module = importlib.import_module(name)
    _require_source(name, getattr(module, "__file__", None))
    return module


def describe_import_error(exc: BaseException, module: str) -> str:
    """One line: what failed and where in the project, without the traceback."""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" (at {exc.filename}, line {exc.lineno})"
    else:
        import traceback

        harness = os.path.dirname(os.path.abspath(__file__))
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if not frame.filename.startswith(("<frozen", harness)):
                where = f" (at {frame.filename}, line {frame.lineno})"
                break
    return f"importing {module} raised {type(exc).__name__}: {str(exc)[:800]}{where}"


def _getattr_static(owner: object, name: str) -> object:
    """``inspect.getattr_static`` for what an entry point names: a module's attribute, or a
    class's (its MRO's ``__dict__``s, no descriptor or ``__getattr__`` run)."""
    if isinstance(owner, type):
        for klass in owner.__mro__:
            if name in vars(klass):
                return vars(klass)[name]
    elif name in vars(owner):
        return vars(owner)[name]
    raise AttributeError(name)


def _unwrap(function: object) -> object:
    """``inspect.unwrap``: follow ``__wrapped__`` (functools.wraps) to the function inside."""
    seen = {id(function)}
    while hasattr(function, "__wrapped__"):
        function = function.__wrapped__
        if id(function) in seen:
            raise ValueError(f"wrapper loop when unwrapping {function!r}")
        seen.add(id(function))
    return function


def resolve_entry(module, qualname: str):  # noqa: ANN001, ANN201
    """(what to call, the Python function behind it) for ``Class.method`` or ``function``."""
    owner, parts = module, qualname.split(".")
    for i, part in enumerate(parts):
        where = ".".join(parts[:i]) or module.__name__
        try:
            raw = _getattr_static(owner, part)
        except AttributeError:
            raise TargetError(
                "entry", f"{module.__name__} has no {qualname!r} ({where} has no {part!r})"
            ) from None
        if i < len(parts) - 1:
            if not isinstance(raw, type):
                kind = (
                    "a function: nested functions"
                    if isinstance(raw, types.FunctionType)
                    else "not a class"
                )
                raise TargetError(
                    "entry", f"{where}.{part} is {kind} cannot hold the target {qualname!r}"
                )
            owner = raw
    if isinstance(raw, property):
        raise TargetError("entry", f"{qualname} is a property, not a function or method")
    function = raw.__func__ if isinstance(raw, staticmethod | classmethod) else raw
    function = _unwrap(function) if callable(function) else function
    if not isinstance(function, types.FunctionType):
        raise TargetError(
            "entry",
            f"{qualname} is not a Python function ({type(raw).__name__}: "
            "a builtin or C extension cannot be optimized here)",
        )
    if function.__name__ == "<lambda>":
        raise TargetError("entry", f"{qualname} is a lambda; give it a def to optimize it")
    return getattr(owner, parts[-1]), function


def function_lines(filename: str, qualname: str) -> tuple[int, int] | None:
    """First and last line of the body of ``qualname`` in ``filename`` (the def line and the
    decorators, executed at import, are not the function's lines)."""
    import ast

    try:
        with open(filename, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return None
    body = tree.body
    node = None
    for part in qualname.split("."):
        node = next(
            (
                n
                for n in body
                if isinstance(n, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                and n.name == part
            ),
            None,
        )
        if node is None:
            return None
        body = node.body
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    return node.body[0].lineno, node.end_lineno
