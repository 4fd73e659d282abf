"""Errors of the LLM gateway. ``str(exc)`` is a message for the person; ``retryable`` says
whether the same call may succeed later (the client retries those with backoff).

    LLMError                       an LLM call failed
     ├── AuthError                 no or wrong API key, no permission            (not retried)
     ├── BadRequest                unknown model or provider, bad parameters    (not retried)
     │    └── ContextTooLong       the prompt does not fit the model's window   (not retried)
     ├── ContentRefused            the provider's content policy or a guardrail (not retried)
     ├── RateLimited               the provider asks to slow down               (retried)
     ├── ProviderUnavailable       connection failed, 5xx, overloaded           (retried)
     │    └── LLMTimeout           no complete answer within the per-call timeout
     └── StreamInterrupted         the stream broke after tokens had arrived    (not retried:
                                   a retry would repeat the reply; ``partial_text`` keeps it)

``app.llm.exceptions`` maps every litellm exception onto this tree.
"""

from __future__ import annotations


class LLMError(Exception):
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        retryable: bool | None = None,
        original: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.model = model
        self.original = original
        if retryable is not None:
            self.retryable = retryable


class AuthError(LLMError):
    pass


class BadRequest(LLMError):
    pass


class ContextTooLong(BadRequest):
    pass


class ContentRefused(LLMError):
    pass


class RateLimited(LLMError):
    retryable = True


class ProviderUnavailable(LLMError):
    retryable = True


class LLMTimeout(ProviderUnavailable):
    pass


class StreamInterrupted(LLMError):
    retryable = False

    def __init__(self, message: str, *, partial_text: str = "", **kw) -> None:
        super().__init__(message, **kw)
        self.partial_text = partial_text
