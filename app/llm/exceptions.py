"""The error table: for every exception litellm defines, whether to retry and what to tell the
person (after aider's ``exceptions.py``). A test fails when litellm grows an exception that is
missing here, so a new failure mode is decided on, not discovered in production."""

from __future__ import annotations

from dataclasses import dataclass

from app.llm import errors as E


@dataclass(frozen=True)
class ExInfo:
    kind: type[E.LLMError]
    retry: bool
    description: str | None  # None: use the provider's own message


LOCAL_HINT = "or choose the local model"

# Keyed by class name in ``litellm.exceptions``; subclasses are listed before their bases
# because ``translate`` walks the exception's MRO and takes the first hit.
EXCEPTIONS: dict[str, ExInfo] = {
    "CallerCredentialAuthenticationError": ExInfo(E.AuthError, False, None),
    "AuthenticationError": ExInfo(E.AuthError, False, None),
    "PermissionDeniedError": ExInfo(
        E.AuthError, False, "the API key has no permission for this model"
    ),
    "PaymentRequiredError": ExInfo(
        E.AuthError, False, "the provider account needs payment or credit"
    ),
    "BudgetExceededError": ExInfo(E.AuthError, False, "the configured LLM budget is spent"),
    "NotFoundError": ExInfo(E.BadRequest, False, "the provider does not know this model"),
    "LiteLLMUnknownProvider": ExInfo(
        E.BadRequest, False, "unknown provider in the model name (use provider/model)"
    ),
    "ModelNotMappedError": ExInfo(E.BadRequest, False, "litellm does not know this model"),
    "ContextWindowExceededError": ExInfo(
        E.ContextTooLong, False, "the conversation is longer than the model's context window"
    ),
    "ContentPolicyViolationError": ExInfo(
        E.ContentRefused, False, "the provider refused the request (content policy)"
    ),
    "RejectedRequestError": ExInfo(E.ContentRefused, False, "the provider rejected the request"),
    "GuardrailRaisedException": ExInfo(E.ContentRefused, False, "a guardrail blocked the call"),
    "BlockedPiiEntityError": ExInfo(
        E.ContentRefused, False, "a guardrail blocked personal data in the prompt"
    ),
    "SensitiveDataRouteException": ExInfo(
        E.ContentRefused, False, "sensitive data may not be sent to this model"
    ),
    "ModifyResponseException": ExInfo(E.ContentRefused, False, "a guardrail changed the reply"),
    "UnsupportedParamsError": ExInfo(
        E.BadRequest, False, "the model does not accept one of the parameters"
    ),
    "UnsupportedEndpointError": ExInfo(E.BadRequest, False, "the provider lacks this endpoint"),
    "EndpointNotSupportedByModelError": ExInfo(
        E.BadRequest, False, "this model does not support chat completions"
    ),
    "MalformedRequestFieldError": ExInfo(E.BadRequest, False, None),
    "ImageFetchError": ExInfo(E.BadRequest, False, "an image in the prompt could not be fetched"),
    "VectorStoreSearchError": ExInfo(E.BadRequest, False, None),
    "UnprocessableEntityError": ExInfo(E.BadRequest, False, None),
    "InvalidRequestError": ExInfo(E.BadRequest, False, None),
    "BadRequestError": ExInfo(E.BadRequest, False, None),
    "JSONSchemaValidationError": ExInfo(
        E.BadRequest, False, "the reply did not match the requested JSON schema"
    ),
    "APIResponseValidationError": ExInfo(
        E.ProviderUnavailable, True, "the provider sent a malformed reply"
    ),
    "CallerCredentialRateLimitError": ExInfo(E.RateLimited, True, None),
    "RateLimitError": ExInfo(E.RateLimited, True, "the provider's rate limit was hit"),
    "Timeout": ExInfo(E.LLMTimeout, True, "the provider did not answer in time"),
    "MidStreamFallbackError": ExInfo(E.ProviderUnavailable, True, "the stream broke"),
    "ServiceUnavailableError": ExInfo(
        E.ProviderUnavailable, True, "the provider is unavailable or overloaded"
    ),
    "BadGatewayError": ExInfo(E.ProviderUnavailable, True, "the provider's gateway failed"),
    "InternalServerError": ExInfo(E.ProviderUnavailable, True, "the provider had an error"),
    "APIConnectionError": ExInfo(
        E.ProviderUnavailable, True, "cannot reach the provider (network or server down)"
    ),
    "MockException": ExInfo(E.ProviderUnavailable, True, None),
    "APIError": ExInfo(E.ProviderUnavailable, True, None),
    "OpenAIError": ExInfo(E.ProviderUnavailable, True, None),
}

