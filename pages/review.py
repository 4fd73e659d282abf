"""Review: a session, read-only, for the team — transcript, candidate tree, speedup chart, the
diff between any two candidates, comments anchored to messages and candidates, export and
import. ``?session=ID`` is the shareable link; who may open it is the services' decision
(private sessions stay with their author and the admins)."""

from __future__ import annotations

import streamlit as st

from app import charts, services
from app.ui import candidate_card, guard, nav, show_diff
from app.ui.errors import UserMessage, capture, flash, show_flash
from app.ui.identity import actor
from app.ui.session import comment_line, header, transcript, tree_markdown
from app.ui.state import KEEP

st.title("Review")

session_id: int | None = None
with guard("listing the sessions"):
    session_id = nav.session_picker("pick:review")


def comments_section(view: services.SessionView) -> None:
    sid = view.info.id
    anchors: dict[str, str] = {"": "the session"}
    for m in view.messages:
        if m.role in ("user", "assistant"):
            anchors[f"m{m.id}"] = f"message #{m.id} ({m.role}): {m.content[:40]}"
    for c in view.candidates:
        anchors[f"c{c.id}"] = f"candidate #{c.id} ({c.origin})"
    for c in view.comments:
        where = (
            f"candidate #{c.candidate_id}"
            if c.candidate_id
            else f"message #{c.message_id}"
            if c.message_id
            else "the session"
        )
        st.markdown(comment_line(c) + f"  \n<small>on {where}</small>", unsafe_allow_html=True)
    if not view.comments:
        st.caption("No comments yet.")
    text_key = f"{KEEP}review:{sid}:comment"
    anchor_key = f"{KEEP}review:{sid}:anchor"
    if st.session_state.get(anchor_key) not in anchors:
        st.session_state[anchor_key] = ""

    def post() -> None:
        text = st.session_state.get(text_key, "").strip()
        if not text:
            flash(UserMessage("Write the comment first."), slot="comment")
            return
        anchor = st.session_state[anchor_key]
        with capture("posting the comment", slot="comment"):
            services.add_comment(
                sid,
                text,
                actor=actor(),
                message_id=int(anchor[1:]) if anchor.startswith("m") else None,
                candidate_id=int(anchor[1:]) if anchor.startswith("c") else None,
            )
            st.session_state[text_key] = ""  # posted: only now is the text cleared

    if not services.permissions(sid, actor=actor()).comment:
        st.caption("Sign in to comment.")
        return
    st.selectbox("On", list(anchors), key=anchor_key, format_func=anchors.get)
    st.text_area("Comment", key=text_key, placeholder="What do you notice?")
    st.button("Post comment", key=f"review_post_{sid}", on_click=post)
    show_flash("comment")


def candidates_section(view: services.SessionView) -> None:
    sid = view.info.id
    st.markdown(tree_markdown(view))
    if not view.candidates:
        return
    ids = [c.id for c in view.candidates]
    key = f"review:{sid}:candidate"
    if st.session_state.get(key) not in ids:
        st.session_state[key] = (view.best or view.candidates[-1]).id
    st.selectbox(
        "Inspect candidate",
        ids,
        key=key,
        format_func=lambda i: f"#{i} ({view.candidate(i).origin})",
    )
    c = view.candidate(st.session_state[key])
    parent = view.candidate(c.parent_id) if c.parent_id in ids else None
    candidate_card(c, parent=parent, key=f"review_card_{c.id}", wide=True)
    for note in view.comments:
        if note.candidate_id == c.id:
            st.markdown(comment_line(note))


def compare_section(view: services.SessionView) -> None:
    sid = view.info.id
    ids = [c.id for c in view.candidates]
    if len(ids) < 2:
        st.caption("Two candidates are needed to compare.")
        return
    cols = st.columns(2)
    for k, fallback in (("a", ids[0]), ("b", ids[-1])):
        if st.session_state.get(f"review:{sid}:{k}") not in ids:
            st.session_state[f"review:{sid}:{k}"] = fallback
    fmt = lambda i: f"#{i} ({view.candidate(i).origin})"  # noqa: E731
    cols[0].selectbox("Old", ids, key=f"review:{sid}:a", format_func=fmt)
    cols[1].selectbox("New", ids, key=f"review:{sid}:b", format_func=fmt)
    a = view.candidate(st.session_state[f"review:{sid}:a"])
    b = view.candidate(st.session_state[f"review:{sid}:b"])
    unified = st.toggle("Unified (one column)", key=f"review:{sid}:unified")
    show_diff(
        a.source, b.source, old_label=fmt(a.id), new_label=fmt(b.id), side_by_side=not unified
    )


