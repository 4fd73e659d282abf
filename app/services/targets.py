"""Where the code under optimisation lives: a target named ``MODULE:QUALNAME`` is resolved to
the module's ``.py`` file (in a project directory, a session's environment or the app's own
packages) and, with ``ast``, to the function or method inside it.

Finding the file never imports anything (``importlib.machinery.PathFinder`` walks the search
path the way the import system would, without executing a package's ``__init__``), so a
project's code runs only in the sandbox.
"""

from __future__ import annotations

import ast
import importlib.machinery
import sys
from dataclasses import dataclass
from pathlib import Path

from app.services.errors import EntryNotFound, InvalidInput


class TargetError(EntryNotFound):
    """The target cannot be optimised: not found, not a function, no Python source."""

    field = "target"


@dataclass(frozen=True)
class Target:
    """A resolved target: the module's file and the function's place in it."""

    module: str  # dotted module name, e.g. "PIL.ImageStat"
    qualname: str  # e.g. "Stat._getextrema"
    path: Path  # the module's .py file
    root: Path  # the directory the module is imported from (project root or site-packages)
    source: str  # the module's whole source
    kind: str  # "function", "method", "staticmethod", "classmethod", "property"
    first_line: int  # first line of the definition (its first decorator), 1-based
    last_line: int

    @property
    def spec(self) -> str:
        return f"{self.module}:{self.qualname}"

    @property
    def relpath(self) -> str:
        """The file's path relative to its root, in posix form (what a patch names)."""
        return self.path.relative_to(self.root).as_posix()

    @property
    def lines(self) -> int:
        return self.last_line - self.first_line + 1


def parse_spec(spec: str) -> tuple[str, str]:
    """``"pkg.mod:Cls.meth"`` → ``("pkg.mod", "Cls.meth")`` with a clear message otherwise."""
    text = (spec or "").strip()
    module, sep, qualname = text.partition(":")
    if not sep or not module or not qualname:
        raise TargetError(
            f"The target must be written MODULE:QUALNAME (e.g. `mypkg.stats:Stat._getextrema`); "
            f"got {spec!r}"
        )
    if "<lambda>" in qualname:
        raise TargetError(f"`{text}` is a lambda; only named functions and methods can be targets")
    if "<locals>" in qualname:
        raise TargetError(
            f"`{text}` is a nested function (defined inside another function); move it to the "
            "module or a class to optimise it on its own"
        )
    for part in (*module.split("."), *qualname.split(".")):
        if not part.isidentifier():
            raise TargetError(f"`{text}` is not a valid MODULE:QUALNAME ({part!r} is no name)")
    return module, qualname


def site_packages(environment: Path) -> Path:
    """A venv root's site-packages directory, or the directory itself."""
    env = Path(environment)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (env / "lib" / version / "site-packages", env / "Lib" / "site-packages"):
        if candidate.is_dir():
            return candidate
    found = sorted(env.glob("lib/python3*/site-packages"))
    if found:
        raise InvalidInput(
            f"The environment {env} is for {found[0].parent.name}; the sandbox runs {version}",
            field="environment",
        )
    return env


def search_path(project: Path | None, environment: Path | None) -> list[str]:
    """Where the sandbox imports code under test from, in order: the project root, the
    session's environment, then the app's own packages."""
    paths: list[str] = []
    if project is not None:
        paths.append(str(project))
    if environment is not None:
        paths.append(str(site_packages(environment)))
    # A copy: Streamlit's runs add and drop sys.path[0] while a job thread may be here.
    paths += [p for p in list(sys.path) if p and Path(p).is_dir()]
    return paths


def find_module(
    module: str, *, project: Path | None = None, environment: Path | None = None
) -> tuple[Path, Path]:
    """(the module's .py file, the directory it is imported from), without importing it."""
    paths = search_path(project, environment)
    parts = module.split(".")
    spec = None
    locations: list[str] | None = paths
    root: Path | None = None
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        spec = importlib.machinery.PathFinder.find_spec(name, locations)
        if spec is None and i == 0 and name in sys.builtin_module_names:
            raise TargetError(f"`{name}` is built into the interpreter: it has no Python source")
        if spec is None:
            where = f"the project {project}" if project is not None else "the environment"
            raise TargetError(f"No module `{name}` was found in {where}")
        if i == 0:
            origin_dir = spec.submodule_search_locations or [spec.origin or ""]
            first = Path(list(origin_dir)[0])
            root = first.parent if spec.submodule_search_locations else first.parent
        if i < len(parts) - 1:
            if not spec.submodule_search_locations:
                raise TargetError(
                    f"`{name}` is a module, not a package, so `{module}` is not in it"
                )
            locations = list(spec.submodule_search_locations)
    assert spec is not None and root is not None
    origin = spec.origin
    if origin in (None, "built-in", "frozen") or not spec.has_location:
        raise TargetError(f"`{module}` has no Python source file (it is {origin or 'a namespace'})")
    path = Path(origin)
    if isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
        raise TargetError(
            f"`{module}` is a C extension ({path.name}); perfloop optimises Python source"
        )
    if path.suffix != ".py":
        raise TargetError(f"`{module}` has no .py source (only {path.name})")
    return path, root


