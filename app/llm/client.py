"""Calling a model: streaming, usage, cost, latency, a per-call timeout and retries with
backoff for retryable errors. litellm is imported here, lazily, on the first call."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from app.llm import errors as E
from app.llm.exceptions import KEY_VARIABLES, provider_of, translate
from app.llm.types import ChatResult, RoutingEvent, RoutingInfo

LOCAL_PREFIX = "perfloop-moe/"
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0

_litellm: Any = None
_import_lock = threading.Lock()
_providers: dict[str, Any] = {}

Messages = Sequence[dict[str, Any]]


def litellm_module() -> Any:
    """Import and configure litellm once (~2 s), registering perfloop's custom providers."""
    global _litellm
    with _import_lock:
        if _litellm is None:
            # Offline by default: without this litellm fetches its price list from GitHub at
            # import and waits for the network to fail. Set before import, read at import.
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            import litellm

            litellm.suppress_debug_info = True
            litellm.telemetry = False
            _litellm = litellm
            from app.llm.moe_provider import MoEProvider

            _providers.setdefault(LOCAL_PREFIX.rstrip("/"), MoEProvider())
            _sync_providers()
        return _litellm


def _sync_providers() -> None:
    _litellm.custom_provider_map = [
        {"provider": name, "custom_handler": handler} for name, handler in _providers.items()
    ]
    from litellm.utils import custom_llm_setup

    custom_llm_setup()


def register_provider(name: str, handler: Any) -> None:
    """Route model strings ``name/...`` to ``handler`` (a ``litellm.CustomLLM``)."""
    litellm_module()
    with _import_lock:
        _providers[name] = handler
        _sync_providers()


def is_local(model: str) -> bool:
    return model.startswith(LOCAL_PREFIX)


class _RoutingSink:
    """Handed to the MoE provider through litellm's ``metadata``: it receives each token's
    routing as it is generated and forwards it to the caller's callback."""

    def __init__(self, callback: Callable[[RoutingEvent], None] | None) -> None:
        self.callback = callback
        self.events: list[RoutingEvent] = []
        self.info: RoutingInfo | None = None
        self.error: BaseException | None = None

    def set_info(self, info: RoutingInfo) -> None:
        self.info = info

    def event(self, event: RoutingEvent) -> None:
        self.events.append(event)
        if self.callback is not None:
            try:
                self.callback(event)
            except BaseException as exc:
                # litellm wraps whatever its provider raises; keep the caller's own exception
                # (e.g. a cancel) so stream_chat can re-raise it unchanged.
                self.error = exc
                raise

    def reset(self) -> None:
        self.events = []
        self.error: BaseException | None = None


def _check_key(model: str, options: dict[str, Any]) -> None:
    """Fail fast, and clearly, when a remote provider has no key (litellm's own errors for a
    missing key differ per provider: 401, 500, connection error)."""
    if is_local(model) or "mock_response" in options:
        return
    if options.get("api_key") or options.get("api_base") or options.get("base_url"):
        return  # an explicit key, or a self-hosted OpenAI-compatible server
    if provider_of(model) in _providers:
        return
    try:
        env = _litellm.validate_environment(model)
    except Exception:  # noqa: BLE001 - unknown models are reported by the call itself
        return
    missing = [k for k in env.get("missing_keys", []) if k.endswith(("_API_KEY", "_TOKEN"))]
    if missing and not env.get("keys_in_environment"):
        provider = provider_of(model)
        var = KEY_VARIABLES.get(provider, missing[-1])
        raise E.AuthError(
            f"no API key for {provider} — set {var} or choose the local model", model=model
        )


def _cost(model: str, usage: Any, prompt_tokens: int, completion_tokens: int) -> float | None:
    if is_local(model):
        return 0.0
    known = getattr(usage, "cost", None) if usage is not None else None
    if known is not None:
        return float(known)
    try:
        p, c = _litellm.cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
        return float(p + c)
    except Exception:  # noqa: BLE001 - unknown price: report None, not zero
        return None