def exchange_section(view: services.SessionView) -> None:
    sid = view.info.id
    cols = st.columns([2, 1, 3])
    fmt = cols[0].selectbox(
        "Export as",
        ["md", "html", "json"],
        key=f"review:{sid}:fmt",
        format_func={"md": "Markdown", "html": "HTML (offline)", "json": "JSON"}.get,
    )
    if cols[1].button("Prepare export", key=f"review_export_{sid}"):
        with guard("exporting the session"):
            st.session_state[f"review:{sid}:export"] = (
                fmt,
                services.export_session(sid, fmt, actor=actor()),
            )
    ready = st.session_state.get(f"review:{sid}:export")
    if ready:
        kind, text = ready
        mime = {"md": "text/markdown", "html": "text/html", "json": "application/json"}[kind]
        cols[2].download_button(
            f"Download session-{sid}.{kind}",
            text,
            file_name=f"session-{sid}.{kind}",
            mime=mime,
            on_click="ignore",
            key=f"review_download_{sid}",
        )


def import_section() -> None:
    if not services.permissions(None, actor=actor()).change:
        st.caption("Editors and admins import sessions.")
        return
    upload = st.file_uploader(
        "Import a session exported as JSON", type=["json"], key="review:import"
    )
    if upload is not None and st.button("Import", key="review_import"):
        with guard("importing the session"):
            imported = services.import_session(upload.getvalue(), source=upload.name, actor=actor())
            st.success(f"Imported as session #{imported.info.id}.")
            nav.open_session(imported.info.id)


VISIBILITY = {
    "private": "private — its author and the admins",
    "team": "team — everyone signed in",
    "public": "public — also readers who are not signed in, where the instance allows them",
}


def settings_section(view: services.SessionView) -> None:
    """Title, tags and visibility, for the author and the admins."""
    sid, info = view.info.id, view.info
    with st.expander("Session settings"):
        for key, value in (("title", info.title), ("tags", ", ".join(info.tags))):
            if f"review:{sid}:{key}" not in st.session_state:
                st.session_state[f"review:{sid}:{key}"] = value
        if f"review:{sid}:visibility" not in st.session_state:
            st.session_state[f"review:{sid}:visibility"] = info.visibility
        st.text_input("Title", key=f"review:{sid}:title")
        st.text_input("Tags (comma separated)", key=f"review:{sid}:tags")
        st.radio(
            "Who may read it", list(VISIBILITY), key=f"review:{sid}:visibility",
            format_func=VISIBILITY.get,
        )  # fmt: skip
        if st.button("Save settings", key=f"review_settings_{sid}"):
            s = st.session_state
            with guard("saving the session settings"):
                services.update_session_info(
                    sid,
                    title=s[f"review:{sid}:title"],
                    tags=[t.strip() for t in s[f"review:{sid}:tags"].split(",") if t.strip()],
                    visibility=s[f"review:{sid}:visibility"],
                    actor=actor(),
                )
                st.toast("Saved.")
                st.rerun()


def review(sid: int) -> None:
    who = actor()
    view = services.get_session(sid, actor=who)
    header(view)
    if services.permissions(sid, actor=who).change:
        settings_section(view)
    st.caption(f"Shareable link: `?session={sid}` on this page.")
    tabs = st.tabs(["Transcript", "Candidates", "Speedup", "Compare", "Comments", "Export"])
    with tabs[0]:
        transcript(view)
    with tabs[1]:
        candidates_section(view)
    with tabs[2]:
        st.plotly_chart(
            charts.speedup_chart(view.figures.series),
            key=f"review_speedup_{sid}",
            config={"displayModeBar": False},
        )
        if view.figures.eff_at_k:
            st.caption(
                "eff@k: "
                + ", ".join(f"k={k}: {v:.2f}" for k, v in sorted(view.figures.eff_at_k.items()))
            )
        if any(c.evaluation and c.evaluation.peak_memory_bytes for c in view.candidates):
            st.plotly_chart(
                charts.memory_chart(view.candidates),
                key=f"review_memory_{sid}",
                config={"displayModeBar": False},
            )
    with tabs[3]:
        compare_section(view)
    with tabs[4]:
        comments_section(view)
    with tabs[5]:
        exchange_section(view)


if session_id is not None:
    with guard("opening the session"):
        review(session_id)
with st.expander("Import a session"):
    import_section()