def locate(tree: ast.Module, qualname: str, *, spec: str | None = None) -> ast.AST:
    """The def node of ``qualname`` in ``tree`` (classes walked by name), with a clear message
    for anything that is not a function or method defined at module or class level."""
    label = spec or qualname
    parts = qualname.split(".")
    scope: list[ast.stmt] = tree.body
    node: ast.AST | None = None
    for i, part in enumerate(parts):
        node = _named(scope, part)
        if node is None:
            if _nested_def(tree, parts[-1]):
                raise TargetError(
                    f"`{label}` is not defined at module or class level (a nested function "
                    "or one defined inside a block); move it out to optimise it on its own"
                )
            where = ".".join(parts[:i]) or "the module"
            raise TargetError(f"`{label}`: {where} defines no `{part}`")
        last = i == len(parts) - 1
        if isinstance(node, ast.ClassDef):
            if last:
                raise TargetError(f"`{label}` is a class; name one of its methods")
            scope = node.body
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if not last:
                raise TargetError(
                    f"`{label}`: `{part}` is a function, and functions nested in it cannot be "
                    "targets; move the inner function out"
                )
        elif _is_lambda(node):
            raise TargetError(
                f"`{label}` is a lambda; only def functions and methods can be targets"
            )
        else:
            raise TargetError(f"`{label}` is not a function or method (it is assigned a value)")
    assert node is not None
    return node


def _named(body: list[ast.stmt], name: str) -> ast.stmt | None:
    found = None
    for stmt in body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if stmt.name == name:
                found = stmt
        elif isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                found = stmt
    return found  # the last binding wins, as at run time


def _is_lambda(node: ast.AST) -> bool:
    return isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Lambda)


def _nested_def(tree: ast.Module, name: str) -> bool:
    return any(
        isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name
        for n in ast.walk(tree)
    )


def kind_of(node: ast.AST, qualname: str) -> str:
    names = {
        d.id if isinstance(d, ast.Name) else getattr(d, "attr", "")
        for d in getattr(node, "decorator_list", [])
    }
    for deco in ("staticmethod", "classmethod", "property", "cached_property"):
        if deco in names:
            return "property" if deco.endswith("property") else deco
    return "method" if "." in qualname else "function"


def first_line(node: ast.AST) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno] + [d.lineno for d in decorators])  # type: ignore[attr-defined]


def resolve_in_source(source: str, module: str, qualname: str, path: Path, root: Path) -> Target:
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise TargetError(
            f"`{module}` ({path}) does not parse: line {exc.lineno}: {exc.msg}"
        ) from exc
    node = locate(tree, qualname, spec=f"{module}:{qualname}")
    return Target(
        module=module,
        qualname=qualname,
        path=path,
        root=root,
        source=source,
        kind=kind_of(node, qualname),
        first_line=first_line(node),
        last_line=node.end_lineno or node.lineno,  # type: ignore[attr-defined]
    )


def resolve(spec: str, *, project: Path | None = None, environment: Path | None = None) -> Target:
    """Resolve ``MODULE:QUALNAME`` in a project directory or an environment (or the app's)."""
    module, qualname = parse_spec(spec)
    if project is not None and not Path(project).is_dir():
        raise InvalidInput(f"The project directory {project} does not exist", field="project")
    if environment is not None and not Path(environment).is_dir():
        raise InvalidInput(
            f"The environment directory {environment} does not exist", field="environment"
        )
    path, root = find_module(module, project=project, environment=environment)
    if project is not None and path.resolve().is_relative_to(Path(project).resolve()):
        root = Path(project)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"The source of `{module}` ({path}) cannot be read: {exc}") from exc
    return resolve_in_source(source, module, qualname, path, root)


def target_lines(source: str, qualname: str) -> tuple[int, int]:
    """(first, last) line of ``qualname`` in ``source`` (a candidate's module)."""
    node = locate(ast.parse(source), qualname)
    return first_line(node), node.end_lineno or node.lineno  # type: ignore[attr-defined]