def stream_chat(
    model: str,
    messages: Messages,
    *,
    on_token: Callable[[str], None] | None = None,
    on_routing: Callable[[RoutingEvent], None] | None = None,
    temperature: float | None = 0.0,
    max_tokens: int | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    seed: int | None = None,
    stop: list[str] | None = None,
    options: dict[str, Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ChatResult:
    """Stream one chat completion from any litellm model; ``on_token`` gets each text delta,
    ``on_routing`` each token's experts (local MoE models only).

    Retries retryable errors (rate limit, connection, 5xx, timeout) with exponential backoff,
    but only while no token has been delivered: afterwards a failure raises
    ``StreamInterrupted`` with the partial text, since a retry would repeat the reply.
    Raises an ``app.llm.errors.LLMError`` whose message is meant for the person.
    """
    from app.config import get_settings

    settings = get_settings()
    timeout = settings.llm_timeout_s if timeout is None else timeout
    max_retries = settings.llm_max_retries if max_retries is None else max_retries
    litellm = litellm_module()
    options = dict(options or {})
    _check_key(model, options)
    sink = _RoutingSink(on_routing)
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": [dict(m) for m in messages],
        "stream": True,
        "stream_options": {"include_usage": True},
        "timeout": timeout,
        "num_retries": 0,  # ours, below: litellm's would retry after tokens were shown
        "metadata": {"perfloop_routing": sink},
    }
    if temperature is not None:
        kwargs["temperature"] = temperature
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    if seed is not None:
        kwargs["seed"] = seed
    if stop:
        kwargs["stop"] = stop
    kwargs.update(options)

    attempt = 0
    while True:
        attempt += 1
        started = time.monotonic()
        deadline = started + timeout
        pieces: list[str] = []
        first_token_s: float | None = None
        usage = None
        finish_reason = None
        sink.reset()
        try:
            stream = litellm.completion(**kwargs)
            try:
                for chunk in stream:
                    if getattr(chunk, "usage", None) is not None:
                        usage = chunk.usage
                    for choice in chunk.choices or []:
                        delta = getattr(choice.delta, "content", None) if choice.delta else None
                        if choice.finish_reason:
                            finish_reason = choice.finish_reason
                        if delta:
                            if first_token_s is None:
                                first_token_s = time.monotonic() - started
                            pieces.append(delta)
                            if on_token is not None:
                                try:
                                    on_token(delta)
                                except BaseException as exc:
                                    raise _CallerAbort() from exc
                    if time.monotonic() > deadline:
                        raise E.LLMTimeout(
                            f"{model}: no complete answer within {timeout:g} s "
                            "(raise PERFLOOP_LLM_TIMEOUT_S or choose a faster model)",
                            model=model,
                        )
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    try:
                        close()
                    except Exception:  # noqa: BLE001, S110 - closing a broken stream
                        pass
        except _CallerAbort as abort:
            raise abort.__cause__ from None  # the caller's own exception, unchanged
        except Exception as exc:
            if sink.error is not None:
                raise sink.error from None
            # litellm wraps an error inside a stream; the cause is what the person needs.
            cause = getattr(exc, "original_exception", None)
            err = translate(cause if isinstance(cause, Exception) else exc, model)
            if pieces:
                detail = err.message.removeprefix(f"{model}: ")
                raise E.StreamInterrupted(
                    f"{model}: the reply broke off after {sum(map(len, pieces))} characters — "
                    f"{detail}",
                    partial_text="".join(pieces),
                    model=model,
                    original=exc,
                ) from exc
            if err.retryable and attempt <= max_retries:
                sleep(_backoff(attempt))
                continue
            raise err from exc
        break

    text = "".join(pieces)
    prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
    if usage is None:
        prompt_tokens = _count(model, kwargs["messages"])
        completion_tokens = _count(model, [{"role": "assistant", "content": text}])
    return ChatResult(
        text=text,
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=_cost(model, usage, prompt_tokens, completion_tokens),
        latency_s=time.monotonic() - started,
        first_token_s=first_token_s,
        finish_reason=finish_reason,
        routing=list(sink.events),
        routing_info=sink.info,
        attempts=attempt,
    )


class _CallerAbort(Exception):
    """Carries an exception raised by the caller's ``on_token`` past the error translation."""


def _backoff(attempt: int) -> float:
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)


def _count(model: str, messages: Messages) -> int:
    try:
        from app.llm.context import count_tokens

        return count_tokens(model, messages)
    except Exception:  # noqa: BLE001 - a count is a best effort when the provider gave none
        return 0


def complete(model: str, messages: Messages, **kwargs: Any) -> ChatResult:
    """``stream_chat`` without callbacks (the reply is still streamed, so timeouts hold)."""
    return stream_chat(model, messages, **kwargs)
