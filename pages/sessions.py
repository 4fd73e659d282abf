"""Sessions: every stored session, searchable, filterable and sortable; open one to work on or
to review; delete one after confirming."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import services
from app.ui import guard, nav
from app.ui.identity import actor
from app.ui.state import KEEP, default

PAGE_SIZE = 50
SORTS = {
    "updated_at": "last change",
    "created_at": "date created",
    "title": "title",
    "author": "author",
    "best_speedup": "best speedup",
    "candidates": "candidates",
}

st.title("Sessions")

filters = st.columns([4, 2, 2, 2, 2])
filters[0].text_input("Search", key=f"{KEEP}sessions:search", placeholder="title, entry, notes")
filters[1].text_input("Author", key=f"{KEEP}sessions:author")
filters[2].text_input("Tag", key=f"{KEEP}sessions:tag")
default(f"{KEEP}sessions:sort", "updated_at")
filters[3].selectbox("Sort by", list(SORTS), key=f"{KEEP}sessions:sort", format_func=SORTS.get)
default(f"{KEEP}sessions:descending", True)
filters[4].toggle("Descending", key=f"{KEEP}sessions:descending")
default(f"{KEEP}sessions:visibility", ["private", "team", "public"])
st.multiselect("Visibility", ["private", "team", "public"], key=f"{KEEP}sessions:visibility")

s = st.session_state
page_key = "sessions:page"
query = (
    s[f"{KEEP}sessions:search"] if f"{KEEP}sessions:search" in s else "",
    s.get(f"{KEEP}sessions:author", ""),
    s.get(f"{KEEP}sessions:tag", ""),
    s[f"{KEEP}sessions:sort"],
    s[f"{KEEP}sessions:descending"],
    tuple(s[f"{KEEP}sessions:visibility"]),
)
if s.get("sessions:query") != query:  # a new query starts at its first page
    s["sessions:query"] = query
    s[page_key] = 0

rows: list = []
total = 0
with guard("listing the sessions"):
    rows, total = services.list_sessions(
        search=query[0].strip(),
        author=query[1].strip() or None,
        tag=query[2].strip() or None,
        visibility=query[5] or None,
        sort=query[3],
        descending=query[4],
        limit=PAGE_SIZE,
        offset=s.get(page_key, 0) * PAGE_SIZE,
        actor=actor(),
    )

first = s.get(page_key, 0) * PAGE_SIZE
st.caption(
    f"{total} session(s) match" + (f"; showing {first + 1}–{first + len(rows)}" if rows else "")
)
if total > PAGE_SIZE:
    pages = (total + PAGE_SIZE - 1) // PAGE_SIZE
    nav_cols = st.columns([1, 1, 6])
    if nav_cols[0].button("◀ Previous", disabled=s[page_key] == 0):
        s[page_key] -= 1
        st.rerun()
    if nav_cols[1].button("Next ▶", disabled=s[page_key] >= pages - 1):
        s[page_key] += 1
        st.rerun()

table = pd.DataFrame(
    [
        {
            "id": r.id,
            "title": r.title,
            "author": r.author,
            "created": r.created_at,
            "updated": r.updated_at,
            "best speedup": r.best_speedup,
            "candidates": r.candidate_count,
            "model": r.model or "",
            "mode": r.mode,
            "tags": ", ".join(r.tags),
            "visibility": r.visibility,
            "review": f"/review?session={r.id}",
        }
        for r in rows
    ],
    columns=[
        "id", "title", "author", "created", "updated", "best speedup", "candidates", "model",
        "mode", "tags", "visibility", "review",
    ],
)  # fmt: skip
event = st.dataframe(
    table,
    hide_index=True,
    key="sessions:table",
    on_select="rerun",
    selection_mode="single-row",
    column_config={
        "best speedup": st.column_config.NumberColumn(format="%.2f×"),
        "created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        "updated": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        "review": st.column_config.LinkColumn("link", display_text="open review"),
    },
)

ids = [r.id for r in rows]
picked = event.selection.rows if event is not None and hasattr(event, "selection") else []
if picked:
    s["sessions:chosen"] = ids[picked[0]]
if ids:
    if s.get("sessions:chosen") not in ids:
        s["sessions:chosen"] = ids[0]
    titles = {r.id: f"#{r.id} · {r.title}" for r in rows}
    st.selectbox("Session", ids, key="sessions:chosen", format_func=titles.get)
    chosen = s["sessions:chosen"]
    actions = st.container(horizontal=True)
    if actions.button("Open in Optimize", key="sessions:open"):
        nav.go("optimize", chosen)
    if actions.button("Open for review", key="sessions:review"):
        nav.go("review", chosen)
    if actions.button("Delete…", key="sessions:delete"):
        s["sessions:confirm_delete"] = chosen
    pending = s.get("sessions:confirm_delete")
    if pending is not None:
        with st.container(border=True):
            st.warning(
                f"Delete session {titles.get(pending, f'#{pending}')} with its transcript, "
                "candidates, evaluations and comments? This cannot be undone."
            )
            confirm = st.container(horizontal=True)
            if confirm.button("Yes, delete", type="primary", key="sessions:delete_yes"):
                with guard("deleting the session"):
                    services.delete_session(pending, actor=actor())
                    s.pop("sessions:confirm_delete", None)
                    if st.session_state.get(nav.CURRENT) == pending:
                        nav.open_session(None)
                    st.toast(f"Session #{pending} deleted.")
                    st.rerun()
            if confirm.button("Cancel", key="sessions:delete_no"):
                s.pop("sessions:confirm_delete", None)
                st.rerun()
