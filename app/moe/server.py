"""OpenAI-compatible HTTP server over one ``MoEEngine`` (``python -m app.moe serve``).

Beside the usual fields, every streamed chunk carries a top-level ``routing`` list for the tokens
of that chunk — ``{"token", "experts": [[ids] per MoE layer], "weights": [[...] per layer]}`` —
and a non-streamed response carries the routing of every generated token. ``/v1/models`` reports
the model's layer, expert and top-k counts and whether the experts are MoEfied. Unlike
OpenAI, ``temperature`` defaults to 0 (greedy): the optimizer wants reproducible replies. A
non-streamed request may set ``"include_prompt_routing": true`` to get the prompt's routing too.

A reply is generated in one dedicated thread that pushes events to the event loop without
waiting for it (a per-token thread hand-off that blocks the generator halves throughput on two
cores). Any ``MoEError`` becomes an OpenAI-style error body in ``_error_response``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.moe.engine import ChatStream, MoEEngine, TokenEvent
from app.moe.errors import InvalidRequest, ModelNotFound, MoEError
from app.moe.registry import DEFAULT_ALIASES, get_engine


def _error_response(status: int, message: str, type_: str, code: str | None) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


def _routing(events: list[TokenEvent]) -> list[dict[str, Any]]:
    # four decimals are plenty for a gate weight and halve the size of every chunk
    return [
        {
            "token": e.token,
            "experts": e.experts,
            "weights": [[round(w, 4) for w in layer] for layer in e.weights],
        }
        for e in events
    ]


def _model_card(engine: MoEEngine, created: int) -> dict[str, Any]:
    info = engine.info
    return {
        "id": info.name,
        "object": "model",
        "created": created,
        "owned_by": "perfloop",
        "moe": {k: v for k, v in asdict(info).items() if k not in {"name", "path"}},
    }


def _parse_request(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    if body.get("n", 1) != 1:
        raise InvalidRequest("only n=1 is supported")
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise InvalidRequest("'stop' must be a string or a list of strings")
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or 512
    temperature = body.get("temperature")
    seed = body.get("seed")
    try:
        return {
            "max_tokens": int(max_tokens),
            "temperature": 0.0 if temperature is None else float(temperature),
            "stop": stop,
            "seed": None if seed is None else int(seed),
        }
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"bad sampling parameter: {exc}") from exc


def create_app(engine: MoEEngine | None = None, *, model: str = "default") -> FastAPI:
    """The server app for ``engine`` (or the process engine of ``model``, loaded at start)."""
    created = int(time.time())
    state: dict[str, MoEEngine] = {}

    def current() -> MoEEngine:
        if "engine" not in state:
            state["engine"] = engine or get_engine(model)
        return state["engine"]

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await run_in_threadpool(current)  # load the model before accepting requests
        yield

    app = FastAPI(title="perfloop MoE backend", docs_url=None, redoc_url=None, lifespan=lifespan)

    def check_model(name: Any) -> MoEEngine:
        eng = current()
        names = {eng.info.name, f"perfloop-moe/{eng.info.name}", model}
        if eng.info.name == "default":
            names |= DEFAULT_ALIASES
        if name is not None and name not in names:
            raise ModelNotFound(
                f"The model '{name}' does not exist; this server has '{eng.info.name}'"
            )
        return eng

    @app.exception_handler(MoEError)
    async def moe_error(_request: Request, exc: MoEError) -> JSONResponse:
        return _error_response(exc.status, str(exc), exc.type, exc.code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return _error_response(exc.status_code, str(exc.detail), type_, None)

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        eng = await run_in_threadpool(current)
        return {"object": "list", "data": [_model_card(eng, created)]}

    @app.get("/v1/models/{name:path}")
    async def get_model(name: str) -> dict[str, Any]:
        return _model_card(check_model(name), created)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"could not parse the JSON body: {exc}") from exc
        options = _parse_request(body)
        eng = check_model(body.get("model"))
        stream = eng.chat_stream(body.get("messages"), **options)  # validates before streaming
        reply_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        model_name = body.get("model") or eng.info.name
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _sse(stream, reply_id, model_name, include_usage),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        events = await run_in_threadpool(list, stream)
        summary = stream.summary
        assert summary is not None
        response = {
            "id": reply_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": summary.text},
                    "finish_reason": summary.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": summary.prompt_tokens,
                "completion_tokens": summary.completion_tokens,
                "total_tokens": summary.prompt_tokens + summary.completion_tokens,
            },
            "routing": _routing(events),
        }
        if body.get("include_prompt_routing"):
            response["prompt_routing"] = [
                {"token": t, "experts": e, "weights": w}
                for t, e, w in zip(
                    summary.prompt_token_texts,
                    summary.prompt_experts.tolist(),
                    summary.prompt_weights.tolist(),
                    strict=True,
                )
            ]
        return response

    return app


async def _sse(
    stream: ChatStream, reply_id: str, model: str, include_usage: bool
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    cancelled = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for event in stream:
                loop.call_soon_threadsafe(queue.put_nowait, event)
                if cancelled.is_set():
                    stream.close()
                    break
            loop.call_soon_threadsafe(queue.put_nowait, done)
        except BaseException as exc:  # noqa: BLE001 - reported to the client below
            loop.call_soon_threadsafe(queue.put_nowait, exc)

    def chunk(delta: dict, routing: list, finish: str | None = None) -> str:
        body = {
            "id": reply_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            "routing": routing,
        }
        return f"data: {json.dumps(body)}\n\n"

    thread = threading.Thread(target=produce, name="moe-generate", daemon=True)
    thread.start()
    try:
        yield chunk({"role": "assistant", "content": ""}, [])
        finished = False
        while not finished:
            items = [await queue.get()]
            while not queue.empty():
                items.append(queue.get_nowait())
            events = [i for i in items if isinstance(i, TokenEvent)]
            if events:
                yield chunk({"content": "".join(e.token for e in events)}, _routing(events))
            for item in items:
                if isinstance(item, BaseException):
                    error = item if isinstance(item, MoEError) else MoEError(str(item))
                    body = {
                        "error": {"message": str(error), "type": error.type, "code": error.code}
                    }
                    yield f"data: {json.dumps(body)}\n\n"
                    finished = True
                elif item is done:
                    summary = stream.summary
                    assert summary is not None
                    yield chunk({}, [], summary.finish_reason)
                    if include_usage:
                        usage = {
                            "prompt_tokens": summary.prompt_tokens,
                            "completion_tokens": summary.completion_tokens,
                            "total_tokens": summary.prompt_tokens + summary.completion_tokens,
                        }
                        body = {
                            "id": reply_id,
                            "object": "chat.completion.chunk",
                            "created": int(time.time()),
                            "model": model,
                            "choices": [],
                            "usage": usage,
                        }
                        yield f"data: {json.dumps(body)}\n\n"
                    finished = True
        yield "data: [DONE]\n\n"
    finally:
        cancelled.set()
