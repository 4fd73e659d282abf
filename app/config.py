"""The one typed settings object. Nothing else in perfloop reads environment variables.

Values come from, in order: explicit arguments, environment variables (prefix ``PERFLOOP_``,
plus the conventional ``DATABASE_URL``), a ``.env`` file in the working directory, defaults.
The defaults are the embedded, offline set-up: SQLite under ``data/``, the bubblewrap sandbox,
the local model, no API keys.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SandboxBackend = Literal["bwrap", "docker", "process"]
JobsMode = Literal["embedded", "queue"]

#: The model string of the local MoE backend's default model (see app/moe).
LOCAL_DEFAULT_MODEL = "perfloop-moe/default"


class SandboxLimits(BaseSettings):
    """Resource limits for one sandboxed evaluation (env: ``PERFLOOP_SANDBOX_LIMITS__WALL_S``…)."""

    wall_s: float = 120.0
    cpu_s: float = 120.0
    memory_bytes: int = 2 * 1024**3
    max_processes: int = 64
    max_output_bytes: int = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PERFLOOP_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Field(default=Path("data"), description="Models, caches, the SQLite file.")
    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("DATABASE_URL", "PERFLOOP_DATABASE_URL"),
        description="SQLAlchemy URL; empty means the SQLite file under data_dir.",
    )
    default_model: str = Field(
        default=LOCAL_DEFAULT_MODEL, description="litellm model string used when none is chosen."
    )
    moe_url: str | None = Field(
        default=None,
        description="The MoE server (`python -m app.moe serve`) that runs perfloop-moe/... "
        "models; unset: they run in this process.",
    )
    moe_model_path: str = Field(
        default="default",
        description="GGUF file or HF checkpoint dir for the local backend; 'default' = SmolLM2.",
    )
    llm_timeout_s: float = Field(default=600.0, description="Per LLM call timeout.")
    llm_max_retries: int = Field(default=3, description="Retries for retryable LLM errors.")
    sandbox_backend: SandboxBackend = Field(default="bwrap")
    sandbox_allow_process: bool = Field(
        default=False,
        description="Allow the unisolated 'process' sandbox backend (development only).",
    )
    sandbox_docker_url: str = Field(
        default="unix:///var/run/docker.sock",
        description="Docker engine the 'docker' sandbox backend talks to.",
    )
    sandbox_limits: SandboxLimits = Field(default_factory=SandboxLimits)
    sandbox_timing_budget_s: float | None = Field(
        default=None,
        gt=0,
        description="Timing budget of one evaluation (seconds); unset: the sandbox's default "
        "(5.3 s with a spare core, 9 s on one). Longer: narrower intervals when nothing settles.",
    )
    eval_workers: int = Field(default=2, description="Concurrent sandbox evaluations.")
    jobs: JobsMode = Field(
        default="embedded",
        description="Who runs background jobs: 'embedded' (a pool in the app process) or "
        "'queue' (procrastinate workers, `python -m app worker`; PostgreSQL only).",
    )
    job_stale_s: float = Field(
        default=30.0,
        description="A running job whose heartbeat is older than this is marked interrupted.",
    )
    job_workers: int = Field(
        default=4, description="Jobs one process (app or worker) runs at once."
    )
    author: str = Field(
        default="anonymous",
        description="Who you are in the single-user local mode (no sign-in configured).",
    )
    public_readers: bool = Field(
        default=False,
        description="With sign-in: anonymous visitors may read sessions marked 'public'.",
    )
    new_user_role: Literal["editor", "viewer"] = Field(
        default="editor",
        description="The role of a person signing in for the first time (the very first "
        "person becomes admin).",
    )
    test_postgres_url: str = Field(
        default="postgresql+psycopg://perfloop:perfloop@127.0.0.1:5432/postgres",
        description="Admin URL of the PostgreSQL server the test suite creates databases on.",
    )
    openai_api_base: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_API_BASE", "PERFLOOP_OPENAI_API_BASE"),
        description="An OpenAI-compatible server (vLLM, llama.cpp, …); its models are listed.",
    )
    ollama_api_base: str = Field(
        default="http://localhost:11434",
        description="Where a local Ollama server is looked for; its models are listed.",
    )
    # API keys are read by litellm from the provider's own variables; we only report presence.
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY")
    )
    anthropic_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY")
    )
    gemini_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GEMINI_API_KEY")
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'perfloop.db'}"

    def provider_keys_present(self) -> dict[str, bool]:
        """Which remote providers have a key configured (never the key itself)."""
        return {
            "openai": self.openai_api_key is not None,
            "anthropic": self.anthropic_api_key is not None,
            "gemini": self.gemini_api_key is not None,
        }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
