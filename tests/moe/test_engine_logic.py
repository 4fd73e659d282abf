"""Pure pieces of the engine: stop-string hold-back, sampling, message checks."""

import numpy as np
import pytest

from app.moe import InvalidRequest
from app.moe.engine import _stop_prefix_len, normalise_messages, sample_token


def test_stop_prefix_len_holds_back_only_a_possible_stop_start():
    # "abc<|e" could be the start of "<|end|>" -> hold back 3 characters
    assert _stop_prefix_len("abc<|e", ["<|end|>"]) == 3
    assert _stop_prefix_len("abc", ["<|end|>"]) == 0
    # the longest candidate over all stops wins
    assert _stop_prefix_len("x\n\n#", ["\n\n# ", "#"]) == 3
    # a complete stop is not a prefix (it is found by the caller before this is asked)
    assert _stop_prefix_len("ab", ["b"]) == 0


def test_sampling():
    logits = np.array([0.1, 3.0, 0.2])
    rng = np.random.default_rng(0)
    assert sample_token(logits, 0.0, rng) == 1
    # at a very low temperature sampling is greedy; at a high one all tokens appear
    assert {sample_token(logits, 1e-3, rng) for _ in range(20)} == {1}
    assert {sample_token(logits, 100.0, rng) for _ in range(200)} == {0, 1, 2}
    a = [sample_token(logits, 1.0, np.random.default_rng(5)) for _ in range(3)]
    b = [sample_token(logits, 1.0, np.random.default_rng(5)) for _ in range(3)]
    assert a == b


def test_messages_are_checked_and_normalised():
    parts = [
        {
            "role": "developer",
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        }
    ]
    assert normalise_messages(parts) == [{"role": "system", "content": "ab"}]
    assert normalise_messages([{"role": "assistant", "content": None}])[0]["content"] == ""
    for bad in (None, [], [{"content": "x"}], [{"role": "user", "content": 3}], ["hi"]):
        with pytest.raises(InvalidRequest):
            normalise_messages(bad)
