"""The C filter that answers llama.cpp's per-node "do you want this tensor?" question."""

import ctypes

import numpy as np
import pytest

from app.moe import EngineUnavailable, graph_filter
from tests.moe.conftest import USER


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    fn = graph_filter.load_filter(tmp_path_factory.mktemp("native"))
    assert fn is not None, "a C compiler is needed (it also builds llama-cpp-python)"
    return fn


def _ask(native, state, name: str) -> bool:
    # a fake tensor: its name lives at state.name_offset, as in struct ggml_tensor
    tensor = ctypes.create_string_buffer(state.name_offset + 64)
    ctypes.memmove(ctypes.addressof(tensor) + state.name_offset, name.encode(), len(name))
    return bool(native(ctypes.addressof(tensor), True, ctypes.addressof(state)))


def test_filter_matches_exact_base_and_layer(native):
    seen = []
    on_data = graph_filter.EvalCallback(lambda t, ask, ud: seen.append(t) or True)
    state = graph_filter.FilterState(name_offset=40, on_data=on_data)
    state.set_names([b"ffn_moe_topk-0", b"ffn_moe_topk-3", b"ffn_moe_weights_norm-3"])
    assert _ask(native, state, "ffn_moe_topk-3")
    assert _ask(native, state, "ffn_moe_weights_norm-0")  # cross product of bases and layers
    assert not _ask(native, state, "ffn_moe_topk-1")  # layer not asked for
    assert not _ask(native, state, "ffn_moe_weights_norm-3 (reshaped)")
    assert not _ask(native, state, "ffn_moe_weights-3")  # another base
    assert not _ask(native, state, "ffn_moe_topk-")
    assert not _ask(native, state, "ffn_moe_topk-3x")
    assert not _ask(native, state, "embd")
    # the data phase goes to the Python callback
    assert native(1234, False, ctypes.addressof(state))
    assert seen == [1234]
    state.set_names([b"ffn_swiglu-7"])
    assert _ask(native, state, "ffn_swiglu-7") and not _ask(native, state, "ffn_moe_topk-3")


@pytest.mark.slow
@pytest.mark.model
def test_python_fallback_captures_the_same_routing(tiny_moe, tiny_llama):
    from app.moe.llama_engine import LlamaCppEngine

    assert tiny_llama._filter is not None
    fallback = LlamaCppEngine(tiny_moe.gguf_path, native_filter=False, reference_precision=True)
    try:
        assert fallback._filter is None
        a, sa = tiny_llama.chat(USER, max_tokens=8)
        b, sb = fallback.chat(USER, max_tokens=8)
        assert [e.experts for e in a] == [e.experts for e in b]
        np.testing.assert_array_equal(sa.prompt_experts, sb.prompt_experts)
    finally:
        fallback.close()
    with pytest.raises(EngineUnavailable):
        fallback.chat_stream(USER)
