"""Each chart function on a small input: figure type, trace count, axis scale, colours."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from app import charts
from tests.ui.factories import candidate, evaluation, point


def test_speedup_chart_log_axis_ci_best_line_and_failed_marked() -> None:
    pts = [point(0, 1.0), point(1, 2.0), point(2, None, correct=False), point(3, 1.5)]
    fig = charts.speedup_chart(pts)
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["correct", "failed", "best so far"]
    assert fig.layout.yaxis.type == "log"
    ok, failed, best = fig.data
    assert list(ok.x) == [0, 1, 3]
    assert ok.error_y.array[1] > 0 and ok.error_y.arrayminus[1] > 0  # CI 1.8–2.2 around 2.0
    assert list(failed.x) == [2] and failed.marker.symbol == "x"
    assert failed.marker.color != ok.marker.color
    assert list(best.y) == [1.0, 2.0, 2.0]  # best so far never drops


def test_speedup_chart_baseline_is_one_and_pending_candidates_wait() -> None:
    baseline = point(0, None, correct=True)
    pending = point(1, None, correct=None)
    fig = charts.speedup_chart([baseline, pending])
    ok, failed, _best = fig.data
    assert list(ok.x) == [0] and list(ok.y) == [1.0]  # the baseline, timed alone, is 1×
    assert len(failed.x) == 0  # a candidate without a verdict is not drawn as failed


def test_speedup_chart_empty_still_has_its_three_traces() -> None:
    fig = charts.speedup_chart([])
    assert len(fig.data) == 3 and all(len(t.x) == 0 for t in fig.data)


def test_line_profile_chart_orders_lines_and_colours_by_share() -> None:
    ev = evaluation(1)
    fig = charts.line_profile_chart(ev.line_profile)
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Bar)
    bar = fig.data[0]
    assert bar.orientation == "h"
    assert bar.y[0].startswith("   2 │") and "for x in xs" in bar.y[1]
    assert list(bar.x) == [10.0, 90.0] and list(bar.marker.color) == [10.0, 90.0]
    assert fig.layout.yaxis.type == "category"


def test_memory_chart_bars_in_mib_failed_distinct() -> None:
    cands = [
        candidate(1, origin="baseline"),
        candidate(2, evaluation=evaluation(2, correct=False, peak_memory_bytes=2**20)),
        candidate(3, evaluation=None),
    ]
    fig = charts.memory_chart(cands)
    bar = fig.data[0]
    assert list(bar.y) == [12.0, 1.0]  # the unevaluated candidate has no bar
    assert bar.marker.color[0] != bar.marker.color[1]
    assert fig.layout.xaxis.type == "category"


def test_routing_heatmap_cells_are_top_expert_with_hover() -> None:
    tokens = ["def", " f"]
    experts = [[[1, 3], [0, 2]], [[2, 1], [3, 0]]]
    weights = [[[0.7, 0.3], [0.2, 0.8]], [[0.6, 0.4], [0.9, 0.1]]]
    fig = charts.routing_heatmap(tokens, experts, weights, expert_count=4)
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Heatmap)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (2, 2)  # layers × tokens
    assert z.tolist() == [[1, 2], [2, 3]]
    assert "E1 (0.70)" in fig.data[0].text[0][0] and "layer 0" in fig.data[0].text[0][0]
    assert fig.layout.yaxis.autorange == "reversed"


def test_routing_heatmap_palette_is_okabe_ito_up_to_eight_experts() -> None:
    assert charts.expert_colours(8) == charts.OKABE_ITO
    assert len(set(charts.expert_colours(32))) == 32


def test_expert_load_chart_shares_per_layer() -> None:
    load = np.array([[2, 2, 0, 0], [1, 1, 1, 1]])
    fig = charts.expert_load_chart(load)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (2, 4) and np.allclose(z.sum(axis=1), 1.0)
    assert z[0, 0] == 0.5


def test_entropy_coactivation_and_srp_charts() -> None:
    fig = charts.entropy_chart([1.0, 2.0], expert_count=4)
    assert isinstance(fig.data[0], go.Bar) and len(fig.data) == 1
    assert fig.layout.shapes[0].y0 == 2.0  # log2(4): the even-load line
    co = charts.coactivation_chart(np.eye(3, dtype=int))
    assert isinstance(co.data[0], go.Heatmap) and list(co.data[0].x) == ["E0", "E1", "E2"]
    srp = charts.srp_chart([0.5, 0.9], segment_length=16)
    assert list(srp.data[0].y) == [0.5, 0.9] and srp.layout.yaxis.range == (0, 1.02)


def test_cache_curves_chart_one_line_per_curve() -> None:
    fig = charts.cache_curves_chart(
        [1, 2, 3], {"SCH L=16": [0.5, 0.7, 0.9], "LRU": [0.3, 0.5, 0.8]}, top_k=2
    )
    assert [t.name for t in fig.data] == ["SCH L=16", "LRU"]
    assert fig.layout.yaxis.tickformat == ".0%"
    assert fig.data[0].line.color != fig.data[1].line.color


def test_speedup_chart_log_ticks_read_in_times_and_cover_the_points() -> None:
    fig = charts.speedup_chart([point(0, None), point(1, 63.0), point(2, 0.4)])
    axis = fig.layout.yaxis
    values = list(axis.tickvals)
    assert [1, 2, 5, 10, 20, 50, 100] == [v for v in values if v >= 1]
    assert 0.5 in values and 0.2 in values  # the slower candidate's range
    assert list(axis.ticktext)[values.index(50)] == "50×"
    assert list(axis.ticktext)[values.index(1)] == "1×"
    # 63× lies between the 50× and the 100× ticks (no tick labelled "6" on its own)
    assert all(t.endswith("×") for t in axis.ticktext)
    # the axis spans the ticks around the points: 0.2× below 0.4×, 100× above 63×
    low, high = axis.range
    assert 10**low <= 0.2 < 10 ** (low + 0.1) and 10 ** (high - 0.1) < 100 <= 10**high


def test_speedup_chart_baseline_line_and_label_sit_at_one() -> None:
    fig = charts.speedup_chart([point(0, None), point(1, 63.0)])
    [line] = [s for s in fig.layout.shapes if s.type == "line"]
    assert line.y0 == line.y1 == 1.0 and line.yref == "y"
    [label] = [a for a in fig.layout.annotations if "baseline" in a.text]
    assert label.yref == "y" and label.y == 0.0  # a log axis places annotations by exponent
    assert "1×" in label.text


def test_speedup_chart_dodges_candidates_of_one_iteration() -> None:
    pts = [point(0, None), point(1, 3.0, cid=2), point(1, 3.0, cid=3), point(1, None, cid=4,
           correct=False)]  # fmt: skip
    ok, failed, best = charts.speedup_chart(pts).data
    xs = list(ok.x) + list(failed.x)
    assert len(set(xs)) == 4  # no two markers share a position
    assert all(0.7 <= x <= 1.3 for x in xs[1:])  # …and they stay around their iteration
    assert list(best.x) == [0, 1]


def test_speedup_chart_legend_is_off_the_title_and_hover_says_it_all() -> None:
    fig = charts.speedup_chart([point(0, None), point(1, 2.0, cid=7)])
    assert fig.layout.legend.y < 0  # under the plot, the title keeps the top
    hover = fig.data[0].hovertext[1]
    for part in ("candidate #7", "2.00×", "95% CI 1.80–2.20×", "verdict: faster"):
        assert part in hover, (part, hover)
    failed = charts.speedup_chart([point(1, None, cid=3, correct=False)]).data[1]
    assert "verdict: incorrect" in failed.hovertext[0]
