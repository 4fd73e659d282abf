"""The error table: every litellm exception is decided on, and users get a clear message."""

from __future__ import annotations

import inspect

import pytest

from app.llm import errors as E
from app.llm import litellm_module
from app.llm.exceptions import EXCEPTIONS, translate


def litellm_exceptions() -> dict[str, type]:
    litellm = litellm_module()
    return {
        name: obj
        for name, obj in vars(litellm.exceptions).items()
        if inspect.isclass(obj) and issubclass(obj, BaseException)
    }


def test_every_litellm_exception_is_in_the_table():
    missing = sorted(set(litellm_exceptions()) - set(EXCEPTIONS))
    assert not missing, f"litellm has exceptions the error table lacks: {missing}"


def test_the_table_names_only_real_litellm_exceptions():
    stale = sorted(set(EXCEPTIONS) - set(litellm_exceptions()))
    assert not stale, f"the error table lists exceptions litellm no longer has: {stale}"


@pytest.mark.parametrize(
    ("name", "kind", "retry"),
    [
        ("RateLimitError", E.RateLimited, True),
        ("APIConnectionError", E.ProviderUnavailable, True),
        ("Timeout", E.LLMTimeout, True),
        ("ServiceUnavailableError", E.ProviderUnavailable, True),
        ("ContextWindowExceededError", E.ContextTooLong, False),
        ("ContentPolicyViolationError", E.ContentRefused, False),
        ("NotFoundError", E.BadRequest, False),
        ("BadRequestError", E.BadRequest, False),
        ("PermissionDeniedError", E.AuthError, False),
    ],
)
def test_translation_decides_retry_and_kind(name: str, kind: type, retry: bool):
    litellm = litellm_module()
    cls = getattr(litellm, name)
    exc = _make(cls)
    err = translate(exc, "openai/gpt-4o-mini")
    assert isinstance(err, kind)
    assert err.retryable is retry
    assert err.original is exc
    assert "openai/gpt-4o-mini" in str(err)


def test_authentication_error_says_which_key_to_set():
    litellm = litellm_module()
    exc = litellm.AuthenticationError(
        message="Missing key", llm_provider="anthropic", model="claude-3-5-sonnet"
    )
    err = translate(exc, "anthropic/claude-3-5-sonnet")
    assert isinstance(err, E.AuthError)
    assert str(err) == (
        "no API key for anthropic — set ANTHROPIC_API_KEY or choose the local model"
    )


def test_unknown_exception_is_reported_not_retried():
    err = translate(KeyError("boom"), "openai/gpt-4o")
    assert type(err) is E.LLMError
    assert err.retryable is False
    assert "KeyError" in str(err)


def _make(cls: type) -> BaseException:
    """An instance of a litellm exception class (their constructors differ)."""
    import httpx

    response = httpx.Response(403, request=httpx.Request("POST", "https://example.invalid"))
    for kwargs in (
        {"message": "m", "llm_provider": "openai", "model": "gpt-4o-mini"},
        {"message": "m", "model": "gpt-4o-mini", "llm_provider": "openai", "response": response},
    ):
        try:
            return cls(**kwargs)
        except (TypeError, AttributeError):
            continue
    raise AssertionError(f"cannot build {cls}")


def test_unreachable_server_names_the_address_and_says_retrying_is_safe() -> None:
    """litellm reports a refused connection to an OpenAI-compatible server as an
    InternalServerError ("Connection error."); the message must say which address failed."""
    import socket

    from app.llm import client
    from app.llm import errors as E

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(E.ProviderUnavailable) as info:
        client.stream_chat(
            "openai/expert",
            [{"role": "user", "content": "hi"}],
            max_retries=0,
            options={"api_base": f"http://127.0.0.1:{port}/v1", "api_key": "sk-test"},
        )
    text = str(info.value)
    assert f"http://127.0.0.1:{port}" in text and "retrying is safe" in text, text
    assert info.value.retryable
