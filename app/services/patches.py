"""A candidate as a patch: a unified diff of the module against the original file, with the
path relative to the project root (``a/PATH`` / ``b/PATH``), so ``git apply`` and
``patch -p1`` accept it in a fresh copy of the project."""

from __future__ import annotations

import difflib

from app.services.code import source_lines

NO_NEWLINE = "\\ No newline at end of file\n"


def unified_patch(original: str, changed: str, path: str, *, context: int = 3) -> str:
    """The diff that turns ``original`` into ``changed`` for the file ``path`` (posix,
    relative to the project root); "" when they are the same. Lines keep their own endings
    (a CRLF file stays CRLF) and a missing final newline is marked the way git marks it."""
    if original == changed:
        return ""
    path = path.lstrip("/")
    a, b = source_lines(original), source_lines(changed)
    out = [f"diff --git a/{path} b/{path}\n"]
    for line in difflib.unified_diff(a, b, f"a/{path}", f"b/{path}", n=context):
        if line.startswith(("---", "+++")):
            out.append(line.rstrip("\n") + "\n")
            continue
        if line.startswith("@@"):
            out.append(line if line.endswith("\n") else line + "\n")
            continue
        if not line.endswith(("\n", "\r")):
            out.append(line + "\n" + NO_NEWLINE)
        else:
            out.append(line)
    return "".join(out)
