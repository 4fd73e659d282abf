"""Pure functions that turn the services' views and routing arrays into Plotly figures.

No Streamlit here: every function takes plain data and returns a ``go.Figure``, so it is unit
tested on small inputs. Colours come from the Okabe–Ito palette (distinguishable with the common
colour-vision deficiencies); continuous scales use cividis, which is too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app.services.views import CandidateView, HotLine, SpeedupPoint

#: Okabe & Ito (2008), "Color Universal Design": black first, then the eight hues.
OKABE_ITO = [
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#F0E442",  # yellow
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#000000",  # black
]
PASS_COLOUR = "#0072B2"
FAIL_COLOUR = "#D55E00"
BEST_COLOUR = "#009E73"
NEUTRAL_COLOUR = "#999999"
SEQUENTIAL = "Cividis"

_LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
}


def expert_colours(expert_count: int) -> list[str]:
    """One colour per expert: Okabe–Ito up to 8 experts, evenly spaced cividis beyond."""
    if expert_count <= len(OKABE_ITO):
        return OKABE_ITO[:expert_count]
    from plotly.colors import sample_colorscale

    return sample_colorscale(SEQUENTIAL, [i / (expert_count - 1) for i in range(expert_count)])


# --- optimization charts -------------------------------------------------------------------


def _is_failed(p: SpeedupPoint) -> bool:
    return p.correct is False


def _plotted(points: Sequence[SpeedupPoint]) -> list[SpeedupPoint]:
    """The baseline is 1× by definition (it is timed alone); candidates still waiting for a
    verdict (correct and speedup unknown) are not drawn yet."""
    out = []
    for p in points:
        if p.origin == "baseline" and p.speedup is None and p.correct is not False:
            p = replace(p, speedup=1.0)
        if p.speedup is None and p.correct is not False:
            continue
        out.append(p)
    return out


#: Horizontal spread of the candidates of one iteration (in iterations), so none hides another.
DODGE_WIDTH = 0.5


def log_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    """Tick values 1, 2, 5, 10, 20, 50, … (and 0.5, 0.2, 0.1 … below 1×) covering
    ``[low, high]``, labelled with "×", so a 63× point reads between 50× and 100×."""
    low = max(min(low, 1.0), 1e-6)
    high = max(high, 1.0)
    values: list[float] = []
    for exp in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0**exp
            if low / 2.01 <= v <= high * 2.01:
                values.append(v)
    return values, [f"{v:g}×" for v in values]


def dodged(points: Sequence[SpeedupPoint]) -> dict[int, float]:
    """candidate id → x position: its iteration, spread over ``DODGE_WIDTH`` when several
    candidates share the iteration (ordered by id, so each keeps its place as more arrive)."""
    by_iteration: dict[int, list[int]] = {}
    for p in points:
        by_iteration.setdefault(p.iteration, []).append(p.candidate_id)
    x: dict[int, float] = {}
    for iteration, ids in by_iteration.items():
        ids = sorted(ids)
        n = len(ids)
        for k, cid in enumerate(ids):
            offset = 0.0 if n == 1 else DODGE_WIDTH * (k / (n - 1) - 0.5)
            x[cid] = iteration + offset
    return x


def speedup_hover(p: SpeedupPoint) -> str:
    """Candidate, speedup, 95% CI and verdict, as the chart shows them on hover."""
    ci = "" if p.ci_low is None else f"<br>95% CI {p.ci_low:.2f}–{p.ci_high:.2f}×"
    speed = "—" if p.speedup is None else f"{p.speedup:.2f}×"
    verdict = "incorrect" if p.correct is False else (p.verdict or "no verdict yet")
    return (
        f"<b>candidate #{p.candidate_id}</b> ({p.origin}, iteration {p.iteration})<br>"
        f"speedup {speed}{ci}<br>verdict: {verdict}"
    )


def speedup_chart(points: Sequence[SpeedupPoint], *, title: str = "Speedup per iteration"):
    """Speedup (log scale, ticks at 1×, 2×, 5×, 10×, …) per iteration with 95% CI bars, a
    best-so-far line and incorrect candidates marked as crosses (at their speedup, or on the
    baseline line when they have none). Candidates of one iteration are spread side by side;
    the baseline line and its label sit at 1×; the legend sits under the plot, off the title.

    Always three traces — passing, failed, best so far — so a page can rely on their order.
    """
    points = _plotted(points)
    ok = [p for p in points if not _is_failed(p)]
    failed = [p for p in points if _is_failed(p)]
    x = dodged(points)

    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            name="correct",
            x=[x[p.candidate_id] for p in ok],
            y=[p.speedup for p in ok],
            mode="markers",
            marker={"color": PASS_COLOUR, "size": 10, "symbol": "circle"},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [max(0.0, (p.ci_high or p.speedup) - p.speedup) for p in ok],
                "arrayminus": [max(0.0, p.speedup - (p.ci_low or p.speedup)) for p in ok],
                "color": PASS_COLOUR,
            },
            customdata=[p.candidate_id for p in ok],
            hovertext=[speedup_hover(p) for p in ok],
            hoverinfo="text",
        )
    )
    fig.add_trace(
        go.Scatter(
            name="failed",
            x=[x[p.candidate_id] for p in failed],
            y=[p.speedup if p.speedup else 1.0 for p in failed],
            mode="markers",
            marker={"color": FAIL_COLOUR, "size": 12, "symbol": "x"},
            customdata=[p.candidate_id for p in failed],
            hovertext=[speedup_hover(p) for p in failed],
            hoverinfo="text",
        )
    )
    best_x: list[int] = []
    best_y: list[float] = []
    running = 0.0
    for p in sorted(ok, key=lambda q: q.iteration):
        running = max(running, p.speedup or 0.0)
        if best_x and best_x[-1] == p.iteration:
            best_y[-1] = running
        else:
            best_x.append(p.iteration)
            best_y.append(running)
    fig.add_trace(
        go.Scatter(
            name="best so far",
            x=best_x,
            y=best_y,
            mode="lines",
            line={"color": BEST_COLOUR, "shape": "hv", "dash": "dash"},
            hoverinfo="skip",
        )
    )
    ys = [p.speedup for p in ok if p.speedup] + [p.ci_low for p in ok if p.ci_low]
    ys += [p.ci_high for p in ok if p.ci_high] + [p.speedup for p in failed if p.speedup]
    low, high = min(ys + [1.0]), max(ys + [1.0])
    tickvals, ticktext = log_ticks(low, high)
    # the axis spans from the tick below the lowest value to the tick above the highest, so
    # the nearest labelled values are always on screen (autorange could cut them off)
    below = max([v for v in tickvals if v <= low] or tickvals[:1])
    above = min([v for v in tickvals if v >= high] or tickvals[-1:])
    y_range = [math.log10(below) - 0.04, math.log10(above) + 0.04]
    # The baseline line as a shape in data units; its label as an annotation, whose y on a log
    # axis is the exponent (plotly's add_hline would put the label at 10^1 = 10×).
    fig.add_shape(
        type="line",
        xref="paper",
        x0=0,
        x1=1,
        yref="y",
        y0=1.0,
        y1=1.0,
        line={"color": NEUTRAL_COLOUR, "width": 1},
        layer="below",
    )
    fig.add_annotation(  # in the right margin, where no point can hide it
        xref="paper",
        x=1.0,
        xanchor="left",
        yref="y",
        y=0.0,  # log10(1×)
        yanchor="middle",
        text=" baseline 1×",
        showarrow=False,
        font={"color": "#555555", "size": 11},
    )
    iterations = [p.iteration for p in points] or [0]
    layout = {**_LAYOUT, "legend": {"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0}}
    layout["margin"] = {**_LAYOUT["margin"], "b": 90, "r": 80}
    fig.update_layout(
        title=title,
        xaxis={
            "title": "iteration",
            "dtick": 1,
            "range": [min(iterations) - 0.6, max(iterations) + 0.6],
            "zeroline": False,
        },
        yaxis={
            "title": "speedup vs baseline (log)",
            "type": "log",
            "tickvals": tickvals,
            "ticktext": ticktext,
            "range": y_range,
        },
        hoverlabel={"align": "left"},
        **layout,
    )
    return fig


def line_profile_chart(lines: Sequence[HotLine], *, title: str = "Line profile"):
    """Each profiled line's share of the time as a heat-coloured bar, labelled with the line's
    number and source, in source order (top to bottom) so the heat sits beside the code."""
    ordered = sorted(lines, key=lambda h: h.line)
    labels = [f"{h.line:>4} │ {h.source.rstrip()[:70]}" for h in ordered]
    shares = [100.0 * h.share for h in ordered]
    fig = go.Figure(
        go.Bar(
            x=shares,
            y=labels,
            orientation="h",
            marker={"color": shares, "colorscale": SEQUENTIAL, "cmin": 0, "cmax": 100},
            customdata=[[h.hits, h.time] for h in ordered],
            hovertemplate="%{y}<br>%{x:.1f}% of time<br>hits %{customdata[0]}"
            "<br>%{customdata[1]:.4g} s<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        xaxis={"title": "% of profiled time", "range": [0, 100]},
        yaxis={
            "autorange": "reversed",
            "type": "category",
            "tickfont": {"family": "monospace", "size": 11},
        },
        height=max(220, 26 * len(ordered) + 90),
        **_LAYOUT,
    )
    return fig


def memory_chart(candidates: Sequence[CandidateView], *, title: str = "Peak memory"):
    """Peak memory (MiB) per evaluated candidate; failed candidates in the failure colour."""
    rows = [c for c in candidates if c.evaluation and c.evaluation.peak_memory_bytes is not None]
    colours = [
        FAIL_COLOUR if c.evaluation.correct is False else PASS_COLOUR  # type: ignore[union-attr]
        for c in rows
    ]
    fig = go.Figure(
        go.Bar(
            x=[f"#{c.id} ({c.origin})" for c in rows],
            y=[c.evaluation.peak_memory_bytes / 2**20 for c in rows],  # type: ignore[union-attr]
            marker={"color": colours},
            hovertemplate="%{x}<br>%{y:.4g} MiB<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        xaxis={"title": "candidate", "type": "category"},
        yaxis={"title": "peak memory (MiB)", "rangemode": "tozero"},
        **_LAYOUT,
    )
    return fig


# --- routing charts --------------------------------------------------------------------------


def _discrete_scale(colours: Sequence[str]) -> list[list[Any]]:
    """A colourscale with one flat band per category, for a heatmap of category indices."""
    n = len(colours)
    if n == 1:
        return [[0.0, colours[0]], [1.0, colours[0]]]
    scale: list[list[Any]] = []
    for i, colour in enumerate(colours):
        scale.append([i / n, colour])
        scale.append([(i + 1) / n, colour])
    return scale


def routing_heatmap(
    tokens: Sequence[str],
    experts: Sequence[Sequence[Sequence[int]]],
    weights: Sequence[Sequence[Sequence[float]]],
    *,
    expert_count: int,
    first_index: int = 0,
    title: str = "Routing: top expert per token and layer",
):
    """Token × layer heatmap coloured by each cell's highest-weight expert.

    ``experts[t][layer]`` are the ids chosen for token ``t`` (as stored and as streamed), with
    ``weights`` alike. Hovering a cell shows the token, the layer, every chosen expert and its
    gate weight. ``first_index`` numbers the tokens when showing the tail of a long stream.
    """
    n_tokens = len(tokens)
    n_layers = len(experts[0]) if n_tokens else 0
    z = np.full((n_layers, n_tokens), np.nan)
    text: list[list[str]] = [["" for _ in range(n_tokens)] for _ in range(n_layers)]
    for t in range(n_tokens):
        for layer in range(n_layers):
            ids = list(experts[t][layer])
            ws = list(weights[t][layer]) if weights else [1.0] * len(ids)
            if not ids:
                continue
            top = int(np.argmax(ws))
            z[layer, t] = ids[top]
            chosen = ", ".join(f"E{e} ({w:.2f})" for e, w in zip(ids, ws, strict=False))
            text[layer][t] = (
                f"token {first_index + t}: {tokens[t]!r}<br>layer {layer}<br>experts {chosen}"
            )
    colours = expert_colours(max(1, expert_count))
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(range(first_index, first_index + n_tokens)),
            y=list(range(n_layers)),
            text=text,
            hoverinfo="text",
            zmin=-0.5,
            zmax=max(1, expert_count) - 0.5,
            colorscale=_discrete_scale(colours),
            colorbar={
                "title": {"text": "expert"},
                "tickvals": list(range(expert_count)),
                "ticktext": [f"E{e}" for e in range(expert_count)],
            },
            xgap=1,
            ygap=1,
        )
    )
    tick_step = max(1, n_tokens // 40)
    fig.update_layout(
        title=title,
        xaxis={
            "title": "generated token",
            "tickvals": list(range(first_index, first_index + n_tokens, tick_step)),
            "ticktext": [repr(tokens[i])[1:-1][:8] for i in range(0, n_tokens, tick_step)],
            "tickangle": -60,
        },
        yaxis={"title": "layer", "autorange": "reversed"},
        height=max(260, 14 * n_layers + 140),
        **_LAYOUT,
    )
    return fig


def expert_load_chart(load: np.ndarray, *, title: str = "Expert load per layer"):
    """(L, E) load as a layer × expert heatmap of each layer's share of the selections."""
    load = np.asarray(load, dtype=np.float64)
    totals = load.sum(axis=1, keepdims=True)
    share = np.divide(load, totals, out=np.zeros_like(load), where=totals > 0)
    fig = go.Figure(
        go.Heatmap(
            z=share,
            x=[f"E{e}" for e in range(load.shape[1])],
            y=list(range(load.shape[0])),
            colorscale=SEQUENTIAL,
            zmin=0,
            customdata=load,
            hovertemplate="layer %{y}, %{x}<br>%{customdata:.0f} selections"
            " (%{z:.1%})<extra></extra>",
            colorbar={"title": {"text": "share"}},
        )
    )
    fig.update_layout(
        title=title,
        xaxis={"title": "expert", "type": "category"},
        yaxis={"title": "layer", "autorange": "reversed"},
        **_LAYOUT,
    )
    return fig


