"""A scripted OpenAI-compatible model server for tests: it answers ``/v1/chat/completions``
(streamed as server-sent events, or whole) and ``/v1/models`` the way a capable remote model
would, with replies the test wrote, and records every request so the test can check what the
prompt carried. Remote providers cannot be reached from the tests; this is the stand-in.

    with ScriptedOpenAIServer(models=["expert"]) as server:
        server.reply("```python\\ndef f(): ...\\n```", when="make it faster")  # by content
        server.queue("first reply", "second reply")                            # in order
        env = {"OPENAI_API_BASE": server.base_url, "OPENAI_API_KEY": "sk-test"}
        ...  # the app calls model "openai/expert"
        server.requests[-1].last_user  # the prompt of the latest call

A reply is chosen by the first ``reply(..., when=...)`` rule whose text occurs in the last user
message (case-insensitive; a rule with ``times`` is used that many times), else the next queued
reply, else ``default``. ``fail_next(status)`` makes the next call fail with that HTTP status.
Run it on its own with ``python -m tests.support.openai_stub --port 8011 --reply TEXT``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Rule:
    when: str
    text: str
    times: int | None = None  # None: every time


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def last_user(self) -> str:
        users = [m for m in self.messages if m.get("role") == "user"]
        content = users[-1].get("content", "") if users else ""
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content)


@dataclass
class _Script:
    rules: list[Rule] = field(default_factory=list)
    queued: deque[str] = field(default_factory=deque)
    failures: deque[int] = field(default_factory=deque)
    default: str = "I have no further suggestion."


class ScriptedOpenAIServer:
    """The server, on 127.0.0.1 and a free port, in a daemon thread (see the module doc)."""

    def __init__(
        self,
        *,
        models: list[str] | tuple[str, ...] = ("expert",),
        default: str = "I have no further suggestion.",
        chunk_chars: int = 12,
        delay_s: float = 0.0,
        port: int = 0,
    ) -> None:
        self.models = list(models)
        self.chunk_chars = chunk_chars
        self.delay_s = delay_s  # between streamed chunks, to watch streaming in a browser
        self.requests: list[RecordedRequest] = []
        self._script = _Script(default=default)
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- scripting ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """What ``OPENAI_API_BASE`` (or litellm's ``api_base``) should be."""
        return f"http://127.0.0.1:{self.port}/v1"

    def reply(self, text: str, *, when: str, times: int | None = None) -> None:
        with self._lock:
            self._script.rules.append(Rule(when.lower(), text, times))

    def queue(self, *texts: str) -> None:
        with self._lock:
            self._script.queued.extend(texts)

    def fail_next(self, status: int = 500) -> None:
        with self._lock:
            self._script.failures.append(status)

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def _choose(self, request: RecordedRequest) -> str | int:
        last = request.last_user.lower()
        with self._lock:
            if self._script.failures:
                return self._script.failures.popleft()
            for rule in self._script.rules:
                if rule.when in last and (rule.times is None or rule.times > 0):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule.text
            if self._script.queued:
                return self._script.queued.popleft()
            return self._script.default

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> ScriptedOpenAIServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ScriptedOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- HTTP --------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.rstrip("/").endswith("/models"):
                    server.requests.append(RecordedRequest(self.path, {}))
                    self._json(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "tests"}
                        for m in server.models
                    ]})  # fmt: skip
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._json(400, {"error": {"message": "the body is not JSON"}})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                request = RecordedRequest(self.path, body)
                server.requests.append(request)
                choice = server._choose(request)
                if isinstance(choice, int):
                    self._json(choice, {"error": {"message": "scripted failure",
                                                  "type": "server_error"}})  # fmt: skip
                    return
                model = str(body.get("model", "expert"))
                prompt_tokens = sum(len(str(m.get("content", "")).split())
                                    for m in request.messages)  # fmt: skip
                usage = {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(choice.split()),
                    "total_tokens": prompt_tokens + len(choice.split()),
                }
                ident = f"chatcmpl-{uuid.uuid4().hex[:12]}"
                if not body.get("stream"):
                    self._json(200, {
                        "id": ident, "object": "chat.completion", "created": int(time.time()),
                        "model": model,
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": choice}}],
                        "usage": usage,
                    })  # fmt: skip
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()

                def send(payload: dict[str, Any] | str) -> None:
                    data = payload if isinstance(payload, str) else json.dumps(payload)
                    self.wfile.write(f"data: {data}\n\n".encode())
                    self.wfile.flush()

                def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
                    return {"id": ident, "object": "chat.completion.chunk",
                            "created": int(time.time()), "model": model,
                            "choices": [{"index": 0, "delta": delta,
                                         "finish_reason": finish}]}  # fmt: skip

                send(chunk({"role": "assistant", "content": ""}))
                n = max(1, server.chunk_chars)
                for i in range(0, len(choice), n):
                    send(chunk({"content": choice[i : i + n]}))
                    if server.delay_s:
                        time.sleep(server.delay_s)
                send(chunk({}, "stop"))
                if (body.get("stream_options") or {}).get("include_usage"):
                    send({"id": ident, "object": "chat.completion.chunk",
                          "created": int(time.time()), "model": model, "choices": [],
                          "usage": usage})  # fmt: skip
                send("[DONE]")
                self.close_connection = True

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--reply", default="I have no further suggestion.")
    args = parser.parse_args()
    server = ScriptedOpenAIServer(models=args.model or ["expert"], default=args.reply,
                                  port=args.port)  # fmt: skip
    print(f"serving {server.base_url}", flush=True)
    try:
        server._httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
