"""The proof that routing capture is right: one tiny Qwen3-MoE, written both as an HF
checkpoint and as a GGUF file, run greedily by transformers and by llama.cpp, must produce the
same tokens and route every token (prompt and reply) to the same experts with the same gate
weights (up to llama.cpp's float16 KV cache)."""

import numpy as np
import pytest

from tests.moe.conftest import USER

pytestmark = [pytest.mark.slow, pytest.mark.model]


def test_both_engines_describe_the_same_model(tiny_llama, tiny_hf, tiny_moe):
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
    events_a, summary_a = tiny_llama.chat(USER, max_tokens=24)
    events_b, summary_b = tiny_hf.chat(USER, max_tokens=24)
    assert len(events_a) >= 8, "the tiny model should say something before ending"
    assert [e.token_id for e in events_a] == [e.token_id for e in events_b]
    assert summary_a.text == summary_b.text
    assert summary_a.finish_reason == summary_b.finish_reason

    # prompt routing: (P, 3 layers, top-2), identical ids, weights close
    assert summary_a.prompt_experts.shape == (summary_a.prompt_tokens, 3, 2)
    np.testing.assert_array_equal(summary_a.prompt_experts, summary_b.prompt_experts)
    np.testing.assert_allclose(summary_a.prompt_weights, summary_b.prompt_weights, atol=5e-3)

    # reply routing, token by token
    ids_a = np.array([e.experts for e in events_a])
    ids_b = np.array([e.experts for e in events_b])
    np.testing.assert_array_equal(ids_a, ids_b)
    w_a = np.array([e.weights for e in events_a])
    w_b = np.array([e.weights for e in events_b])
    np.testing.assert_allclose(w_a, w_b, atol=5e-3)
    # Qwen3-MoE normalises the top-k weights: each token-layer sums to 1, largest first
    np.testing.assert_allclose(w_a.sum(axis=2), 1.0, atol=1e-5)
    assert (w_a[:, :, 0] >= w_a[:, :, 1]).all()
    # the routing is not degenerate: several experts are used in every layer
    for layer in range(3):
        assert len(np.unique(ids_a[:, layer, :])) >= 4


def test_capture_does_not_change_the_tokens(tiny_moe, tiny_llama, tiny_hf):
    from app.moe.hf_engine import TransformersEngine
    from app.moe.llama_engine import LlamaCppEngine

    reference = [e.token_id for e in tiny_llama.chat(USER, max_tokens=16)[0]]
    plain_llama = LlamaCppEngine(tiny_moe.gguf_path, capture_routing=False)
    plain_hf = TransformersEngine(tiny_moe.hf_dir, capture_routing=False)
    try:
        for plain in (plain_llama, plain_hf):
            events, _ = plain.chat(USER, max_tokens=16)
            assert [e.token_id for e in events] == reference
            assert events[0].experts == []
    finally:
        plain_llama.close()
        plain_hf.close()
