"""Streamlit entry point: routes to the pages and draws the shared frame. Nothing else."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"

st.set_page_config(page_title="perfloop", page_icon="⏱️", layout="wide")

PAGES = {
    "Work": [
        st.Page(PAGES_DIR / "optimize.py", title="Optimize", icon="🚀", default=True),
        st.Page(PAGES_DIR / "sessions.py", title="Sessions", icon="🗂️"),
        st.Page(PAGES_DIR / "review.py", title="Review", icon="🔍"),
    ],
    "Teach & inspect": [
        st.Page(PAGES_DIR / "classroom.py", title="Classroom", icon="🎓"),
        st.Page(PAGES_DIR / "routing.py", title="Routing", icon="🧭"),
    ],
    "System": [st.Page(PAGES_DIR / "settings.py", title="Settings", icon="⚙️")],
}

page = st.navigation(PAGES)
st.sidebar.caption("perfloop — human-in-the-loop optimization of Python code")
page.run()
