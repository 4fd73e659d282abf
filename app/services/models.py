"""Which models the person can choose, and whether each is usable here (key present, local)."""

from __future__ import annotations

from dataclasses import dataclass

from app.services.context import Context, get_context

#: Remote models offered by name (any other litellm model string may be typed in).
REMOTE_MODELS = (
    ("openai/gpt-4o-mini", "OpenAI GPT-4o mini", "openai", "OPENAI_API_KEY"),
    ("openai/gpt-4o", "OpenAI GPT-4o", "openai", "OPENAI_API_KEY"),
    (
        "anthropic/claude-3-5-sonnet-latest",
        "Anthropic Claude 3.5 Sonnet",
        "anthropic",
        "ANTHROPIC_API_KEY",
    ),
    ("gemini/gemini-1.5-pro", "Google Gemini 1.5 Pro", "gemini", "GEMINI_API_KEY"),
)


@dataclass(frozen=True)
class ModelChoice:
    model: str  # the litellm model string
    label: str
    local: bool
    usable: bool  # a key is configured (remote) or the model is local
    note: str  # e.g. "set OPENAI_API_KEY to use it"


def model_choices(*, ctx: Context | None = None) -> list[ModelChoice]:
    """The local default first, then common remote models with whether a key is configured.
    Any other litellm model string can be typed in as well."""
    c = get_context(ctx)
    keys = c.settings.provider_keys_present()
    local = (
        c.settings.default_model
        if c.settings.default_model.startswith("perfloop-moe/")
        else ("perfloop-moe/default")
    )
    out = [
        ModelChoice(
            model=local,
            label="Local model (offline, with expert routing)",
            local=True,
            usable=True,
            note="runs on this machine; no key needed",
        )
    ]
    if c.settings.default_model != local:
        out.insert(
            0,
            ModelChoice(
                model=c.settings.default_model,
                label=f"Configured default ({c.settings.default_model})",
                local=False,
                usable=True,
                note="from PERFLOOP_DEFAULT_MODEL",
            ),
        )
    for model, label, provider, var in REMOTE_MODELS:
        ok = keys.get(provider, False)
        out.append(
            ModelChoice(
                model=model,
                label=label,
                local=False,
                usable=ok,
                note="key configured" if ok else f"set {var} to use it",
            )
        )
    return out
