"""The client against litellm's own mock provider and a recorded transcript (remote providers
cannot be reached here; the test names say which stand-in they use)."""

from __future__ import annotations

import pytest

from app.llm import errors as E
from app.llm import stream_chat
from tests.llm import recorded

HELLO = [{"role": "user", "content": "hello"}]


def test_streams_tokens_with_usage_cost_and_latency_mock_provider():
    pieces: list[str] = []
    result = stream_chat(
        "openai/gpt-4o-mini",
        HELLO,
        on_token=pieces.append,
        options={"mock_response": "Use a set.\n```python\nx = 1\n```"},
    )
    assert len(pieces) > 2, "the reply should arrive in several pieces"
    assert "".join(pieces) == result.text == "Use a set.\n```python\nx = 1\n```"
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    assert result.cost is not None and result.cost > 0  # litellm knows gpt-4o-mini's price
    assert result.latency_s > 0 and result.first_token_s is not None
    assert result.attempts == 1


def test_missing_key_is_a_clear_message_before_any_call():
    with pytest.raises(E.AuthError) as info:
        stream_chat("openai/gpt-4o-mini", HELLO, max_retries=0)
    assert str(info.value) == "no API key for openai — set OPENAI_API_KEY or choose the local model"


def test_retryable_errors_are_retried_with_backoff_mock_provider():
    sleeps: list[float] = []
    with pytest.raises(E.RateLimited) as info:
        stream_chat(
            "openai/gpt-4o-mini",
            HELLO,
            options={"mock_response": "litellm.RateLimitError"},
            max_retries=2,
            sleep=sleeps.append,
        )
    assert len(sleeps) == 2, "two retries, each after a pause"
    assert sleeps[1] > sleeps[0], "the pause grows (exponential backoff)"
    assert info.value.retryable


def test_a_retry_that_succeeds_returns_the_reply_recorded_transcript():
    transcript = recorded.install([recorded.connection_error(), "second time lucky"])
    sleeps: list[float] = []
    result = stream_chat("recorded/transcript", HELLO, max_retries=3, sleep=sleeps.append)
    assert result.text == "second time lucky"
    assert result.attempts == 2
    assert len(sleeps) == 1
    assert len(transcript.calls) == 2


def test_non_retryable_errors_are_not_retried_mock_provider():
    sleeps: list[float] = []
    with pytest.raises(E.ContextTooLong):
        stream_chat(
            "openai/gpt-4o-mini",
            HELLO,
            options={"mock_response": "litellm.ContextWindowExceededError"},
            sleep=sleeps.append,
        )
    assert sleeps == []


def test_error_mid_stream_keeps_the_partial_text_and_is_not_retried_recorded_transcript():
    transcript = recorded.install(
        [recorded.Broken("Here is a faster vers", recorded.connection_error()), "never used"]
    )
    seen: list[str] = []
    with pytest.raises(E.StreamInterrupted) as info:
        stream_chat(
            "recorded/transcript", HELLO, on_token=seen.append, max_retries=3, sleep=lambda s: None
        )
    assert info.value.partial_text == "Here is a faster vers" == "".join(seen)
    assert "broke off" in str(info.value)
    assert len(transcript.calls) == 1, "a retry would repeat the tokens already shown"


def test_an_exception_from_the_callers_token_callback_passes_through_recorded_transcript():
    recorded.install(["a b c d e f g h i j"])

    class Stop(Exception):
        pass

    def on_token(text: str) -> None:
        raise Stop()

    with pytest.raises(Stop):
        stream_chat("recorded/transcript", HELLO, on_token=on_token)


def test_the_per_call_timeout_stops_a_slow_stream_recorded_transcript():
    recorded.install(["word " * 100], delay_s=0.02)
    with pytest.raises(E.StreamInterrupted) as info:
        stream_chat("recorded/transcript", HELLO, timeout=0.2, max_retries=0)
    assert "no complete answer within 0.2 s" in str(info.value)
    assert info.value.partial_text.startswith("word word")
