"""Render a model's Jinja chat template the way transformers does, for GGUF files."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from app.moe.errors import InvalidRequest


@lru_cache(maxsize=8)
def _compile(template: str):
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )

    def raise_exception(message: str):
        raise InvalidRequest(message)

    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


def render_chat(
    template: str, messages: list[dict[str, str]], *, bos_token: str, eos_token: str
) -> str:
    """The prompt text for ``messages`` with the assistant's turn opened."""
    return _compile(template).render(
        messages=messages, add_generation_prompt=True, bos_token=bos_token, eos_token=eos_token
    )
