"""Streamlit entry point: routes to the pages and draws the shared frame. Nothing else."""

from __future__ import annotations

import streamlit as st

from app.ui import keep_typed_inputs
from app.ui.nav import PAGES_DIR
from app.ui.state import KEEP, default

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

keep_typed_inputs()  # nothing typed is lost when switching pages
page = st.navigation(PAGES)
with st.sidebar:
    from app.services.ui_support import default_author

    default(f"{KEEP}author", default_author())
    st.text_input("Your name", key=f"{KEEP}author", help="Recorded on sessions and comments.")
    st.caption("perfloop — human-in-the-loop optimization of Python code")
page.run()