def entropy_chart(entropy_bits: Sequence[float], *, expert_count: int, title: str = ""):
    """Routing entropy per layer (bits) against the perfectly even maximum log2(E)."""
    layers = list(range(len(entropy_bits)))
    fig = go.Figure(
        go.Bar(
            x=layers,
            y=list(entropy_bits),
            name="entropy",
            marker={"color": PASS_COLOUR},
            hovertemplate="layer %{x}<br>%{y:.2f} bits<extra></extra>",
        )
    )
    fig.add_hline(
        y=float(np.log2(max(2, expert_count))),
        line={"color": NEUTRAL_COLOUR, "dash": "dot"},
        annotation_text="even load",
    )
    fig.update_layout(
        title=title or "Routing entropy per layer",
        xaxis={"title": "layer", "dtick": 1},
        yaxis={"title": "entropy (bits)", "rangemode": "tozero"},
        **_LAYOUT,
    )
    return fig


def coactivation_chart(matrix: np.ndarray, *, title: str = "Expert co-activation"):
    """(E, E) co-activation counts as a heatmap (the diagonal is each expert's load)."""
    matrix = np.asarray(matrix)
    labels = [f"E{e}" for e in range(matrix.shape[0])]
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=labels,
            y=labels,
            colorscale=SEQUENTIAL,
            hovertemplate="%{y} with %{x}: %{z}<extra></extra>",
            colorbar={"title": {"text": "tokens"}},
        )
    )
    fig.update_layout(
        title=title,
        xaxis={"type": "category"},
        yaxis={"type": "category", "autorange": "reversed"},
        **_LAYOUT,
    )
    return fig


