"""Streamlit entry point: routes to the pages and draws the shared frame. Nothing else."""

from __future__ import annotations

import streamlit as st

from app.ui import identity, keep_typed_inputs
from app.ui.nav import PAGES_DIR

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
who = identity.actor()
if who.is_admin:
    PAGES["System"].append(st.Page(PAGES_DIR / "admin.py", title="Admin", icon="🛡️"))
page = st.navigation(PAGES)
with st.sidebar:
    identity.sidebar()
    st.caption("perfloop — human-in-the-loop optimization of Python code")
page.run()
