"""The one diff widget: two versions of code as an HTML table, unified (one column, fits a
narrow column) or side by side (where there is room), blue/orange, not red/green, so it reads
with colour-vision deficiencies; long lines wrap instead of being cut off, and long unchanged
runs are folded."""

from __future__ import annotations

import difflib
import html

import streamlit as st

_DEL = "#FBE3C8"  # Okabe–Ito orange, tinted: lines only in the old version
_INS = "#D4E9F7"  # Okabe–Ito blue, tinted: lines only in the new version
# pre-wrap: a long line wraps inside its cell instead of being cut off by a narrow column
_CELL = "padding:0 6px;white-space:pre-wrap;overflow-wrap:anywhere;vertical-align:top;"
_NUM = "padding:0 6px;color:#888;text-align:right;user-select:none;vertical-align:top;"


def _row(old_no: str, old: str, new_no: str, new: str, old_bg: str, new_bg: str) -> str:
    return (
        f'<tr><td style="{_NUM}">{old_no}</td>'
        f'<td style="{_CELL}background:{old_bg}">{html.escape(old)}</td>'
        f'<td style="{_NUM}">{new_no}</td>'
        f'<td style="{_CELL}background:{new_bg}">{html.escape(new)}</td></tr>'
    )


def side_by_side_html(
    old: str, new: str, *, old_label: str = "before", new_label: str = "after", context: int = 3
) -> str:
    """An HTML table: old lines left, new lines right, changed lines tinted, unchanged runs
    longer than ``2 * context`` folded into one "⋯ n unchanged lines" row."""
    a, b = old.splitlines(), new.splitlines()
    rows: list[str] = []
    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    for index, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            n = i2 - i1
            # context after the previous change and before the next one, none at the ends
            head = range(context) if index > 0 else range(0)
            tail = range(n - context, n) if index < len(opcodes) - 1 else range(0)
            keep = range(n) if n <= len(head) + len(tail) else sorted({*head, *tail})
            previous = -1
            for k in keep:
                if k != previous + 1:
                    skipped = k - previous - 1
                    rows.append(
                        f'<tr><td colspan="4" style="{_NUM}text-align:center">'
                        f"⋯ {skipped} unchanged lines</td></tr>"
                    )
                rows.append(_row(str(i1 + k + 1), a[i1 + k], str(j1 + k + 1), b[j1 + k], "", ""))
                previous = k
            if previous < n - 1:
                rows.append(
                    f'<tr><td colspan="4" style="{_NUM}text-align:center">'
                    f"⋯ {n - 1 - previous} unchanged lines</td></tr>"
                )
            continue
        left, right = a[i1:i2], b[j1:j2]
        for k in range(max(len(left), len(right))):
            lo = left[k] if k < len(left) else ""
            ro = right[k] if k < len(right) else ""
            rows.append(
                _row(
                    str(i1 + k + 1) if k < len(left) else "",
                    lo,
                    str(j1 + k + 1) if k < len(right) else "",
                    ro,
                    _DEL if k < len(left) else "",
                    _INS if k < len(right) else "",
                )
            )
    head = (
        f'<tr><th colspan="2" style="text-align:left">{html.escape(old_label)}</th>'
        f'<th colspan="2" style="text-align:left">{html.escape(new_label)}</th></tr>'
    )
    return (
        '<div style="overflow-x:auto"><table data-diff="side-by-side" '
        'style="border-collapse:collapse;font-family:monospace;font-size:0.85em;width:100%;'
        'table-layout:fixed">'
        f"{head}{''.join(rows)}</table></div>"
    )


def unified_html(
    old: str, new: str, *, old_label: str = "before", new_label: str = "after", context: int = 3
) -> str:
    """An HTML table with one code column: unchanged lines once, removed lines (−, orange)
    before added ones (+, blue), both line numbers, unchanged runs longer than ``2 * context``
    folded. It fits any column width."""
    a, b = old.splitlines(), new.splitlines()
    rows: list[str] = []

    def row(old_no: str, new_no: str, mark: str, text: str, bg: str) -> str:
        return (
            f'<tr><td style="{_NUM}">{old_no}</td><td style="{_NUM}">{new_no}</td>'
            f'<td style="{_NUM}">{mark}</td>'
            f'<td style="{_CELL}width:100%;background:{bg}">{html.escape(text)}</td></tr>'
        )

    def fold(n: int) -> str:
        return (
            f'<tr><td colspan="4" style="{_NUM}text-align:center">⋯ {n} unchanged lines</td></tr>'
        )

    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    for index, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            n = i2 - i1
            head = range(context) if index > 0 else range(0)
            tail = range(n - context, n) if index < len(opcodes) - 1 else range(0)
            keep = range(n) if n <= len(head) + len(tail) else sorted({*head, *tail})
            previous = -1
            for k in keep:
                if k != previous + 1:
                    rows.append(fold(k - previous - 1))
                rows.append(row(str(i1 + k + 1), str(j1 + k + 1), "", a[i1 + k], ""))
                previous = k
            if previous < n - 1:
                rows.append(fold(n - 1 - previous))
            continue
        for k in range(i1, i2):
            rows.append(row(str(k + 1), "", "−", a[k], _DEL))
        for k in range(j1, j2):
            rows.append(row("", str(k + 1), "+", b[k], _INS))
    head = (
        f'<tr><th colspan="4" style="text-align:left">− {html.escape(old_label)} &nbsp; '
        f"+ {html.escape(new_label)}</th></tr>"
    )
    return (
        '<div style="overflow-x:auto"><table data-diff="unified" style="border-collapse:collapse;'
        'font-family:monospace;font-size:0.85em;width:100%;table-layout:auto">'
        f"{head}{''.join(rows)}</table></div>"
    )


def unified(old: str, new: str, *, old_label: str = "before", new_label: str = "after") -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=old_label,
            tofile=new_label,
        )
    )


def show_diff(
    old: str,
    new: str,
    *,
    old_label: str = "before",
    new_label: str = "after",
    side_by_side: bool = True,
) -> None:
    """The diff in the page: side by side where the page has room (``side_by_side``), else
    unified; says so plainly when the versions are identical."""
    if old == new:
        st.caption(f"{new_label} is identical to {old_label}.")
        return
    render = side_by_side_html if side_by_side else unified_html
    st.html(render(old, new, old_label=old_label, new_label=new_label))
