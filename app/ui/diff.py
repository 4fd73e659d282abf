"""Side-by-side diff of two versions of code, as an HTML table (blue/orange, not red/green, so
it reads with colour-vision deficiencies), with long unchanged runs folded."""

from __future__ import annotations

import difflib
import html

import streamlit as st

_DEL = "#FBE3C8"  # Okabe–Ito orange, tinted: lines only in the old version
_INS = "#D4E9F7"  # Okabe–Ito blue, tinted: lines only in the new version
_CELL = "padding:0 6px;white-space:pre;vertical-align:top;"
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
        '<div style="overflow-x:auto"><table style="border-collapse:collapse;'
        'font-family:monospace;font-size:0.85em;width:100%">'
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


def show_diff(old: str, new: str, *, old_label: str = "before", new_label: str = "after") -> None:
    """Side-by-side diff in the page; says so plainly when the versions are identical."""
    if old == new:
        st.caption(f"{new_label} is identical to {old_label}.")
        return
    st.html(side_by_side_html(old, new, old_label=old_label, new_label=new_label))
