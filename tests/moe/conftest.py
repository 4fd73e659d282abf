"""Fixtures of the MoE backend tests: the real default model (SmolLM2 through llama.cpp,
MoEfied) and a tiny Qwen3-MoE built at test time as an HF directory and a GGUF file.

Engines are session-scoped: loading them is the slow part, and one generation at a time is
what they guarantee anyway.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.moe.registry import default_model_path


@pytest.fixture(scope="session")
def moe_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory for the session; engines cache under its ``moe`` folder, as they do
    under ``settings.data_dir``."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def moe_cache_dir(moe_data_dir: Path) -> Path:
    return moe_data_dir / "moe"


@pytest.fixture(scope="session")
def default_engine(moe_cache_dir: Path):
    from app.moe.llama_engine import LlamaCppEngine

    engine = LlamaCppEngine(default_model_path(), name="default", cache_dir=moe_cache_dir)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def tiny_moe(tmp_path_factory: pytest.TempPathFactory):
    from app.moe.tiny import build_tiny_moe

    return build_tiny_moe(tmp_path_factory.mktemp("tiny-moe"))


@pytest.fixture(scope="session")
def tiny_llama(tiny_moe):
    from app.moe.llama_engine import LlamaCppEngine

    engine = LlamaCppEngine(tiny_moe.gguf_path, reference_precision=True)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def tiny_hf(tiny_moe):
    from app.moe.hf_engine import TransformersEngine

    engine = TransformersEngine(tiny_moe.hf_dir)
    yield engine
    engine.close()


USER = [{"role": "user", "content": "Why is my recursive fibonacci slow?"}]
