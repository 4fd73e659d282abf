"""Inputs survive reruns, page switches and errors: widgets whose key starts with ``keep:`` are
re-assigned at the top of every run, which stops Streamlit from dropping the state of a widget
that is not on the current page. Nothing typed is lost."""

from __future__ import annotations

from typing import Any

import streamlit as st

KEEP = "keep:"


def keep_typed_inputs() -> None:
    for key in list(st.session_state.keys()):
        if isinstance(key, str) and key.startswith(KEEP):
            st.session_state[key] = st.session_state[key]


def default(key: str, value: Any) -> Any:
    """Give ``key`` a starting value once (before its widget is drawn) and return it."""
    if key not in st.session_state:
        st.session_state[key] = value
    return st.session_state[key]
