"""One chat turn end to end with the real local model (SmolLM2, MoEfied), the real sandbox and
the database: tokens stream, every generated token's routing is stored."""

from __future__ import annotations

import pytest

from app import services
from tests.services.conftest import BASELINE, TESTS, WORKLOAD


@pytest.mark.model
@pytest.mark.slow
def test_one_turn_with_the_local_model_stores_reply_and_routing(ctx):
    view = services.create_session(
        baseline_source=BASELINE,
        entry_point="count_common",
        workload_source=WORKLOAD,
        tests_source=TESTS,
        model="perfloop-moe/default",
        ctx=ctx,
    )
    tokens: list[str] = []
    routing: list = []
    result = services.run_turn(
        view.info.id, max_tokens=120, on_token=tokens.append, on_routing=routing.append, ctx=ctx
    )
    assert result.reply and "".join(tokens) == result.reply
    assert len(routing) == result.usage.completion_tokens > 0
    assert result.usage.cost == 0.0
    # Whatever the small model proposes is either evaluated or explained.
    assert result.candidates or result.notice
    for cand in result.candidates:
        assert cand.evaluation is not None and cand.evaluation.finished

    trace = services.get_routing(result.assistant_message_id, ctx=ctx)
    assert trace is not None and trace.moefied
    assert len(trace.tokens) == len(routing)
    assert trace.experts[0] == routing[0].experts
    assert trace.layer_count == len(routing[0].experts) and trace.top_k == 2
    stored = services.get_session(view.info.id, ctx=ctx)
    reply = stored.messages[1]
    assert reply.role == "assistant" and reply.model == "perfloop-moe/default"
    assert reply.routing_trace_id == trace.id and reply.completion_tokens == len(routing)


@pytest.mark.model
@pytest.mark.slow
def test_the_local_models_tokens_and_routing_reach_the_job_row_while_streaming(ctx):
    import time

    job = services.submit_job(
        "routing probe",
        params={"prompt": "Write a Python function that reverses a string.", "max_tokens": 96},
        ctx=ctx,
    )
    live = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        snap = services.get_job(job.id, ctx=ctx)
        if snap.state == "running" and snap.routing_tail and snap.text:
            live = snap
            break
        if snap.finished:
            break
        time.sleep(0.05)
    assert live is not None, "no snapshot showed routing while the model was writing"
    assert live.routing_tail[-1].index + 1 >= len(live.routing_tail)
    assert len(live.routing_tail[0].experts) > 0  # one list of experts per layer
    done = services.wait_job(job.id, 300, ctx=ctx)
    assert done.state == "done", done.error
    assert done.text == done.result.text and done.tokens > live.tokens
    assert len(done.routing_tail) == min(done.result.tokens, 64)
