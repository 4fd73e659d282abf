"""The offline default model: SmolLM2-135M (dense) through llama.cpp, MoEfied in observer mode."""

import threading

import numpy as np
import pytest

from app.moe import ContextTooLong, InvalidRequest, routing_arrays
from tests.moe.conftest import USER

pytestmark = [pytest.mark.slow, pytest.mark.model]


def test_info_says_the_experts_are_moefied_groups(default_engine):
    info = default_engine.info
    assert info.engine == "llama.cpp"
    assert info.moefied is True
    assert (info.layer_count, info.expert_count, info.top_k) == (30, 8, 2)
    assert info.context_length == 8192
    assert "MoEfied" in info.description and "not trained experts" in info.description
    assert "dense" in info.description


def test_partition_is_balanced_and_cached(default_engine, moe_cache_dir):
    path = default_engine.partition_path
    assert path.parent == moe_cache_dir and path.is_file()
    groups = np.load(path)["groups"]
    assert groups.shape == (30, 1536)
    for row in groups:
        assert np.bincount(row, minlength=8).tolist() == [192] * 8


def test_partition_rebuild_is_deterministic(default_engine, tmp_path):
    from app.moe.llama_engine import LlamaCppEngine

    again = LlamaCppEngine(default_engine.path, cache_dir=tmp_path)
    try:
        assert again.partition_path.name == default_engine.partition_path.name
        rebuilt = np.load(again.partition_path)["groups"]
        np.testing.assert_array_equal(rebuilt, np.load(default_engine.partition_path)["groups"])
    finally:
        again.close()


def test_learned_groups_concentrate_activation_mass(default_engine):
    """Co-activation clustering must beat an arbitrary split: the top-2 of 8 groups carry more
    of a layer's activation mass than with a random balanced partition (measured: ~0.35 vs
    ~0.29; 0.25 would be uniform)."""
    from app.moe import moefication as mf

    learned = np.array([e.weights for e in default_engine.chat(USER, max_tokens=24)[0]])
    rng = np.random.default_rng(0)
    saved = default_engine._membership
    try:
        default_engine._membership = np.stack(
            [mf.group_membership(rng.permutation(np.arange(1536) % 8), 8) for _ in range(30)]
        )
        random = np.array([e.weights for e in default_engine.chat(USER, max_tokens=24)[0]])
    finally:
        default_engine._membership = saved
    assert learned.sum(axis=2).mean() > random.sum(axis=2).mean() + 0.03


def test_stream_reports_routing_per_token(default_engine):
    stream = default_engine.chat_stream(USER, max_tokens=12)
    events = list(stream)
    summary = stream.summary
    assert summary is not None and summary is default_engine.last_usage
    assert summary.completion_tokens == len(events) == 12
    assert summary.finish_reason == "length"
    assert summary.text == "".join(e.token for e in events)
    assert summary.text.strip()
    experts, weights = routing_arrays(events)
    assert experts.shape == weights.shape == (12, 30, 2)
    assert experts.min() >= 0 and experts.max() < 8
    assert (experts[:, :, 0] != experts[:, :, 1]).all()
    # weights are each group's share of the layer's activation mass, largest first
    assert (weights > 0).all() and (weights.sum(axis=2) <= 1.0 + 1e-6).all()
    assert (weights[:, :, 0] >= weights[:, :, 1]).all()
    assert summary.prompt_experts.shape == (summary.prompt_tokens, 30, 2)
    assert len(summary.prompt_token_texts) == summary.prompt_tokens
    assert "<|im_start|>" in summary.prompt_token_texts


def test_output_equals_the_plain_dense_model(default_engine, moe_cache_dir):
    """Observer mode must not change a single token: compare with llama.cpp run without any
    eval callback on the same file."""
    from app.moe.llama_engine import LlamaCppEngine

    plain = LlamaCppEngine(default_engine.path, cache_dir=moe_cache_dir, capture_routing=False)
    try:
        prompt = [{"role": "user", "content": "Write a Python function that sums a list."}]
        observed, _ = default_engine.chat(prompt, max_tokens=48)
        dense, _ = plain.chat(prompt, max_tokens=48)
        assert [e.token_id for e in observed] == [e.token_id for e in dense]
    finally:
        plain.close()


def test_stop_strings_cut_the_reply(default_engine):
    events, full = default_engine.chat(USER, max_tokens=40)
    text = full.text
    stop = text[len(text) // 2 : len(text) // 2 + 4]
    assert stop and stop in text
    events, cut = default_engine.chat(USER, max_tokens=40, stop=["@@never@@", stop])
    assert cut.finish_reason == "stop"
    assert cut.text == text[: text.index(stop)]
    assert "".join(e.token for e in events) == cut.text


def test_sampling_is_reproducible_with_a_seed(default_engine):
    a = default_engine.chat(USER, max_tokens=10, temperature=0.9, seed=7)[1].text
    b = default_engine.chat(USER, max_tokens=10, temperature=0.9, seed=7)[1].text
    assert a == b


def test_bad_requests(default_engine):
    with pytest.raises(InvalidRequest):
        default_engine.chat_stream([])
    with pytest.raises(InvalidRequest):
        default_engine.chat_stream([{"role": "wizard", "content": "hi"}])
    with pytest.raises(InvalidRequest):
        default_engine.chat_stream(USER, max_tokens=0)
    with pytest.raises(ContextTooLong) as info:
        default_engine.chat_stream([{"role": "user", "content": "word " * 9000}])
    assert info.value.context_length == 8192 and info.value.prompt_tokens > 8192


def test_count_tokens(default_engine):
    assert default_engine.count_tokens("") == 0
    n = default_engine.count_tokens("def f(x): return x")
    assert 3 <= n <= 12
    assert default_engine.count_chat_tokens(USER) > default_engine.count_tokens(USER[0]["content"])


def test_one_generation_at_a_time(default_engine):
    """Two threads share the engine; the lock serialises them, so each gets the reply it would
    have got alone."""
    alone = default_engine.chat(USER, max_tokens=8)[1].text
    results: list[str] = []

    def run() -> None:
        results.append(default_engine.chat(USER, max_tokens=8)[1].text)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [alone, alone]


def test_a_reply_becomes_a_routing_trace_row(default_engine):
    from app.moe.trace import decode_routing, routing_trace_fields
    from db.models import RoutingTrace

    events, summary = default_engine.chat(USER, max_tokens=6)
    fields = routing_trace_fields(events, summary)
    row = RoutingTrace(message_id=1, **fields)  # every key is a column of the real model
    assert row.moefied is True and row.token_count == summary.prompt_tokens + 6
    assert row.prompt_token_count == summary.prompt_tokens
    experts, weights = decode_routing(
        row.encoding, row.expert_ids, row.gate_weights, row.token_count, 30, 2
    )
    np.testing.assert_array_equal(experts[: row.prompt_token_count], summary.prompt_experts)
    assert experts[row.prompt_token_count :].tolist() == [e.experts for e in events]
    np.testing.assert_allclose(weights[-1], events[-1].weights, atol=1e-3)
    assert row.tokens[row.prompt_token_count :] == [e.token for e in events]
