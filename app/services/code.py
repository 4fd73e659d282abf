"""Code in LLM replies: find the fenced blocks, and turn each into a full module — either the
block is a whole module, or it holds single functions (classes, constants, imports) that are
merged into the current module by name with ``ast``, keeping the rest of the file as it was."""

from __future__ import annotations

import ast
import re
import textwrap
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


def _has_qualname(source: str, qualname: str) -> bool:
    from app.services.targets import TargetError, locate

    try:
        locate(ast.parse(source), qualname)
    except (TargetError, SyntaxError):
        return False
    return True


def _after_docstring(tree: ast.Module) -> int:
    first = tree.body[0] if tree.body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return first.end_lineno or 0
    return 0


def extract_code(
    reply: str, base_source: str, entry: str, *, spliced: bool | None = None
) -> Extraction:
    """Every new, parseable code version proposed in ``reply``, merged onto ``base_source``.

    ``spliced`` (default: when ``entry`` is a dotted qualname) puts the block's definitions in
    place by qualified name with ``splice`` (a real module: the rest stays byte for byte);
    otherwise ``merge`` (a pasted module)."""
    if spliced is None:
        spliced = "." in entry
    proposals: list[ProposedCode] = []
    problems: list[str] = []
    seen: set[str] = set()
    for i, block in enumerate(python_blocks(reply)):
        label = f"block {i + 1}"
        if not block.strip():
            problems.append(f"{label} is empty")
            continue
        if spliced:
            block = textwrap.dedent(block)  # a method copied with its class's indentation
        err = parse_error(block)
        if err is not None:
            problems.append(f"{label} is not valid Python ({err[0]})")
            continue
        tree = ast.parse(block)
        if not any(_bound(n) for n in tree.body if not isinstance(n, ast.Import | ast.ImportFrom)):
            problems.append(f"{label} defines no function, class or constant")
            continue
        try:
            if spliced:
                source, names = splice(base_source, block, entry)
                kind: Literal["module", "functions"] = "functions"
            else:
                source, kind, names = merge(base_source, block)
        except SyntaxError as exc:  # the base itself is broken: nothing to merge onto
            problems.append(f"{label} cannot be merged: {exc.msg}")
            continue
        err = parse_error(source)
        if err is not None:
            problems.append(f"{label} does not merge into valid Python ({err[0]})")
            continue
        if not (_has_qualname(source, entry) if spliced else defines(source, entry)):
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


# --- splicing into a real module (project and installed-package targets) -----------------------

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def source_lines(source: str) -> list[str]:
    """The lines of ``source`` with their endings, split exactly where ``ast`` counts lines
    (``str.splitlines`` also splits on form feeds and other separators, which ``ast`` does not)."""
    return _LINE.findall(source)


def _newline(source: str) -> str:
    return "\r\n" if "\r\n" in source else "\n"


def _reindent(text_lines: list[str], old: int, new: str, nl: str) -> str:
    out = []
    for line in text_lines:
        body = line.rstrip("\r\n")
        if not body.strip():
            out.append(nl)
            continue
        lead = len(body) - len(body.lstrip(" \t"))
        out.append(new + body[min(lead, old) :] + nl)
    return "".join(out)


def _node_text(lines: list[str], node: ast.stmt, indent: str, nl: str) -> str:
    return _reindent(lines[_start(node) - 1 : node.end_lineno], node.col_offset, indent, nl)


def _member_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        return []
    return _bound(node)


def _body_indent(base_lines: list[str], cls: ast.ClassDef) -> str:
    first = cls.body[0]
    line = base_lines[first.lineno - 1]
    return line[: first.col_offset]


class _Splice:
    """Edits on the base's lines: (start, end, text), 1-based inclusive; start = end + 1 is an
    insertion before line ``start``. Applied bottom-up so line numbers stay valid."""

    def __init__(self, base: str) -> None:
        self.base = base if base.endswith(("\n", "\r")) or not base else base + _newline(base)
        self.lines = source_lines(self.base)
        self.nl = _newline(base)
        self.edits: list[tuple[int, int, int, str]] = []
        self.changed: list[str] = []

    def replace(self, node: ast.stmt, text: str, name: str) -> None:
        self.edits.append((_start(node), node.end_lineno or node.lineno, len(self.edits), text))
        self.changed.append(name)

    def insert_after(self, line: int, text: str, name: str) -> None:
        self.edits.append((line + 1, line, len(self.edits), text))
        self.changed.append(name)

    def result(self) -> str:
        out = list(self.lines)
        seen: dict[int, tuple[int, int, int, str]] = {}
        inserts = []
        for e in self.edits:
            if e[0] > e[1]:
                inserts.append(e)
            else:
                seen[e[0]] = e  # a node replaced twice keeps the last version
        for start, end, _, text in sorted(
            [*seen.values(), *inserts], key=lambda e: (e[0], e[2]), reverse=True
        ):
            out[start - 1 : end] = [text]
        return "".join(out)


