"""Routing widgets: the live token × layer heatmap fed by streamed routing events, and the plain
notice that MoEfied "experts" are neuron groups of a dense model, not trained experts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from app import charts

MOEFIED_NOTICE = (
    'These "experts" are **MoEfied neuron groups of a dense model** (observer mode): the model '
    "computes its full feed-forward layers and perfloop reports which groups of neurons were "
    "most active per token. They are not experts the model was trained to route between."
)


def moefied_notice(moefied: bool) -> None:
    if moefied:
        st.info(MOEFIED_NOTICE, icon="ℹ️")


#: Tokens the live heatmap shows (the newest): each poll resends the figure to the browser, so
#: it is kept small enough to redraw every second while the model is generating.
LIVE_TOKENS = 64


def live_heatmap(events: Sequence[Any], *, key: str, expert_count: int | None = None) -> None:
    """Heatmap of streamed routing events (``app.llm.RoutingEvent``: index, token, experts,
    weights), the newest ``LIVE_TOKENS`` of them, newest on the right."""
    if not events:
        return
    events = list(events)[-LIVE_TOKENS:]
    experts = [e.experts for e in events]
    count = expert_count or 1 + max(
        (max(ids) for layers in experts for ids in layers if ids), default=0
    )
    fig = charts.routing_heatmap(
        [e.token for e in events],
        experts,
        [e.weights for e in events],
        expert_count=count,
        first_index=events[0].index,
        title=f"Live routing · {events[-1].index + 1} tokens",
    )
    st.plotly_chart(fig, key=key, config={"displayModeBar": False})
