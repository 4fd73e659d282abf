"""Classroom (replay step by step, chart and routing growing), Routing (stored trace analytics,
the MoEfied notice) and Settings (keys present, never shown) — AppTest."""

from __future__ import annotations

import json

import pytest

from app import services
from app.ui.verdict import verdict_parts
from tests.ui.conftest import chart, texts

pytestmark = pytest.mark.slow


def test_classroom_replays_step_by_step(seeded, seeded_at) -> None:  # noqa: ANN001
    at = seeded_at("classroom", session=str(seeded.session_id))
    steps = list(services.replay(seeded.session_id))
    n = len(steps)
    assert n >= 4
    assert at.get("progress")[0].proto.text.startswith(f"Step 1 of {n}")
    at.button(key="classroom_next").click().run()
    assert at.get("progress")[0].proto.text.startswith(f"Step 2 of {n}")
    at.button(key="classroom_prev").click().run()
    assert at.get("progress")[0].proto.text.startswith(f"Step 1 of {n}")
    points_at_start = len(chart(at, f"classroom_chart_{seeded.session_id}")["data"][0]["x"])
    for _ in range(n):
        at.button(key="classroom_next").click().run()
    assert not at.exception
    assert at.get("progress")[0].proto.text.startswith(f"Step {n} of {n}")
    # by the end the baseline's verdict is on the chart and the reply's routing is shown
    assert len(chart(at, f"classroom_chart_{seeded.session_id}")["data"][0]["x"]) == 1
    assert points_at_start == 0
    heat = chart(at, f"classroom_routing_{seeded.session_id}")["data"][0]
    assert heat["type"] == "heatmap" and heat["z"]["shape"] == "2, 7"  # layers x tokens
    at.toggle(key="keep:classroom:presenter").set_value(True).run()
    assert any("font-size: 1.6rem" in h.proto.body for h in at.get("html"))


def test_routing_page_analyses_a_stored_trace(seeded, seeded_at) -> None:  # noqa: ANN001
    at = seeded_at("routing", session=str(seeded.session_id))
    assert not at.error, [e.value for e in at.error]
    heat = chart(at, "routing_stored_heatmap")["data"][0]
    assert heat["z"]["shape"] == "2, 7"  # layers x tokens
    assert "layer 0" in heat["text"][0][0]
    assert "MoEfied neuron groups" in texts(at)
    for key in ("routing_load", "routing_entropy", "routing_coactivation", "routing_srp"):
        assert chart(at, key)["data"], key
    cache = chart(at, "routing_cache")
    assert [t["name"] for t in cache["data"]] == ["SCH L=7", "LRU"]
    assert cache["data"][1]["y"][-1] > 0  # an LRU cache holding every expert hits after warm-up
    top = at.dataframe[0].value
    assert list(top["expert"]) == ["E0", "E1", "E2", "E3"]
    at.number_input(key="routing:layer").set_value(1).run()
    assert "Co-activation, layer 1" in json.dumps(chart(at, "routing_coactivation")["layout"])


def test_settings_say_whether_a_key_is_set_never_the_key(seeded, monkeypatch) -> None:  # noqa: ANN001
    from app.config import Settings
    from tests.ui.conftest import _open_page

    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-123")
    services.set_default_context(
        services.Context.from_settings(Settings(), engine=seeded.ctx.engine)
    )
    at = _open_page("settings")
    assert not at.error, [e.value for e in at.error]
    frames = "\n".join(df.value.to_csv() for df in at.dataframe)
    assert "openai,present" in frames and "anthropic,not set" in frames
    assert "sk-secret-123" not in frames + texts(at)
    assert "bwrap" in frames
    assert "sqlite" in texts(at)


def test_classroom_shows_the_verdict_at_evaluation_steps_and_the_chart_grows(  # noqa: ANN001
    seeded, seeded_at
) -> None:
    at = seeded_at("classroom", session=str(seeded.session_id))
    steps = list(services.replay(seeded.session_id))
    evaluations = [i for i, s in enumerate(steps) if s.kind == "evaluation"]
    assert evaluations, [s.kind for s in steps]
    finished = 0
    for i, step in enumerate(steps):
        if i:
            at.button(key="classroom_next").click().run()
        assert not at.exception
        page = texts(at)
        points = chart(at, f"classroom_chart_{seeded.session_id}")["data"]
        if step.kind == "evaluation":
            finished += step.evaluation.finished
            cid = step.evaluation.candidate_id
            assert f"Verdict for candidate #{cid}" in page, page
            assert f"New candidate #{cid}" not in page
            assert " · ".join(verdict_parts(step.evaluation)) in page  # tests, speedup, verdict
            assert "tests 2/2 ✅" in page
        assert len(points[0]["x"]) + len(points[1]["x"]) == finished, (i, step.kind)
