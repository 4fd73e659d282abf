"""The local MoE backend (``app.moe``) as a litellm custom provider, so the optimizer calls it
like any other model: ``perfloop-moe/<name>``. Tokens stream through litellm; each token's
routing goes to the sink the client put in ``metadata`` while the token is generated."""

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


class MoEProvider(CustomLLM):  # type: ignore[misc,valid-type]
    """``litellm.CustomLLM`` over ``app.moe.get_engine(name).chat_stream``."""

    def streaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Iterator[dict]:
        import litellm

        from app.moe.errors import MoEError

        params: dict[str, Any] = dict(kwargs.get("optional_params") or {})
        litellm_params = kwargs.get("litellm_params") or {}
        sink = (litellm_params.get("metadata") or {}).get("perfloop_routing")
        timeout = kwargs.get("timeout")
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
