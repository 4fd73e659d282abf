"""AppTest fixtures: the app runs against a fresh migrated SQLite database through the services'
default ``Context``; remote LLM calls are answered by litellm's ``mock_response``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

MAIN = str(ROOT / "app" / "main.py")
#: A remote model string; with ``mock_response`` litellm answers without a network or a key.
MOCK_MODEL = "openai/gpt-4o-mini"
MOCK_REPLY = (
    "Use the built-in sum over a generator, which avoids the explicit loop:\n\n"
    "```python\ndef sum_of_squares(numbers):\n    return sum(x * x for x in numbers)\n```\n"
)


@pytest.fixture
def ui_context(sqlite_engine, monkeypatch) -> Iterator:  # noqa: ANN001
    """The services' default context on a fresh SQLite database, the process sandbox allowed
    where bwrap cannot run, remote LLM calls mocked."""
    from app import services
    from app.config import Settings

    settings = Settings(database_url=str(sqlite_engine.url), default_model=MOCK_MODEL)
    ctx = services.Context.from_settings(
        settings,
        engine=sqlite_engine,
        model=MOCK_MODEL,
        llm_options={"mock_response": MOCK_REPLY},
    )
    services.set_default_context(ctx)
    try:
        yield ctx
    finally:
        services.set_default_context(None)
        ctx.close()


@pytest.fixture
def app_at(ui_context) -> Callable[[str], AppTest]:  # noqa: ANN001
    """Open a page from the entry point: ``at = app_at("optimize")``."""

    def open_page(page: str, **query: str) -> AppTest:
        at = AppTest.from_file(MAIN, default_timeout=60)
        at.query_params.update(query)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        at.switch_page(str(ROOT / "pages" / f"{page}.py"))
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_page


def wait_for_jobs(timeout: float = 240.0) -> list:
    """Block until every background job has finished; their final snapshots."""
    from app import services

    jobs = services.list_jobs()
    for job in jobs:
        assert job.wait(timeout), f"job {job.id} ({job.kind}) still running after {timeout} s"
    return [j.snapshot() for j in jobs]


def chart(at: AppTest, key: str) -> dict:
    """The Plotly figure (as JSON) of the ``st.plotly_chart`` whose key ends with ``key``."""
    import json

    for element in at.get("plotly_chart"):
        if element.proto.id.endswith(f"-{key}"):
            return json.loads(element.proto.spec)
    raise AssertionError(f"no chart with key {key!r}")


def texts(at: AppTest) -> str:
    """Every markdown, caption, html and alert text of the page, joined (for `in` checks)."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.proto.body for e in at.get("html")]
    for kind in (at.error, at.warning, at.info, at.success):
        parts += [e.value for e in kind]
    return "\n".join(parts)
