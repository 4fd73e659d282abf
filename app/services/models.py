"""Which models the person can choose, and whether each is usable here (key present, local)."""

from __future__ import annotations

from dataclasses import dataclass

from app.services.context import Context


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
    raise NotImplementedError
