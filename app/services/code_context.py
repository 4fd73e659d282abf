"""What the model sees of a real module: the target's source, the module's imports, and the
project functions and classes the target calls directly (one hop, found with ``ast``:
``helper()``, ``self.method()``, ``Class()``, names imported from sibling modules, including
relative imports). Nothing is imported or run; sources are read from the files."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from app.services.code import source_lines
from app.services.targets import first_line, locate

#: Longest source shown for one callee (a class is shown up to this many lines).
MAX_CALLEE_LINES = 60
MAX_CALLEES = 8


@dataclass(frozen=True)
class Callee:
    name: str  # how the target refers to it, e.g. "self._norm", "helpers.clip"
    where: str  # "module.path:Qual.name"
    source: str


def _text(lines: list[str], node: ast.AST, limit: int = MAX_CALLEE_LINES) -> str:
    start, end = first_line(node), node.end_lineno or node.lineno  # type: ignore[attr-defined]
    chunk = lines[start - 1 : end]
    if len(chunk) > limit:
        chunk = chunk[:limit] + [f"    # … {len(chunk) - limit} more lines\n"]
    return "".join(chunk).rstrip() + "\n"


def target_source(source: str, qualname: str) -> str:
    node = locate(ast.parse(source), qualname)
    return _text(source_lines(source), node, limit=10**9)


def module_imports(source: str) -> str:
    tree = ast.parse(source)
    lines = source_lines(source)
    return "".join(_text(lines, n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom))


def _resolve_relative(module: str, level: int, name: str | None, is_package: bool) -> str:
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _module_file(root: Path, dotted: str) -> Path | None:
    rel = Path(*dotted.split("."))
    for path in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
        if path.is_file():
            return path
    return None


def _def_in(path: Path, qualname: str) -> tuple[str, str] | None:
    try:
        source = path.read_text(encoding="utf-8")
        node = locate(ast.parse(source), qualname)
    except Exception:  # noqa: BLE001 - a callee we cannot show is simply left out
        return None
    return _text(source_lines(source), node), qualname


def callees(
    source: str, qualname: str, *, module: str, root: Path | None, module_path: Path | None = None
) -> list[Callee]:
    """The project definitions ``qualname`` calls directly, in the order first called."""
    tree = ast.parse(source)
    lines = source_lines(source)
    target = locate(tree, qualname)
    owner = qualname.rsplit(".", 1)[0] if "." in qualname else None
    is_package = module_path is not None and module_path.name == "__init__.py"
    top = {
        n.name: n
        for n in tree.body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    imported: dict[str, tuple[str, str | None]] = {}  # local name -> (module, attribute)
    for n in tree.body:
        if isinstance(n, ast.ImportFrom):
            mod = (
                _resolve_relative(module, n.level, n.module, is_package)
                if n.level
                else (n.module or "")
            )
            for a in n.names:
                imported[a.asname or a.name] = (mod, a.name)
        elif isinstance(n, ast.Import):
            for a in n.names:
                if a.asname:
                    imported[a.asname] = (a.name, None)
                else:
                    imported[a.name.split(".")[0]] = (a.name.split(".")[0], None)
    package = module.split(".")[0]
    out: list[Callee] = []
    seen: set[str] = set()

    def add(name: str, where: str, text: str) -> None:
        if where not in seen and len(out) < MAX_CALLEES:
            seen.add(where)
            out.append(Callee(name, where, text))

    for call in (n for n in ast.walk(target) if isinstance(n, ast.Call)):
        fn = call.func
        if isinstance(fn, ast.Name):
            name = fn.id
            if name in top and name != qualname:
                add(name, f"{module}:{name}", _text(lines, top[name]))
            elif name in imported and root is not None:
                mod, attr = imported[name]
                if attr is None or not mod.startswith(package):
                    continue
                path = _module_file(root, mod)
                found = _def_in(path, attr) if path else None
                if found is None and _module_file(root, f"{mod}.{attr}") is not None:
                    continue  # a submodule was imported, not a function
                if found:
                    add(name, f"{mod}:{attr}", found[0])
        elif isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name):
            base, attr = fn.value.id, fn.attr
            if base in ("self", "cls") and owner is not None:
                qual = f"{owner}.{attr}"
                if qual == qualname:
                    continue
                try:
                    node = locate(tree, qual)
                except Exception:  # noqa: BLE001 - inherited or dynamic: not shown
                    continue
                add(f"{base}.{attr}", f"{module}:{qual}", _text(lines, node))
            elif base in top and isinstance(top[base], ast.ClassDef):
                try:
                    node = locate(tree, f"{base}.{attr}")
                except Exception:  # noqa: BLE001
                    continue
                add(f"{base}.{attr}", f"{module}:{base}.{attr}", _text(lines, node))
            elif base in imported and root is not None:
                mod, sub = imported[base]
                dotted = f"{mod}.{sub}" if sub else mod
                if not dotted.startswith(package):
                    continue
                path = _module_file(root, dotted)
                found = _def_in(path, attr) if path else None
                if found:
                    add(f"{base}.{attr}", f"{dotted}:{attr}", found[0])
    return out


def hot_hint_lines(source: str, qualname: str, profile: list) -> list[str]:
    """The ruff hints on the target's hot lines, as the model sees them:
    ``line 4 (38 % of time): PERF401 Use a list comprehension …``."""
    from app.services.hints import hot_hints, performance_hints
    from app.services.targets import target_lines

    try:
        span = target_lines(source, qualname)
    except Exception:  # noqa: BLE001 - a version without the target gets no hints
        return []
    return [h.text() for h in hot_hints(performance_hints(source), profile, lines=span)]


def module_turn_text(view, base, instruction: str, feedback: list, *, compact: bool) -> str:  # noqa: ANN001
    """The turn message of a module session (``view``: SessionView, ``base``: CandidateView)."""
    from app.llm import prompts
    from app.services.projects import Coverage

    info = view.info
    qualname = info.entry_point
    root = Path(info.project_path) if info.project_path else None
    module_path = root / info.module_file if root and info.module_file else None
    try:
        code = target_source(base.source, qualname)
        calls = callees(
            base.source, qualname, module=info.module, root=root, module_path=module_path
        )
    except Exception:  # noqa: BLE001 - the version lost the target: show the whole module
        code, calls = base.source, []
    profile = base.evaluation.line_profile if base.evaluation else []
    cov_data = (
        view.baseline.evaluation.coverage if view.baseline and view.baseline.evaluation else None
    )
    cov = Coverage.of(cov_data)
    return prompts.module_turn_message(
        instruction,
        target=info.target or f"{info.module}:{qualname}",
        code=code,
        imports=module_imports(base.source),
        callees=[(c.name, c.source) for c in calls],
        feedback=feedback,
        hints=hot_hint_lines(base.source, qualname, profile),
        coverage=cov.text(qualname) if cov else None,
        compact=compact,
    )
