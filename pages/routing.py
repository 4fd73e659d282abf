"""Routing: which experts every generated token went to. Live while the local MoE model
generates (any running turn, or a prompt typed here), and the analytics of any stored trace:
load, entropy, co-activation, local routing consistency (SRP/SCH), LRU hit rate, top tokens."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import charts, services
from app.services import ui_support
from app.ui import guard, jobs, nav
from app.ui.identity import actor
from app.ui.routing import moefied_notice
from app.ui.state import KEEP, default

st.title("Routing")


def show_probe(snap: services.JobSnapshot) -> None:
    result = snap.result
    if not isinstance(result, ui_support.ProbeResult):
        return
    if result.layer_count is None:
        st.warning(f"{result.model} reports no routing: only the local MoE model does.")
        return
    st.caption(
        f"{result.model}: {result.tokens} tokens · {result.layer_count} layers · "
        f"{result.expert_count} experts, top-{result.top_k}"
        + (f" · {result.description}" if result.description else "")
    )
    moefied_notice(bool(result.moefied))


live, stored = st.tabs(["Live", "Stored traces"])

with live:
    st.markdown(
        "Every generation of the local model appears here while it streams: a turn on the "
        "Optimize page, from any browser, or a prompt you type below."
    )
    local = [services.get_context().model]
    with guard("listing the models"):
        local = [m.model for m in services.model_choices() if m.local] or local
    default(f"{KEEP}routing:prompt", "Write a Python function that reverses a string.")
    st.text_area("Prompt", key=f"{KEEP}routing:prompt", height=80)
    cols = st.columns([2, 1, 1])
    if st.session_state.get(f"{KEEP}routing:model") not in local:
        st.session_state[f"{KEEP}routing:model"] = local[0]
    cols[0].selectbox("Local model", local, key=f"{KEEP}routing:model")
    default(f"{KEEP}routing:max_tokens", 48)
    cols[1].number_input("Tokens", 4, 512, key=f"{KEEP}routing:max_tokens")
    busy = any(
        j.kind == "routing probe" for j in services.list_jobs(running_only=True, actor=actor())
    )
    if cols[2].button("Generate", type="primary", disabled=busy, key="routing_generate"):
        with guard("starting the generation"):
            jobs.start(
                "routing probe",
                prompt=st.session_state[f"{KEEP}routing:prompt"],
                model=st.session_state[f"{KEEP}routing:model"],
                max_tokens=int(st.session_state[f"{KEEP}routing:max_tokens"]),
            )
            st.rerun()
    jobs.job_panel(None, on_result=show_probe)
    if not services.list_jobs(running_only=True, actor=actor()):
        st.caption("Nothing is generating right now.")


def stored_trace(view: services.RoutingView) -> None:
    st.caption(
        f"{view.model} · {len(view.tokens)} tokens · {view.layer_count} layers · "
        f"{view.expert_count} experts, top-{view.top_k}"
    )
    moefied_notice(view.moefied)
    st.plotly_chart(
        charts.routing_heatmap(
            view.tokens, view.experts, view.weights, expert_count=view.expert_count
        ),
        key="routing_stored_heatmap",
        config={"displayModeBar": False},
    )
    cols = st.columns(2)
    default("routing:layer", 0)
    st.session_state["routing:layer"] = min(st.session_state["routing:layer"], view.layer_count - 1)
    cols[0].number_input("Layer", 0, max(0, view.layer_count - 1), key="routing:layer")
    default("routing:segment", min(16, max(1, len(view.tokens))))
    st.session_state["routing:segment"] = min(st.session_state["routing:segment"], len(view.tokens))
    cols[1].number_input(
        "Segment length L (SCH / SRP)", 1, max(1, len(view.tokens)), key="routing:segment"
    )
    layer = int(st.session_state["routing:layer"])
    a = ui_support.routing_analytics(
        view, layer=layer, segment_length=int(st.session_state["routing:segment"])
    )
    left, right = st.columns(2)
    with left:
        st.plotly_chart(charts.expert_load_chart(a.load), key="routing_load")
        st.plotly_chart(
            charts.cache_curves_chart(
                a.cache_sizes, a.curves, top_k=view.top_k, title=f"Cache hit rate, layer {layer}"
            ),
            key="routing_cache",
        )
        st.plotly_chart(charts.srp_chart(a.srp, segment_length=a.segment_length), key="routing_srp")
    with right:
        st.plotly_chart(
            charts.entropy_chart(a.entropy, expert_count=view.expert_count), key="routing_entropy"
        )
        st.plotly_chart(
            charts.coactivation_chart(a.coactivation, title=f"Co-activation, layer {layer}"),
            key="routing_coactivation",
        )
        st.caption(
            "Load imbalance (max / mean) per layer: " + ", ".join(f"{x:.2f}" for x in a.imbalance)
        )
    st.markdown(f"**Top tokens per expert** (layer {layer}, by normalized PMI)")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "expert": f"E{e}",
                    "tokens": "  ".join(f"{tok!r} ({score:.2f})" for tok, score in top),
                }
                for e, top in a.top_tokens.items()
            ]
        ),
        hide_index=True,
    )


with stored:
    session_id: int | None = None
    with guard("listing the sessions"):
        session_id = nav.session_picker("pick:routing")
    if session_id is not None:
        with guard("reading the session's routing"):
            view = services.get_session(session_id, actor=actor())
            traced = [m for m in view.messages if m.routing_trace_id is not None]
            if not traced:
                st.info(
                    "No routing was recorded in this session: only replies of the local MoE "
                    "model carry a routing trace."
                )
            else:
                ids = [m.id for m in traced]
                if st.session_state.get("routing:message") not in ids:
                    st.session_state["routing:message"] = ids[-1]
                st.selectbox(
                    "Reply",
                    ids,
                    key="routing:message",
                    format_func=lambda i: (
                        f"message #{i}: " + next(m.content for m in traced if m.id == i)[:60]
                    ),
                )
                trace = services.get_routing(st.session_state["routing:message"], actor=actor())
                if trace is None:
                    st.info("This reply has no routing trace.")
                else:
                    stored_trace(trace)
