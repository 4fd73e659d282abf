"""How a session reads on every page: its header with the key figures, the transcript (with
the comments anchored to each message), and the candidate tree."""

from __future__ import annotations

import streamlit as st

from app.services import CandidateView, CommentView, SessionView
from app.ui.verdict import verdict_badge, verdict_parts

_ROLE = {"user": "user", "assistant": "assistant"}
_STRUCTURED = {
    "conair": "🧪 ConAIR: the model proposed candidates and tests (shown in the ConAIR panel).",
    "summary": "📝 The model wrote a summary of the code (shown in the Summary panel).",
}
_KIND_ICON = {"verdict": "⚖️", "notice": "ℹ️", "error": "⚠️"}


def header(view: SessionView) -> None:
    info, fig = view.info, view.figures
    st.subheader(f"#{info.id} · {info.title}")
    st.caption(
        f"by {info.author} · {info.mode} mode · model {info.model or 'default'} · "
        f"{info.visibility} · entry `{info.entry_point}` · "
        f"created {info.created_at:%Y-%m-%d %H:%M}"
        + (f" · tags: {', '.join(info.tags)}" if info.tags else "")
    )
    if "imported" in info.tags and info.notes.startswith("imported from "):
        st.caption("📥 " + info.notes.splitlines()[0])
    cols = st.columns(5)
    best = "—" if fig.best_speedup is None else f"{fig.best_speedup:.2f}×"
    cols[0].metric("Best speedup", best)
    cols[1].metric("Candidates (correct)", f"{fig.candidates_tried} ({fig.candidates_correct})")
    cols[2].metric("Tokens", f"{fig.tokens:,}")
    cols[3].metric("Cost", "—" if fig.cost is None else f"${fig.cost:.4f}")
    cols[4].metric("LLM / sandbox time", f"{fig.llm_time_s:.0f} s / {fig.eval_time_s:.0f} s")


def comment_line(c: CommentView) -> str:
    return f"💬 **{c.author}** · {c.created_at:%Y-%m-%d %H:%M} — {c.text}"


def transcript(view: SessionView, *, comments: bool = True) -> None:
    """The conversation in order; candidate links and comments under their message."""
    by_message: dict[int, list[CandidateView]] = {}
    for c in view.candidates:
        if c.message_id is not None:
            by_message.setdefault(c.message_id, []).append(c)
    notes: dict[int, list[CommentView]] = {}
    for c in view.comments if comments else []:
        if c.message_id is not None:
            notes.setdefault(c.message_id, []).append(c)
    if not view.messages:
        st.caption("No messages yet.")
    for m in view.messages:
        if m.kind == "validation":
            if not view.ready and m.content == view.validation_error:
                continue  # the page shows why the baseline is not ready, once
            st.caption(f"⚠️ Baseline check: {m.content}")
        elif m.kind == "error":
            reason = (m.meta or {}).get("error") or "the reply stopped"
            st.caption(f"⚠️ The model call failed: {reason}")
            if m.content.strip():
                with st.expander("What arrived before it stopped"):
                    st.markdown(m.content)
        elif m.kind in _KIND_ICON:
            st.caption(f"{_KIND_ICON[m.kind]} {m.content}")
        else:
            with st.chat_message(_ROLE.get(m.role, "assistant")):
                if m.role == "assistant" and m.kind in _STRUCTURED:
                    # ConAIR and summary replies are JSON for perfloop, not prose for people
                    st.caption(_STRUCTURED[m.kind])
                    with st.expander("The model's raw reply"):
                        st.code(m.content, language="json")
                else:
                    st.markdown(m.content)
                if m.role == "assistant" and m.completion_tokens:
                    st.caption(
                        f"{m.model or ''} · {m.completion_tokens} tokens"
                        + (f" · {m.latency_s:.1f} s" if m.latency_s else "")
                        + (" · routing recorded" if m.routing_trace_id else "")
                    )
                for c in by_message.get(m.id, []):
                    st.caption(f"→ candidate #{c.id}: {' · '.join(verdict_parts(c.evaluation))}")
        for note in notes.get(m.id, []):
            st.markdown(comment_line(note))


def tree_markdown(view: SessionView) -> str:
    """The candidate tree as a nested Markdown list (parent → children)."""
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for c in view.children(parent):
            ev = c.evaluation
            speed = f" {ev.speedup:.2f}×" if ev and ev.speedup is not None else ""
            best = " ⭐" if c.is_best else ""
            lines.append(
                f"{'  ' * depth}- {verdict_badge(ev)} #{c.id} {c.origin}{speed}{best}"
                f" (iteration {c.iteration})"
            )
            walk(c.id, depth + 1)

    walk(None, 0)
    known = {c.id for c in view.candidates}
    for c in view.candidates:  # orphans (parent deleted) still show
        if c.parent_id is not None and c.parent_id not in known:
            lines.append(f"- #{c.id} {c.origin} (parent #{c.parent_id} missing)")
    return "\n".join(lines) or "No candidates yet."
