"""The app as `make run` starts it (migrations, then `streamlit run app/main.py`), on a free
port and a temporary SQLite database, and a headless Debian chromium driven by Playwright."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.net import free_port

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


def scripted_model_env(base_url: str, log_name: str) -> dict[str, str]:
    """``app_env`` of an app whose default model is the scripted OpenAI-compatible server
    (tests/support/openai_stub.py) at ``base_url``; its log goes to ``log_name``."""
    return {
        "OPENAI_API_BASE": base_url,
        "OPENAI_API_KEY": "sk-scripted-test-server",
        "PERFLOOP_DEFAULT_MODEL": "openai/expert",
        "E2E_LOG_NAME": log_name,
    }


def selectbox_shows(box) -> str:  # noqa: ANN001
    """What a Streamlit select box (a locator) shows as chosen: its text and its inputs' values."""
    inputs = box.locator("input")
    shown = [inputs.nth(i).input_value() for i in range(inputs.count())]
    return " ".join([box.inner_text(), *shown])


@pytest.fixture(scope="module")
def app_env() -> dict[str, str]:
    """Extra environment of the app under test; a test module overrides this fixture (e.g. to
    point ``OPENAI_API_BASE`` at a scripted model server)."""
    return {}


@pytest.fixture(scope="module")
def app_args() -> list[str]:
    """Extra ``streamlit run`` options of the app under test; a test module overrides this
    fixture (e.g. ``["--secrets.files", PATH]`` for a sign-in configuration)."""
    return []


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, app_env, app_args) -> Iterator[str]:  # noqa: ANN001
    """Base URL of a running app; its log is saved to test-artifacts/ on the way out."""
    tmp = tmp_path_factory.mktemp("e2e")
    port = free_port()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / 'perfloop.db'}",
        # the data dir keeps the local model's cache; the repo's data/ is where `make run` has it
        PERFLOOP_DATA_DIR=env.get("PERFLOOP_DATA_DIR", str(ROOT / "data")),
        STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
        PYTHONUNBUFFERED="1",
    )
    env.update(app_env)
    log_name = env.pop("E2E_LOG_NAME", "e2e-server.log")
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "alembic"), "upgrade", "head"], cwd=ROOT, env=env, check=True, timeout=120
    )
    ARTIFACTS.mkdir(exist_ok=True)
    log = (ARTIFACTS / log_name).open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
         "--server.headless", "true", "--server.fileWatcherType", "none", *app_args],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the app did not start (see {ARTIFACTS / log_name})")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):  # noqa: ANN001, ANN201
    report = yield
    if report.when == "call" and report.failed:
        # a test module with several browser contexts lists their pages in ``browser_pages``
        funcargs = getattr(item, "funcargs", {})
        pages = dict(funcargs.get("browser_pages") or {})
        if "browser_page" in funcargs:
            pages[""] = funcargs["browser_page"]
        for who, page in pages.items():
            suffix = f"-{who}" if who else ""
            page.screenshot(path=str(ARTIFACTS / f"FAILED-{item.name}{suffix}.png"), full_page=True)
    return report


@pytest.fixture(scope="module")
def browser_page(app_url):  # noqa: ANN001, ANN201
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 2200})
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()
