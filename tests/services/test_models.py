"""The model lists (issue 9 item 6): current models of keyed providers come from litellm's own
registry, and a local OpenAI-compatible server's /v1/models (here the scripted test server,
standing in for Ollama or llama.cpp) appear as choices."""

from __future__ import annotations

from datetime import date

from app import services
from app.config import Settings
from app.services import models
from tests.support.openai_stub import ScriptedOpenAIServer


def _ctx(engine, **settings):  # noqa: ANN001, ANN202
    return services.Context.from_settings(
        Settings(_env_file=None, database_url=str(engine.url), **settings), engine=engine
    )


def test_models_of_a_keyed_provider_come_from_the_litellm_registry(sqlite_engine) -> None:  # noqa: ANN001
    from app.llm.client import litellm_module

    litellm = litellm_module()
    without = services.model_choices(ctx=_ctx(sqlite_engine, ollama_api_base="http://127.0.0.1:9"))
    assert not any(c.model.startswith("anthropic/") and c.usable for c in without)
    keyed = services.model_choices(
        ctx=_ctx(sqlite_engine, anthropic_api_key="sk-fake", ollama_api_base="http://127.0.0.1:9")
    )
    listed = [c.model for c in keyed if c.model.startswith("anthropic/") and c.usable]
    assert listed and listed == models.registry_models("anthropic")
    registry = set(litellm.models_by_provider["anthropic"])
    for m in listed:
        bare = m.split("/", 1)[1]
        assert bare in registry or m in registry
        info = litellm.model_cost.get(bare) or litellm.model_cost[m]
        assert info["mode"] == "chat"
        dep = info.get("deprecation_date")
        assert dep is None or date.fromisoformat(dep[:10]) > date.today()
        assert not models._SNAPSHOT.search(bare)  # aliases, not dated snapshots


def test_a_local_servers_models_are_listed_with_scripted_openai_server(sqlite_engine) -> None:  # noqa: ANN001
    with ScriptedOpenAIServer(models=["qwen2.5-coder:7b", "expert"]) as server:
        ctx = _ctx(sqlite_engine, openai_api_base=server.base_url, ollama_api_base=server.base_url)
        choices = {c.model: c for c in services.model_choices(ctx=ctx)}
    assert "openai/expert" in choices and choices["openai/expert"].usable
    assert "ollama/qwen2.5-coder:7b" in choices
    assert server.base_url in choices["openai/expert"].label


def test_an_unreachable_local_server_lists_nothing_quickly() -> None:
    import time

    started = time.monotonic()
    assert models.server_models("http://10.255.255.1:11434", timeout_s=0.3) == []
    assert time.monotonic() - started < 2