#: Conventional key variables per provider, for the "no API key" message.
KEY_VARIABLES = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "vertex_ai": "GOOGLE_APPLICATION_CREDENTIALS",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "cohere": "COHERE_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "azure": "AZURE_API_KEY",
    "xai": "XAI_API_KEY",
}


def provider_of(model: str) -> str:
    """The provider litellm would route ``model`` to ("openai" for a bare gpt-4o)."""
    if "/" in model:
        return model.split("/", 1)[0]
    if model.startswith(("claude",)):
        return "anthropic"
    if model.startswith(("gemini",)):
        return "gemini"
    return "openai"


def _first_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def info_for(exc: BaseException) -> ExInfo | None:
    for cls in type(exc).__mro__:
        info = EXCEPTIONS.get(cls.__name__)
        if info is not None and cls.__module__.split(".")[0] in ("litellm", "openai"):
            return info
    return None


_CONNECT_ERRORS = ("APIConnectionError", "ConnectError", "ConnectTimeout", "ConnectionError")


def unreachable_address(exc: BaseException) -> str | None:
    """The server address (scheme://host:port) a connection to which failed, when ``exc`` or
    one of its causes is a connection error. litellm reports a refused connection to an
    OpenAI-compatible server as ``InternalServerError`` ("Connection error."), with the
    default address on its own request; the underlying openai/httpx error holds the real one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    found = False
    address = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        names = {c.__name__ for c in type(current).__mro__}
        if "Timeout" in names or "APITimeoutError" in names:
            return None  # a server that answers too slowly was reached: the table says so
        if names & set(_CONNECT_ERRORS):
            found = True
            try:
                url = current.request.url  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - httpx raises when no request is attached
                url = None
            if url is not None and address is None:
                port = f":{url.port}" if getattr(url, "port", None) else ""
                address = f"{url.scheme}://{url.host}{port}"
        current = current.__cause__ or current.__context__
    if not found:
        return None
    return address or "the provider's server"


def translate(exc: BaseException, model: str) -> E.LLMError:
    """The ``LLMError`` (with a message for the person) for any exception of a litellm call."""
    if isinstance(exc, E.LLMError):
        return exc
    address = unreachable_address(exc)
    if address is not None:
        return E.ProviderUnavailable(
            f"{model}: could not reach the model server at {address} (is it running, and is "
            "the address right?). Nothing was lost; retrying is safe once it answers.",
            model=model,
            retryable=True,
            original=exc,
        )
    info = info_for(exc)
    provider = provider_of(model)
    if info is None:
        return E.LLMError(
            f"{model}: unexpected error ({type(exc).__name__}: {_first_line(exc)})",
            model=model,
            original=exc,
        )
    if info.kind is E.AuthError and type(exc).__name__.endswith("AuthenticationError"):
        var = KEY_VARIABLES.get(provider, f"{provider.upper()}_API_KEY")
        message = f"no API key for {provider} — set {var} {LOCAL_HINT}"
        if "invalid" in str(exc).lower() or "incorrect" in str(exc).lower():
            message = f"the API key for {provider} was refused — check {var} {LOCAL_HINT}"
        return E.AuthError(message, model=model, retryable=False, original=exc)
    detail = info.description or _first_line(getattr(exc, "message", None) or exc)
    message = f"{model}: {detail}"
    if info.kind in (E.AuthError, E.BadRequest) and not model.startswith("perfloop-moe/"):
        message += f" ({LOCAL_HINT})"
    return info.kind(message, model=model, retryable=info.retry, original=exc)
