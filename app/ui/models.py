"""The model box: one place where a person chooses the model (a listed one or any litellm model
string), used by the new-session form and by every mode of a session (chat, ConAIR, summary)."""

from __future__ import annotations

import streamlit as st

from app import services
from app.ui.errors import guard
from app.ui.state import KEEP

STRONGER = (
    "The built-in 135M local model is good for trying the studio and watching routing; for "
    "real optimization choose a stronger model: any litellm provider (set its key), a local "
    "Ollama or llama.cpp server (`OPENAI_API_BASE`), or a GGUF file for the local backend "
    "(`PERFLOOP_MOE_MODEL_PATH`)."
)


def model_options() -> dict[str, str]:
    """Usable model string → label (providers without a key are named in the help text)."""
    choices: dict[str, str] = {}
    with guard("listing the models"):
        for m in services.model_choices():
            if m.usable:
                choices[m.model] = m.label
    if not choices:
        choices[services.get_context().model] = services.get_context().model
    return choices


def _missing_keys() -> str:
    try:
        notes = [f"{m.label}: {m.note}" for m in services.model_choices() if not m.usable]
    except Exception:  # noqa: BLE001 - the list above already reported the error
        return ""
    return ("Not listed: " + "; ".join(notes) + ".") if notes else ""


def model_picker(prefix: str, current: str | None = None, *, columns=None) -> str:  # noqa: ANN001
    """A list of the usable models plus a box for any litellm model string (which wins when
    filled); returns the chosen model string. ``prefix`` names the state (``new``, a session)."""
    models = model_options()
    key, other = f"{KEEP}model:{prefix}", f"{KEEP}model_other:{prefix}"
    current = current or next(iter(models))
    models.setdefault(current, current)
    if st.session_state.get(key) not in models:
        st.session_state[key] = current
    left, right = columns if columns is not None else st.columns(2)
    left.selectbox(
        "Model",
        list(models),
        key=key,
        format_func=lambda m: models.get(m, m),
        help="Used by chat turns, ConAIR and summaries. " + _missing_keys(),
    )
    right.text_input(
        "…or any litellm model string",
        key=other,
        placeholder="e.g. anthropic/claude-sonnet-4-5, ollama/qwen2.5-coder, openai/<served>",
    )
    model = chosen(prefix)
    if model.startswith("perfloop-moe/"):
        st.caption("ℹ️ " + STRONGER)
    return model


def chosen(prefix: str | int) -> str:
    """The model the person chose in the box named ``prefix`` (typed string first)."""
    typed = str(st.session_state.get(f"{KEEP}model_other:{prefix}", "") or "").strip()
    return typed or st.session_state.get(f"{KEEP}model:{prefix}") or services.get_context().model
