"""Admin: the people of this instance and their roles, and the audit log (who created, changed
the visibility of, deleted, exported, imported or commented on which session, who changed
whose role). For admins only — the services refuse everyone else."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import services
from app.ui import guard
from app.ui.identity import actor, sign_in_configured

ROLES = ["admin", "editor", "viewer"]

st.title("Admin")
who = actor()

if not sign_in_configured():
    st.caption(
        "Local single-user mode: there is no sign-in, so no people or roles to manage. Configure "
        'OpenID Connect sign-in (README, "Team deployment") to share this instance.'
    )
else:
    st.subheader("People")
    with guard("listing the people"):
        users = services.list_users(actor=who)
        st.caption(
            "The first person to sign in became admin; later ones start as "
            f"`{services.get_context().settings.new_user_role}`. Admins manage everything, "
            "editors create and work sessions, viewers read and comment."
        )
        for u in users:
            cols = st.columns([4, 3, 2, 2])
            cols[0].markdown(f"**{u.name}**" + (f"  \n{u.display_name}" if u.display_name else ""))
            last = f"{u.last_seen_at:%Y-%m-%d %H:%M}" if u.last_seen_at else "never"
            cols[1].caption(f"since {u.created_at:%Y-%m-%d} · last seen {last}")
            key = f"admin:role:{u.id}"
            if st.session_state.get(key) not in ROLES:
                st.session_state[key] = u.role
            cols[2].selectbox("Role", ROLES, key=key, label_visibility="collapsed")
            if st.session_state[key] != u.role and cols[3].button("Save", key=f"admin:save:{u.id}"):
                with guard(f"changing the role of {u.name}"):
                    services.set_role(u.id, st.session_state[key], actor=who)
                    st.toast(f"{u.name} is now {st.session_state[key]}.")
                    st.rerun()

st.subheader("Audit log")
with guard("reading the audit log"):
    events = services.audit_log(actor=who, limit=500)
    if not events:
        st.caption("Nothing recorded yet.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "when": e.at,
                        "who": e.actor,
                        "action": e.action,
                        "session": e.session_id,
                        "detail": ", ".join(f"{k}: {v}" for k, v in e.detail.items()),
                    }
                    for e in events
                ]
            ),
            hide_index=True,
            column_config={"when": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")},
        )
