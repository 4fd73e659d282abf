"""Trimming the conversation to the model's window."""

from __future__ import annotations

import pytest

from app.llm import ContextTooLong, trim_to_window
from app.llm.context import context_window


def conversation(turns: int) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": "You are a performance engineer."}]
    for i in range(turns):
        msgs.append({"role": "user", "content": f"request {i} " + "word " * 200})
        msgs.append({"role": "assistant", "content": f"reply {i} " + "word " * 200})
    msgs.append({"role": "user", "content": "the current code " + "x = 1\n" * 20})
    return msgs


def test_oldest_messages_go_first_and_system_and_last_stay():
    msgs = conversation(10)
    trimmed = trim_to_window("openai/gpt-4o-mini", msgs, reserve=200, window=1500)
    assert trimmed[0] == msgs[0]
    assert trimmed[-1] == msgs[-1]
    assert len(trimmed) < len(msgs)
    kept = [m["content"].split()[1] for m in trimmed[1:-1]]
    assert kept == sorted(kept, key=int), "the most recent turns are kept, in order"
    assert "9" in kept, "the last turn survives"
    assert trimmed[1]["role"] == "user", "never start with an orphaned reply"


def test_everything_fits_in_a_large_window():
    msgs = conversation(3)
    assert trim_to_window("openai/gpt-4o-mini", msgs, reserve=1000) == msgs


def test_code_too_long_for_the_window_says_so():
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "x = 1\n" * 4000}]
    with pytest.raises(ContextTooLong) as info:
        trim_to_window("openai/gpt-4o-mini", msgs, reserve=500, window=2000)
    assert "window is 2000 tokens" in str(info.value)


def test_window_of_a_known_remote_model_comes_from_litellm():
    assert context_window("openai/gpt-4o-mini") >= 100_000
