"""Code in LLM replies: find the fenced blocks, and turn each into a full module — either the
block is a whole module, or it holds single functions (classes, constants, imports) that are
merged into the current module by name with ``ast``, keeping the rest of the file as it was."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Literal

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)^[ \t]*```", re.S | re.M)
_OPEN_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*)\Z", re.S | re.M)
PYTHON_TAGS = ("", "python", "py", "python3")


@dataclass(frozen=True)
class ProposedCode:
    """One usable code version found in a reply."""

    index: int  # which block of the reply (0-based)
    source: str  # the full module after merging
    kind: Literal["module", "functions"]
    names: list[str] = field(default_factory=list)  # top-level names the block defined


@dataclass(frozen=True)
class Extraction:
    proposals: list[ProposedCode]
    problems: list[str]  # why blocks were skipped, in words

    def notice(self) -> str | None:
        if self.proposals:
            return None
        why = ("; ".join(self.problems)) if self.problems else "it contains no ```python block"
        return f"The reply proposed no new code version: {why}."


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language tag, body) of every fenced block; an unterminated last block (a reply cut off
    by the token limit) counts too."""
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]
    tail_start = 0
    for m in _FENCE.finditer(text):
        tail_start = m.end()
    tail = _OPEN_FENCE.search(text[tail_start:])
    if tail:
        blocks.append((tail.group(1).lower(), tail.group(2)))
    return blocks


def python_blocks(text: str) -> list[str]:
    return [body for tag, body in fenced_blocks(text) if tag in PYTHON_TAGS]


def parse_error(source: str) -> tuple[str, int | None] | None:
    """``None`` when ``source`` parses, else (message, line)."""
    try:
        ast.parse(source)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}", exc.lineno
    return None


def top_level_names(tree: ast.Module) -> dict[str, ast.stmt]:
    """Names bound at the top level by def, class, assignment or import."""
    names: dict[str, ast.stmt] = {}
    for node in tree.body:
        for name in _bound(node):
            names[name] = node
    return names


def defines(source: str, name: str) -> bool:
    try:
        return name in top_level_names(ast.parse(source))
    except SyntaxError:
        return False


def _bound(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    if isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    return []


def _start(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno] + [d.lineno for d in decorators])


def _segment(lines: list[str], node: ast.stmt) -> list[str]:
    return lines[_start(node) - 1 : node.end_lineno]


def _loaded_names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def merge(base: str, block: str) -> tuple[str, Literal["module", "functions"], list[str]]:
    """The module that results from applying ``block`` to ``base``.

    A block that defines every function and class of the base is a whole module and replaces
    it. Otherwise each top-level def/class/assignment in the block replaces the base's one of
    the same name (or is added), new imports go after the base's imports, and other top-level
    statements of the block (example calls, prints) are ignored; base helpers the block does
    not mention stay, since tests or the workload may import them.
    """
    base_tree = ast.parse(base)
    tree = ast.parse(block)
    base_names = top_level_names(base_tree)
    block_names = top_level_names(tree)
    defined = [
        n
        for node in tree.body
        for n in _bound(node)
        if not isinstance(node, ast.Import | ast.ImportFrom)
    ]
    base_defs = {
        n
        for n, node in base_names.items()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    missing = (_loaded_names(tree) & set(base_names)) - set(block_names)
    if base_defs and base_defs <= set(block_names) and not missing:
        return block if block.endswith("\n") else block + "\n", "module", defined

    lines = base.splitlines()
    block_lines = block.splitlines()
    replacements: list[tuple[int, int, list[str]]] = []  # (start, end) 1-based in base
    additions: list[list[str]] = []
    new_imports: list[list[str]] = []
    base_import_text = {
        ast.unparse(n) for n in base_tree.body if isinstance(n, ast.Import | ast.ImportFrom)
    }
    for node in tree.body:
        text = _segment(block_lines, node)
        if isinstance(node, ast.Import | ast.ImportFrom):
            if ast.unparse(node) not in base_import_text:
                new_imports.append(text)
            continue
        names = _bound(node)
        if not names:
            continue  # example calls, prints, `if __name__ == "__main__":` blocks
        target = next((base_names[n] for n in names if n in base_names), None)
        if target is not None and not isinstance(target, ast.Import | ast.ImportFrom):
            replacements.append((_start(target), target.end_lineno or target.lineno, text))
        else:
            additions.append(text)
    # Apply bottom-up so earlier line numbers stay valid; a base node replaced twice keeps
    # the last version the block gave.
    seen: dict[int, tuple[int, int, list[str]]] = {}
    for start, end, text in replacements:
        seen[start] = (start, end, text)
    out = list(lines)
    for start, end, text in sorted(seen.values(), reverse=True):
        out[start - 1 : end] = text
    if new_imports:
        imports = [n for n in base_tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        at = (imports[-1].end_lineno or 0) if imports else _after_docstring(base_tree)
        shift = sum(len(t) - (e - s + 1) for s, e, t in seen.values() if s <= at)
        at += shift
        flat = [line for t in new_imports for line in t]
        out[at:at] = flat
    for text in additions:
        out += ["", ""] + text
    merged = "\n".join(out) + "\n"
    return merged, "functions", defined


def _after_docstring(tree: ast.Module) -> int:
    first = tree.body[0] if tree.body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return first.end_lineno or 0
    return 0


def extract_code(reply: str, base_source: str, entry: str) -> Extraction:
    """Every new, parseable code version proposed in ``reply``, merged onto ``base_source``."""
    proposals: list[ProposedCode] = []
    problems: list[str] = []
    seen: set[str] = set()
    for i, block in enumerate(python_blocks(reply)):
        label = f"block {i + 1}"
        if not block.strip():
            problems.append(f"{label} is empty")
            continue
        err = parse_error(block)
        if err is not None:
            problems.append(f"{label} is not valid Python ({err[0]})")
            continue
        tree = ast.parse(block)
        if not any(_bound(n) for n in tree.body if not isinstance(n, ast.Import | ast.ImportFrom)):
            problems.append(f"{label} defines no function, class or constant")
            continue
        try:
            source, kind, names = merge(base_source, block)
        except SyntaxError as exc:  # the base itself is broken: nothing to merge onto
            problems.append(f"{label} cannot be merged: {exc.msg}")
            continue
        err = parse_error(source)
        if err is not None:
            problems.append(f"{label} does not merge into valid Python ({err[0]})")
            continue
        if not defines(source, entry):
            problems.append(f"{label} leaves no `{entry}` in the module")
            continue
        if source.strip() == base_source.strip():
            problems.append(f"{label} repeats the current version unchanged")
            continue
        if source.strip() in seen:
            problems.append(f"{label} is the same as a version already proposed")
            continue
        seen.add(source.strip())
        proposals.append(ProposedCode(index=i, source=source, kind=kind, names=names))
    return Extraction(proposals=proposals, problems=problems)
