"""A restart in the browser: the app process is SIGKILLed while a chat turn of the real local
model streams; a new app process on the same database shows the turn ``interrupted`` with a
"Run again" button, and running it again completes. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.e2e.test_core_flow import shot, wait_idle
from tests.support.net import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.model]

STALE_S = 10  # a loaded machine running the model in-process may delay heartbeats


def _start(db: Path, name: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"sqlite:///{db}",
        PERFLOOP_DATA_DIR=env.get("PERFLOOP_DATA_DIR", str(ROOT / "data")),
        PERFLOOP_JOB_STALE_S=str(STALE_S),
        STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
        PYTHONUNBUFFERED="1",
    )
    log = (ARTIFACTS / f"e2e-{name}.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
         "--server.headless", "true", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return server, url
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the app did not start (see {ARTIFACTS / f'e2e-{name}.log'})")
        time.sleep(0.5)


def _stop(server: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if server.poll() is None:
        os.killpg(server.pid, sig)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


def _jobs(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, kind, state, tokens FROM job ORDER BY id").fetchall()


@pytest.mark.timeout(1800)  # two app starts, a baseline and two local-model turns
def test_a_turn_survives_the_app_being_killed_and_restarted(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    db = tmp_path / "perfloop.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}"}
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "alembic"), "upgrade", "head"], cwd=ROOT, env=env, check=True, timeout=120
    )
    ARTIFACTS.mkdir(exist_ok=True)
    first, url = _start(db, "restart-first")
    procs = [first]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1440, "height": 2200}).new_page()
            page.set_default_timeout(60_000)
            try:
                _flow(page, db, procs, url)
            except BaseException:
                page.screenshot(path=str(ARTIFACTS / "FAILED-restart.png"), full_page=True)
                print("jobs:", _jobs(db))
                raise
            finally:
                browser.close()
    finally:
        for proc in procs:
            _stop(proc, signal.SIGKILL)


def _flow(page, db: Path, procs: list[subprocess.Popen], url: str) -> None:  # noqa: ANN001
    """Create a session, start a turn, kill the app mid-turn, restart it, run the turn again
    (the second app process is appended to ``procs``)."""
    page.goto(url)
    page.get_by_role("button", name="Create session and run the baseline").click()
    page.get_by_text("iteration 0 is on the chart").wait_for(timeout=240_000)
    box = page.get_by_placeholder(re.compile("Ask the optimizer"))
    box.fill("Make sum_of_squares faster. Answer with the whole function.")
    box.press("Enter")
    page.get_by_role("button", name="Stop").wait_for(timeout=300_000)  # the turn runs
    deadline = time.monotonic() + 600  # the local model on a loaded 2-core machine
    while not any(k == "turn" and t > 0 for _, k, _, t in _jobs(db)):
        assert time.monotonic() < deadline, "the turn streamed nothing"
        time.sleep(0.2)
    _stop(procs[0], signal.SIGKILL)  # the app process, mid-turn
    shot(page, "restart-01-killed-mid-turn")

    second, url = _start(db, "restart-second")
    procs.append(second)
    time.sleep(STALE_S + 1)
    page.goto(f"{url}/?session=1")  # Optimize is the default page
    page.get_by_text(re.compile("Interrupted: the process running this job")).wait_for()
    turn = next(j for j in _jobs(db) if j[1] == "turn")
    assert turn[2] == "interrupted" and turn[3] > 0
    assert not [j for j in _jobs(db) if j[2] in ("queued", "running")]
    with sqlite3.connect(db) as conn:
        kept = conn.execute("SELECT content FROM message WHERE role = 'assistant'").fetchall()
    # killed while writing: the partial reply (as a failed reply); after: the whole reply
    assert kept and kept[0][0], "the reply streamed so far is kept in the transcript"
    wait_idle(page)
    shot(page, "restart-02-interrupted")

    page.get_by_role("button", name="Run again").click()
    page.get_by_role("button", name="Stop").wait_for(timeout=120_000)  # it runs again
    # it ended: the panel's caption names the new turn's job as done
    page.get_by_text(re.compile(r"turn · job \d+ · done")).wait_for(timeout=900_000)
    errors = page.locator("[data-testid='stAlertContentError']").all_inner_texts()
    assert not errors, errors
    wait_idle(page)
    shot(page, "restart-03-ran-again")
    again = [j for j in _jobs(db) if j[1] == "turn"][-1]
    assert again[0] != turn[0] and again[2] == "done"
