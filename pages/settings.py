"""Settings: what this instance runs with — models and whether each provider's key is present
(never the key), the sandbox backend, its limits and which backends can run here, the
database in use. Read-only: the settings come from the environment (see app/config.py)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import services
from app.services import ui_support
from app.ui import guard

st.title("Settings")
st.caption(
    "perfloop reads its settings from environment variables (PERFLOOP_…, DATABASE_URL, the "
    "providers' own key variables) or a .env file; change them there and restart."
)

status = None
with guard("reading the settings"):
    status = ui_support.system_status()

if status is not None:
    st.subheader("Models")
    st.markdown(f"Default model: `{status.default_model}`")
    st.dataframe(
        pd.DataFrame(
            [
                {"provider": p, "API key": "present" if ok else "not set"}
                for p, ok in status.provider_keys.items()
            ]
        ),
        hide_index=True,
    )
    with guard("listing the models"):
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "model": m.model,
                        "label": m.label,
                        "where": "local" if m.local else "remote",
                        "usable": "yes" if m.usable else "no",
                        "note": m.note,
                    }
                    for m in services.model_choices()
                ]
            ),
            hide_index=True,
        )
    st.caption(f"LLM timeout per call: {status.llm_timeout_s:g} s")

    st.subheader("Sandbox")
    st.markdown(
        f"Backend in use: **{status.sandbox_backend}** · concurrent evaluations: "
        f"{status.eval_workers}"
        + (" · the unisolated process backend is allowed" if status.sandbox_allow_process else "")
    )
    st.dataframe(
        pd.DataFrame([{"backend": b, "here": why} for b, why in status.sandbox_available.items()]),
        hide_index=True,
    )
    limits = status.sandbox_limits
    st.dataframe(
        pd.DataFrame([{"limit": k, "value": str(v)} for k, v in limits.items()]),
        hide_index=True,
    )

    st.subheader("Database")
    st.markdown(f"**{status.database_dialect}** at `{status.database_url}`")
    st.caption(f"Data directory (models, caches, the default SQLite file): `{status.data_dir}`")