def _merge_class(sp: _Splice, base_cls: ast.ClassDef, block_lines, block_cls, prefix: str) -> None:
    indent = _body_indent(sp.lines, base_cls)
    members: dict[str, ast.stmt] = {}
    for stmt in base_cls.body:
        for n in _member_names(stmt):
            members[n] = stmt
    for stmt in block_cls.body:
        names = _member_names(stmt)
        if not names:
            continue  # docstrings, pass, stray expressions
        qual = f"{prefix}.{names[0]}"
        target = next((members[n] for n in names if n in members), None)
        if isinstance(stmt, ast.ClassDef) and isinstance(target, ast.ClassDef):
            _merge_class(sp, target, block_lines, stmt, qual)
        elif target is not None:
            sp.replace(target, _node_text(block_lines, stmt, indent, sp.nl), qual)
        else:
            text = sp.nl + _node_text(block_lines, stmt, indent, sp.nl)
            sp.insert_after(base_cls.end_lineno or base_cls.lineno, text, qual)


def splice(base: str, block: str, qualname: str) -> tuple[str, list[str]]:
    """``base`` with the definitions of ``block`` put in place by qualified name, every other
    byte of ``base`` unchanged; returns (module, qualified names replaced or added).

    A class in the block is merged member by member into the base's class of that name (new
    methods go at its end). A bare ``def`` named like a method of the target's class replaces
    that method, re-indented (models often answer with just the method). Other top-level
    defs, classes and constants replace the base's of the same name or are added at the end;
    new imports go after the base's imports; other statements of the block are ignored.
    """
    block = textwrap.dedent(block)
    base_tree = ast.parse(base)
    tree = ast.parse(block)
    sp = _Splice(base)
    block_lines = source_lines(block if block.endswith("\n") else block + "\n")
    top = top_level_names(base_tree)
    owner: ast.ClassDef | None = None
    parts = qualname.split(".")
    scope = base_tree.body
    for part in parts[:-1]:
        owner = next((n for n in scope if isinstance(n, ast.ClassDef) and n.name == part), None)
        if owner is None:
            break
        scope = owner.body
    owner_members: dict[str, ast.stmt] = {}
    if owner is not None:
        for stmt in owner.body:
            for n in _member_names(stmt):
                owner_members[n] = stmt
    base_imports = [n for n in base_tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    import_text = {ast.unparse(n) for n in base_imports}
    new_imports: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if ast.unparse(node) not in import_text:
                new_imports.append(_node_text(block_lines, node, "", sp.nl))
            continue
        names = _bound(node)
        if not names:
            continue
        target = next((top[n] for n in names if n in top), None)
        if isinstance(target, ast.Import | ast.ImportFrom):
            target = None
        if isinstance(node, ast.ClassDef) and isinstance(target, ast.ClassDef):
            _merge_class(sp, target, block_lines, node, node.name)
        elif target is not None:
            sp.replace(target, _node_text(block_lines, node, "", sp.nl), names[0])
        elif (
            owner is not None
            and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name in owner_members
        ):
            member = owner_members[node.name]
            indent = sp.lines[member.lineno - 1][: member.col_offset]
            prefix = ".".join(parts[:-1])
            sp.replace(
                member, _node_text(block_lines, node, indent, sp.nl), f"{prefix}.{node.name}"
            )
        else:
            text = sp.nl + sp.nl + _node_text(block_lines, node, "", sp.nl)
            sp.insert_after(len(sp.lines), text, names[0])
    if new_imports:
        at = (base_imports[-1].end_lineno or 0) if base_imports else _after_docstring(base_tree)
        sp.insert_after(at, "".join(new_imports), "imports")
    return sp.result(), [n for n in sp.changed if n != "imports"]