def cache_curves_chart(
    cache_sizes: Sequence[int],
    curves: Mapping[str, Sequence[float]],
    *,
    top_k: int | None = None,
    title: str = "Expert cache hit rate vs cache size",
):
    """Hit rate (0–1) against cache size, one line per curve (e.g. "SCH L=16", "LRU").

    A dotted line marks the active experts per token (``top_k``); the paper's finding is that
    about twice that balances hit rate and memory.
    """
    fig = go.Figure()
    for i, (name, values) in enumerate(curves.items()):
        fig.add_trace(
            go.Scatter(
                name=name,
                x=list(cache_sizes),
                y=list(values),
                mode="lines+markers",
                line={"color": OKABE_ITO[i % len(OKABE_ITO)]},
                hovertemplate=f"{name}<br>cache %{{x}}<br>hit rate %{{y:.1%}}<extra></extra>",
            )
        )
    if top_k:
        fig.add_vline(
            x=top_k, line={"color": NEUTRAL_COLOUR, "dash": "dot"}, annotation_text="top-k"
        )
    fig.update_layout(
        title=title,
        xaxis={"title": "cache size (experts)", "dtick": 1},
        yaxis={"title": "hit rate", "range": [0, 1.02], "tickformat": ".0%"},
        **_LAYOUT,
    )
    return fig


def srp_chart(srp: Sequence[float], *, segment_length: int, title: str = ""):
    """SRP(L) per layer: how well "the experts a segment used often" predicts every token."""
    fig = go.Figure(
        go.Bar(
            x=list(range(len(srp))),
            y=list(srp),
            marker={"color": OKABE_ITO[2]},
            hovertemplate="layer %{x}<br>SRP %{y:.2f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or f"Segment routing best performance SRP(L={segment_length})",
        xaxis={"title": "layer", "dtick": 1},
        yaxis={"title": "best F1", "range": [0, 1.02]},
        **_LAYOUT,
    )
    return fig
