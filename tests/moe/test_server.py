"""The OpenAI-compatible server: in-process with Starlette's TestClient, and once as a real
``python -m app.moe serve`` process driven by the official ``openai`` client."""

import json
import os
import subprocess
import sys
import time

import pytest
from fastapi.testclient import TestClient

from app.moe.server import create_app
from tests.moe.conftest import USER
from tests.support.net import free_port

pytestmark = [pytest.mark.slow, pytest.mark.model]


@pytest.fixture(scope="module")
def client(default_engine):
    with TestClient(create_app(default_engine)) as c:
        yield c


def _error(response, status: int, code: str | None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"]
    assert error["code"] == code
    return error


def test_models_carry_moe_metadata(client):
    data = client.get("/v1/models").json()
    assert data["object"] == "list"
    (card,) = data["data"]
    assert card["id"] == "default" and card["object"] == "model"
    moe = card["moe"]
    assert (moe["layer_count"], moe["expert_count"], moe["top_k"]) == (30, 8, 2)
    assert moe["moefied"] is True and "MoEfied" in moe["description"]
    assert client.get("/v1/models/default").json()["id"] == "default"
    _error(client.get("/v1/models/gpt-9"), 404, "model_not_found")


def test_completion_without_stream(client, default_engine):
    r = client.post(
        "/v1/chat/completions",
        json={
            "model": "default",
            "messages": USER,
            "max_tokens": 8,
            "include_prompt_routing": True,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 8 == len(body["routing"])
    assert "".join(t["token"] for t in body["routing"]) == choice["message"]["content"]
    for token in body["routing"]:
        assert len(token["experts"]) == len(token["weights"]) == 30
        assert all(len(layer) == 2 for layer in token["experts"])
    assert len(body["prompt_routing"]) == body["usage"]["prompt_tokens"]
    # the server answers what the engine answers
    assert choice["message"]["content"] == default_engine.chat(USER, max_tokens=8)[1].text


def _sse_events(response) -> list:
    lines = [ln for ln in response.iter_lines() if ln]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(ln.removeprefix("data: ")) for ln in lines[:-1]]


def test_streamed_chunks_carry_routing(client, default_engine):
    body = {
        "model": "perfloop-moe/default",
        "messages": USER,
        "max_tokens": 10,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        chunks = _sse_events(r)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    content_chunks = [
        c for c in chunks if c.get("choices") and c["choices"][0]["delta"].get("content")
    ]
    routing = [t for c in content_chunks for t in c["routing"]]
    assert len(routing) == 10
    for c in content_chunks:  # a chunk's routing covers exactly that chunk's text
        assert "".join(t["token"] for t in c["routing"]) == c["choices"][0]["delta"]["content"]
    assert all(len(t["experts"]) == 30 for t in routing)
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 10 and chunks[-1]["choices"] == []
    text = "".join(c["choices"][0]["delta"]["content"] for c in content_chunks)
    assert text == default_engine.chat(USER, max_tokens=10)[1].text


def test_errors_are_openai_shaped(client):
    url = "/v1/chat/completions"
    _error(client.post(url, json={"model": "gpt-9", "messages": USER}), 404, "model_not_found")
    r = client.post(url, content=b"{not json", headers={"content-type": "application/json"})
    _error(r, 400, "invalid_request")
    _error(client.post(url, json={"model": "default"}), 400, "invalid_request")
    _error(client.post(url, json={"messages": USER, "n": 3}), 400, "invalid_request")
    long = [{"role": "user", "content": "word " * 9000}]
    for stream in (False, True):
        r = client.post(url, json={"messages": long, "stream": stream})
        _error(r, 400, "context_length_exceeded")
    _error(client.get("/v1/nothing"), 404, None)


def _perfloop_through_the_server(url: str, engine, monkeypatch) -> None:  # noqa: ANN001
    """``PERFLOOP_MOE_URL``: perfloop's own client runs ``perfloop-moe/default`` on the server;
    the tokens and their routing arrive while they stream, as from the in-process engine."""
    from app.config import get_settings
    from app.llm.client import stream_chat

    messages = [{"role": "user", "content": "Write a Python function that adds two numbers."}]
    here_tokens, here_routing = [], []
    here = stream_chat(
        "perfloop-moe/default",
        messages,
        max_tokens=8,
        on_token=here_tokens.append,
        on_routing=here_routing.append,
    )
    monkeypatch.setenv("PERFLOOP_MOE_URL", url)
    get_settings.cache_clear()
    try:
        assert get_settings().moe_url == url
        tokens, routing = [], []
        there = stream_chat(
            "perfloop-moe/default",
            messages,
            max_tokens=8,
            on_token=tokens.append,
            on_routing=routing.append,
        )
    finally:
        monkeypatch.delenv("PERFLOOP_MOE_URL")
        get_settings.cache_clear()
    assert there.text == here.text and "".join(tokens) == here.text  # greedy: the same reply
    assert [e.experts for e in routing] == [e.experts for e in here_routing]
    assert len(routing) == there.completion_tokens == 8
    assert there.routing_info is not None and there.routing_info.moefied
    assert there.routing_info.expert_count == engine.info.expert_count


def test_cli_server_with_the_openai_client(default_engine, moe_data_dir, monkeypatch):
    import openai

    port = free_port()
    # the same data dir as the session's engine: the server finds the cached partition
    env = {**os.environ, "PERFLOOP_DATA_DIR": str(moe_data_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.moe", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none")
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                models = client.models.list()
                break
            except openai.APIConnectionError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        assert [m.id for m in models.data] == ["default"]
        stream = client.chat.completions.create(
            model="default", messages=USER, max_tokens=6, stream=True
        )
        with stream:
            chunks = list(stream)
        routed = [t for c in chunks for t in (c.model_extra or {}).get("routing", [])]
        assert len(routed) == 6 and len(routed[0]["experts"]) == 30
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="nope", messages=USER)
        _perfloop_through_the_server(f"http://127.0.0.1:{port}", default_engine, monkeypatch)
        partitions = list((moe_data_dir / "moe").glob("*.npz"))
        assert partitions == [default_engine.partition_path]
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
