"""Which session the pages show: one "current session" per browser session, set by the
``?session=ID`` URL (so a link can be shared), by a picker, or by opening one from a list."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import services

CURRENT = "current_session"
NEW = 0  # the picker's "new session" entry


def current_session() -> int | None:
    """The session the URL names, else the one this browser last opened."""
    raw = st.query_params.get("session")
    if raw:
        try:
            st.session_state[CURRENT] = int(raw)
        except ValueError:
            st.warning(f"?session={raw} is not a session number.")
    return st.session_state.get(CURRENT)


def open_session(session_id: int | None) -> None:
    st.session_state[CURRENT] = session_id
    if session_id:
        st.query_params["session"] = str(session_id)
    else:
        st.query_params.pop("session", None)


def session_picker(key: str, *, allow_new: bool = False, label: str = "Session") -> int | None:
    """A select box over the most recent sessions; returns the chosen id (None: new / none)."""
    from app.ui.identity import actor

    current = current_session()
    rows, _total = services.list_sessions(limit=200, actor=actor())
    titles = {r.id: f"#{r.id} · {r.title}" for r in rows}
    options: list[int] = ([NEW] if allow_new else []) + list(titles)
    if current and current not in titles:
        options.insert(1 if allow_new else 0, current)
        titles[current] = f"#{current}"
    if not options:
        st.info("No sessions yet. Create one on the Optimize page.")
        return None
    if current in options:
        st.session_state[key] = current
    elif allow_new:
        st.session_state[key] = NEW
    st.selectbox(
        label,
        options,
        key=key,
        format_func=lambda i: "➕ New session" if i == NEW else titles.get(i, f"#{i}"),
        on_change=lambda: open_session(st.session_state[key] or None),
    )
    chosen = st.session_state[key]
    if chosen and chosen != current:
        open_session(chosen)
    return chosen or None


PAGES_DIR = Path(__file__).resolve().parents[2] / "pages"


def go(page: str, session_id: int | None = None) -> None:
    """Switch to ``pages/<page>.py``, showing ``session_id``."""
    open_session(session_id)
    params = {"session": str(session_id)} if session_id else None
    st.switch_page(st.Page(PAGES_DIR / f"{page}.py"), query_params=params)
