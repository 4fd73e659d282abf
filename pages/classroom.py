"""Classroom: replay a stored session step by step (next, previous, autoplay) in a large-font
presenter view, the speedup chart and the routing heatmap growing as the replay advances."""

from __future__ import annotations

import time

import streamlit as st

from app import charts, services
from app.services.ui_support import routing_until, series_until
from app.ui import guard, nav, show_evaluation
from app.ui.identity import actor
from app.ui.routing import moefied_notice
from app.ui.state import KEEP, default

PRESENTER_CSS = """
<style>
section.main .stMarkdown p, section.main .stMarkdown li,
[data-testid="stMain"] .stMarkdown p, [data-testid="stMain"] .stMarkdown li {
  font-size: 1.6rem !important; line-height: 1.45 !important; }
[data-testid="stMain"] code, [data-testid="stMain"] pre { font-size: 1.25rem !important; }
</style>
"""

st.title("Classroom")

session_id: int | None = None
with guard("listing the sessions"):
    session_id = nav.session_picker("pick:classroom")


def steps_of(sid: int) -> list[services.ReplayStep]:
    who = actor()
    key = f"classroom:{sid}:{who.name}:{who.role}:steps"  # read (and checked) per person
    if key not in st.session_state:
        st.session_state[key] = list(services.replay(sid, actor=who))
    return st.session_state[key]


def show_step(step: services.ReplayStep) -> None:
    if step.message is not None:
        m = step.message
        role = m.role if m.role in ("user", "assistant") else "assistant"
        with st.chat_message(role):
            st.markdown(m.content)
    elif step.evaluation is not None:  # an evaluation step also carries its candidate
        c = step.candidate
        about = f" ({c.origin}, iteration {c.iteration})" if c is not None else ""
        st.markdown(f"**Verdict for candidate #{step.evaluation.candidate_id}**{about}")
        show_evaluation(step.evaluation)
        if c is not None and c.origin == "baseline" and step.evaluation.speedup is None:
            st.caption("The baseline is 1× by definition: every candidate is timed against it.")
        if c is not None:
            with st.expander("Its code"):
                st.code(c.source, language="python", line_numbers=True)
    elif step.candidate is not None:
        c = step.candidate
        st.markdown(f"**New candidate #{c.id}** ({c.origin}, iteration {c.iteration})")
        st.code(c.source, language="python", line_numbers=True)
    elif step.conair_round is not None:
        r = step.conair_round
        st.markdown(
            f"**ConAIR round {r.number}**: {r.validations_asked} test(s) validated"
            + (" — finished" if r.finished else "")
        )
    elif step.summary is not None:
        st.markdown(f"**Summary of candidate #{step.summary.candidate_id}**")
        st.markdown("\n".join(f"- {it.text}" for it in step.summary.items))
    elif step.comment is not None:
        st.markdown(f"💬 **{step.comment.author}**: {step.comment.text}")


def classroom(sid: int) -> None:
    steps = steps_of(sid)
    index_key = f"classroom:{sid}:index"
    st.session_state.setdefault(index_key, 0)
    if not steps:
        st.info("This session has nothing to replay yet.")
        return
    n = len(steps)
    st.session_state[index_key] = min(st.session_state[index_key], n - 1)

    def move(delta: int | None) -> None:
        i = st.session_state[index_key]
        st.session_state[index_key] = 0 if delta is None else max(0, min(n - 1, i + delta))

    controls = st.columns([1, 1, 1, 2, 2, 2])
    controls[0].button("⏮ Start", on_click=move, args=(None,), key="classroom_start")
    controls[1].button("◀ Previous", on_click=move, args=(-1,), key="classroom_prev")
    controls[2].button("Next ▶", on_click=move, args=(1,), key="classroom_next")
    default(f"{KEEP}classroom:autoplay", False)
    controls[3].toggle("Autoplay", key=f"{KEEP}classroom:autoplay")
    default(f"{KEEP}classroom:seconds", 3)
    controls[4].number_input("Seconds per step", 1, 30, key=f"{KEEP}classroom:seconds")
    default(f"{KEEP}classroom:presenter", False)
    controls[5].toggle("Presenter view", key=f"{KEEP}classroom:presenter")
    if st.session_state[f"{KEEP}classroom:presenter"]:
        st.html(PRESENTER_CSS)

    autoplay = st.session_state[f"{KEEP}classroom:autoplay"]
    every = st.session_state[f"{KEEP}classroom:seconds"] if autoplay else None

    @st.fragment(run_every=every)
    def stage() -> None:
        i = st.session_state[index_key]
        last_key = f"classroom:{sid}:advanced_at"
        if not autoplay:
            st.session_state.pop(last_key, None)
        elif last_key not in st.session_state:
            st.session_state[last_key] = time.monotonic()  # autoplay starts: wait one period
        elif time.monotonic() - st.session_state[last_key] >= every - 0.25:
            i = min(n - 1, i + 1)
            st.session_state[index_key] = i
            st.session_state[last_key] = time.monotonic()
        step = steps[i]
        st.progress((i + 1) / n, text=f"Step {i + 1} of {n} · {step.kind} · {step.at:%H:%M:%S}")
        left, right = st.columns([3, 2], gap="large")
        with left:
            show_step(step)
        with right:
            st.plotly_chart(
                charts.speedup_chart(series_until(steps, i), title="Speedup so far"),
                key=f"classroom_chart_{sid}",
                config={"displayModeBar": False},
            )
            routing = routing_until(steps, i)
            if routing is not None:
                moefied_notice(routing.moefied)
                st.plotly_chart(
                    charts.routing_heatmap(
                        routing.tokens,
                        routing.experts,
                        routing.weights,
                        expert_count=routing.expert_count,
                        title=f"Routing of message #{routing.message_id}",
                    ),
                    key=f"classroom_routing_{sid}",
                    config={"displayModeBar": False},
                )

    stage()
    if st.button("Reload the session", key="classroom_reload"):
        st.session_state.pop(f"classroom:{sid}:steps", None)
        st.rerun()


if session_id is not None:
    with guard("replaying the session"):
        classroom(session_id)
