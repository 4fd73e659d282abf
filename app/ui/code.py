"""Code input: the ``streamlit-code-editor`` component (Ace: syntax highlighting, line numbers)
or, when the person prefers it (and in tests), a plain text area. Either way the text lives in
``st.session_state[key]``, so switching editors or pages loses nothing."""

from __future__ import annotations

import streamlit as st

from app.ui.state import KEEP

PLAIN_KEY = f"{KEEP}plain_editor"


def plain_editors() -> bool:
    return bool(st.session_state.get(PLAIN_KEY, False))


def set_code(key: str, text: str) -> None:
    """Replace the text of a code input from the page (e.g. load a candidate to edit by hand)."""
    st.session_state[key] = text
    st.session_state[f"{key}__rev"] = st.session_state.get(f"{key}__rev", 0) + 1


def code_input(label: str, key: str, *, height: int = 12, help: str | None = None) -> str:
    """A code editor bound to ``st.session_state[key]``; returns the current text."""
    st.session_state.setdefault(key, "")
    if plain_editors():
        return st.text_area(label, key=key, height=max(68, 22 * height), help=help)
    from code_editor import code_editor

    st.markdown(f"**{label}**", help=help)
    rev = st.session_state.get(f"{key}__rev", 0)
    seed_key = f"{key}__seed{rev}"
    # The editor gets the text it starts from only when (re)mounted, so typing never makes the
    # component re-render under the cursor; "debounce" sends the text back while typing.
    seed = st.session_state.setdefault(seed_key, st.session_state[key])
    response = code_editor(
        seed,
        lang="python",
        height=[max(4, height // 2), height],
        response_mode="debounce",
        options={"showLineNumbers": True, "tabSize": 4, "wrap": False},
        key=f"{key}__editor{rev}",
    )
    last = f"{key}__last_event"
    if response and response.get("id") and response["id"] != st.session_state.get(last):
        st.session_state[last] = response["id"]
        st.session_state[key] = response.get("text", "")
    return st.session_state[key]
