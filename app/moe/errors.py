"""The exceptions of the local MoE backend; the server and app/ui turn them into messages.

    MoEError                      anything the MoE backend raises on purpose (status 500)
     ├── ModelNotFound            no such model name or file (404)
     ├── InvalidRequest           malformed messages or parameters (400)
     │    └── ContextTooLong      prompt (plus room for one token) exceeds the context (400)
     ├── EngineUnavailable        the engine library is missing or the model failed to load (503)
     └── TraceDecodeError         a stored routing trace does not match its declared shape (500)

Each class carries the HTTP ``status`` and the OpenAI-style error ``code`` the server answers
with, so there is one place (``app.moe.server``) that turns any of them into a response.
"""

from __future__ import annotations


class MoEError(Exception):
    """Base class of every error the MoE backend raises on purpose."""

    status: int = 500
    code: str = "internal_error"
    type: str = "server_error"


class ModelNotFound(MoEError):
    status = 404
    code = "model_not_found"
    type = "invalid_request_error"


class InvalidRequest(MoEError):
    status = 400
    code = "invalid_request"
    type = "invalid_request_error"


class ContextTooLong(InvalidRequest):
    code = "context_length_exceeded"

    def __init__(self, prompt_tokens: int, context_length: int) -> None:
        super().__init__(
            f"This model's maximum context length is {context_length} tokens; the prompt has "
            f"{prompt_tokens} tokens, which leaves no room for a reply."
        )
        self.prompt_tokens = prompt_tokens
        self.context_length = context_length


class EngineUnavailable(MoEError):
    status = 503
    code = "engine_unavailable"


class TraceDecodeError(MoEError):
    code = "trace_decode_error"
