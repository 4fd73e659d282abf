"""The local MoE backend (``app.moe``) as a litellm custom provider, so the optimizer calls it
like any other model: ``perfloop-moe/<name>``. Tokens stream through litellm; each token's
routing goes to the sink the client put in ``metadata`` while the token is generated.

The model runs in this process, or — with ``PERFLOOP_MOE_URL`` — on the MoE server
(``python -m app.moe serve``, e.g. on a GPU box), whose streamed chunks carry the routing of
their tokens (``routing``) and whose ``/v1/models`` describes the experts (``moe``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from app.llm.types import RoutingEvent, RoutingInfo

DEFAULT_MAX_TOKENS = 512

try:  # the provider is only imported by app.llm.client, after litellm
    from litellm import CustomLLM
except ImportError:  # pragma: no cover - litellm is a hard requirement of app.llm
    CustomLLM = object  # type: ignore[assignment,misc]


def _tolist(value: Any) -> list:
    return value.tolist() if hasattr(value, "tolist") else [list(v) for v in value]


def _chunk(text: str, *, finished: bool = False, reason: str | None = None, usage=None) -> dict:
    return {
        "text": text,
        "is_finished": finished,
        "finish_reason": reason,
        "usage": usage,
        "index": 0,
        "tool_use": None,
    }


def _engine(model: str) -> Any:
    import litellm

    from app.moe import get_engine
    from app.moe.errors import EngineUnavailable, ModelNotFound

    name = model.split("/", 1)[1] if "/" in model else model
    try:
        return get_engine(name)
    except ModelNotFound as exc:
        raise litellm.NotFoundError(str(exc), model=model, llm_provider="perfloop-moe") from exc
    except EngineUnavailable as exc:
        raise litellm.BadRequestError(
            f"the local model could not be loaded: {exc}", model=model, llm_provider="perfloop-moe"
        ) from exc


def _map_error(exc: Exception, model: str) -> Exception:
    import litellm

    from app.moe.errors import ContextTooLong, InvalidRequest, MoEError

    if isinstance(exc, ContextTooLong):
        return litellm.ContextWindowExceededError(
            str(exc), model=model, llm_provider="perfloop-moe"
        )
    if isinstance(exc, InvalidRequest):
        return litellm.BadRequestError(str(exc), model=model, llm_provider="perfloop-moe")
    if isinstance(exc, MoEError):
        return litellm.InternalServerError(str(exc), model=model, llm_provider="perfloop-moe")
    return exc


def _server_error(status: int, body: bytes, model: str) -> Exception:
    import json

    import litellm

    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = body.decode(errors="replace")[:300]
    text = f"the MoE server answered {status}: {message}"
    kind = {404: litellm.NotFoundError, 400: litellm.BadRequestError}.get(status)
    if kind is not None:
        return kind(text, model=model, llm_provider="perfloop-moe")
    return litellm.InternalServerError(text, model=model, llm_provider="perfloop-moe")


def _remote(
    url: str, model: str, chat: list, params: dict, sink: Any, timeout: Any
) -> Iterator[dict]:
    """Stream from the MoE server at ``url``: its text and the routing of every token."""
    import json

    import httpx
    import litellm

    name = model.split("/", 1)[1] if "/" in model else model
    base = url.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    limit = float(timeout) if isinstance(timeout, int | float) else 600.0
    body = {
        "model": name,
        "messages": chat,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": int(params.get("max_tokens") or DEFAULT_MAX_TOKENS),
        "temperature": float(params.get("temperature") or 0.0),
    }
    for key in ("stop", "seed"):
        if params.get(key) is not None:
            body[key] = params[key]
    try:
        with httpx.Client(timeout=httpx.Timeout(limit, connect=10.0)) as client:
            if sink is not None:
                models = client.get(f"{base}/models")
                if models.status_code != 200:
                    raise _server_error(models.status_code, models.content, model)
                cards = models.json().get("data") or []
                card = next((m for m in cards if m.get("id") == name), cards[0] if cards else {})
                moe = card.get("moe") or {}
                sink.set_info(
                    RoutingInfo(
                        model=str(card.get("id", name)),
                        layer_count=int(moe.get("layer_count", 0)),
                        expert_count=int(moe.get("expert_count", 0)),
                        top_k=int(moe.get("top_k", 0)),
                        moefied=bool(moe.get("moefied", False)),
                        description=str(moe.get("description", "")),
                    )
                )
            count, usage, reason = 0, None, "stop"
            with client.stream("POST", f"{base}/chat/completions", json=body) as reply:
                if reply.status_code != 200:
                    raise _server_error(reply.status_code, reply.read(), model)
                for line in reply.iter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    data = json.loads(line[6:])
                    if "error" in data:
                        raise litellm.InternalServerError(
                            f"the MoE server failed: {data['error'].get('message')}",
                            model=model,
                            llm_provider="perfloop-moe",
                        )
                    usage = data.get("usage") or usage
                    for event in data.get("routing") or []:
                        if sink is not None:
                            sink.event(
                                RoutingEvent(
                                    index=count,
                                    token=event["token"],
                                    token_id=event.get("token_id"),
                                    experts=event["experts"],
                                    weights=event["weights"],
                                )
                            )
                        count += 1
                    for choice in data.get("choices") or []:
                        reason = choice.get("finish_reason") or reason
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            yield _chunk(text)
    except httpx.TimeoutException as exc:
        raise litellm.Timeout(
            f"the MoE server at {url} did not answer within {limit:g} s",
            model=model,
            llm_provider="perfloop-moe",
        ) from exc
    except httpx.HTTPError as exc:
        raise litellm.APIConnectionError(
            f"cannot reach the MoE server at {url} (PERFLOOP_MOE_URL): {exc}",
            model=model,
            llm_provider="perfloop-moe",
        ) from exc
    yield _chunk("", finished=True, reason=reason, usage=usage)


class MoEProvider(CustomLLM):  # type: ignore[misc,valid-type]
    """``litellm.CustomLLM`` over ``app.moe.get_engine(name).chat_stream``, or over the MoE
    server at ``PERFLOOP_MOE_URL``."""

    def streaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Iterator[dict]:
        import litellm

        from app.config import get_settings
        from app.moe.errors import MoEError

        params: dict[str, Any] = dict(kwargs.get("optional_params") or {})
        litellm_params = kwargs.get("litellm_params") or {}
        sink = (litellm_params.get("metadata") or {}).get("perfloop_routing")
        timeout = kwargs.get("timeout")
        url = get_settings().moe_url
        if url:
            chat = [{"role": m["role"], "content": m.get("content") or ""} for m in messages]
            yield from _remote(url, model, chat, params, sink, timeout)
            return
        deadline = time.monotonic() + float(timeout) if isinstance(timeout, int | float) else None
        engine = _engine(model)
        info = engine.info
        if sink is not None:
            sink.set_info(
                RoutingInfo(
                    model=str(getattr(info, "name", model)),
                    layer_count=int(info.layer_count),
                    expert_count=int(info.expert_count),
                    top_k=int(info.top_k),
                    moefied=bool(info.moefied),
                    description=str(getattr(info, "description", "")),
                )
            )
        max_tokens = int(params.get("max_tokens") or DEFAULT_MAX_TOKENS)
        chat = [{"role": m["role"], "content": m.get("content") or ""} for m in messages]
        count = 0
        try:
            stream = engine.chat_stream(
                chat,
                max_tokens=max_tokens,
                temperature=float(params.get("temperature") or 0.0),
                stop=params.get("stop"),
                seed=params.get("seed"),
            )
            for event in stream:
                if sink is not None:
                    sink.event(
                        RoutingEvent(
                            index=count,
                            token=event.token,
                            token_id=getattr(event, "token_id", None),
                            experts=_tolist(event.experts),
                            weights=_tolist(event.weights),
                        )
                    )
                count += 1
                yield _chunk(event.token)
                if deadline is not None and time.monotonic() > deadline:
                    raise litellm.Timeout(
                        f"the local model did not finish within {timeout} s",
                        model=model,
                        llm_provider="perfloop-moe",
                    )
        except MoEError as exc:
            raise _map_error(exc, model) from exc
        summary = getattr(stream, "summary", None)
        if summary is not None:
            prompt_tokens, completion_tokens = summary.prompt_tokens, summary.completion_tokens
            reason = summary.finish_reason
        else:
            prompt_tokens = sum(engine.count_tokens(m["content"]) + 4 for m in chat)
            completion_tokens = count
            reason = "length" if count >= max_tokens else "stop"
        yield _chunk(
            "",
            finished=True,
            reason=reason,
            usage={
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        )

    def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
        import litellm

        text = "".join(c["text"] for c in self.streaming(model, messages, *args, **kwargs))
        return litellm.completion(
            model="perfloop-moe/collected", messages=messages, mock_response=text
        )
