"""The proof that routing capture is right: one tiny Qwen3-MoE, written both as an HF
checkpoint and as a GGUF file, run greedily by transformers and by llama.cpp, must produce the
same tokens and route every token (prompt and reply) to the same experts with the same gate
weights.

llama.cpp runs at reference precision here (float32 K/V cache, no flash attention): its
defaults (float16 K/V, flash attention rounding Q to float16) move gate weights by ~1e-3, which
leaves prompt routing identical but can flip a near-tie between two tokens later in a reply.
"""

from pathlib import Path

import numpy as np
import pytest

from tests.moe.conftest import USER

pytestmark = [pytest.mark.slow, pytest.mark.model]


def _compare(llama, hf, max_tokens: int = 24) -> None:
    events_a, summary_a = llama.chat(USER, max_tokens=max_tokens)
    events_b, summary_b = hf.chat(USER, max_tokens=max_tokens)
    assert len(events_a) >= 8, "the tiny model should say something before ending"
    assert [e.token_id for e in events_a] == [e.token_id for e in events_b]
    assert summary_a.text == summary_b.text
    assert summary_a.finish_reason == summary_b.finish_reason

    # prompt routing: (P, layers, top-2), identical ids, weights equal to float32 rounding
    layers = llama.info.layer_count
    assert summary_a.prompt_experts.shape == (summary_a.prompt_tokens, layers, 2)
    np.testing.assert_array_equal(summary_a.prompt_experts, summary_b.prompt_experts)
    np.testing.assert_allclose(summary_a.prompt_weights, summary_b.prompt_weights, atol=2e-5)

    # reply routing, token by token
    ids_a = np.array([e.experts for e in events_a])
    ids_b = np.array([e.experts for e in events_b])
    np.testing.assert_array_equal(ids_a, ids_b)
    w_a = np.array([e.weights for e in events_a])
    w_b = np.array([e.weights for e in events_b])
    np.testing.assert_allclose(w_a, w_b, atol=2e-5)
    # Qwen3-MoE normalises the top-k weights: each token-layer sums to 1, largest first
    np.testing.assert_allclose(w_a.sum(axis=2), 1.0, atol=1e-5)
    assert (w_a[:, :, 0] >= w_a[:, :, 1]).all()
    # the routing is not degenerate: several experts are used in every layer
    for layer in range(layers):
        assert len(np.unique(ids_a[:, layer, :])) >= 4


def test_both_engines_describe_the_same_model(tiny_llama, tiny_hf):
    for info in (tiny_llama.info, tiny_hf.info):
        assert (info.layer_count, info.expert_count, info.top_k) == (3, 8, 2)
        assert info.moefied is False
    assert tiny_llama.info.engine == "llama.cpp"
    assert tiny_hf.info.engine == "transformers"


def test_same_prompt_tokens(tiny_llama, tiny_hf):
    assert tiny_llama._encode_chat(USER) == tiny_hf._encode_chat(USER)
    text = "def f(x):\n    return x * 2  # Hello, world!"
    assert tiny_llama.count_tokens(text) == tiny_hf.count_tokens(text)


def test_same_tokens_and_same_experts(tiny_llama, tiny_hf):
    _compare(tiny_llama, tiny_hf)


@pytest.mark.parametrize("seed", [1, 2])
def test_same_routing_for_other_random_models(seed, tmp_path: Path):
    from app.moe.hf_engine import TransformersEngine
    from app.moe.llama_engine import LlamaCppEngine
    from app.moe.tiny import build_tiny_moe

    model = build_tiny_moe(tmp_path, seed=seed, layers=4, experts=16, top_k=2)
    llama = LlamaCppEngine(model.gguf_path, reference_precision=True, cache_dir=tmp_path)
    hf = TransformersEngine(model.hf_dir)
    try:
        assert llama.info.expert_count == hf.info.expert_count == 16
        _compare(llama, hf)
    finally:
        llama.close()
        hf.close()


def test_default_precision_keeps_prompt_routing(tiny_moe, tiny_hf):
    """With llama.cpp's fast defaults the prompt's expert choices are still identical."""
    from app.moe.llama_engine import LlamaCppEngine

    fast = LlamaCppEngine(tiny_moe.gguf_path)
    try:
        _, summary_a = fast.chat(USER, max_tokens=1)
        _, summary_b = tiny_hf.chat(USER, max_tokens=1)
        np.testing.assert_array_equal(summary_a.prompt_experts, summary_b.prompt_experts)
        np.testing.assert_allclose(summary_a.prompt_weights, summary_b.prompt_weights, atol=1e-2)
    finally:
        fast.close()


def test_capture_does_not_change_the_tokens(tiny_moe, tiny_llama):
    from app.moe.hf_engine import TransformersEngine
    from app.moe.llama_engine import LlamaCppEngine

    reference = [e.token_id for e in tiny_llama.chat(USER, max_tokens=16)[0]]
    plain_llama = LlamaCppEngine(
        tiny_moe.gguf_path, capture_routing=False, reference_precision=True
    )
    plain_hf = TransformersEngine(tiny_moe.hf_dir, capture_routing=False)
    try:
        for plain in (plain_llama, plain_hf):
            events, _ = plain.chat(USER, max_tokens=16)
            assert [e.token_id for e in events] == reference
            assert events[0].experts == []
    finally:
        plain_llama.close()
        plain_hf.close()
