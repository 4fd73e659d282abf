"""compose.yaml, run as the processes it describes. There is no compose plugin and no base image
here (Debian's docker-compose 1.29 rejects the file's `name` and inline `configs`), so this runs
each service's own `command` with its own `environment` on this machine, in the order its
`depends_on` gives, on a fresh PostgreSQL database: `migrate` exits 0, `app` serves, `deploy.
replicas` workers start, and a baseline validation started with `python -m app run` (which only
enqueues under the file's `PERFLOOP_JOBS=queue`) is run by one of those workers. The demo-oidc
profile: `oidc`'s command serves the provider that the inline `demo-oidc-auth` settings name,
and `app-signin` serves with those settings as its secrets file (signing in through a browser
is tests/e2e/test_sign_in.py).

What changes from the file, and only that: the database URL (the test's database instead of
the `postgres` service), the data directory, and the ports (free ones instead of 8501 / 8502 /
9400, so the test runs beside anything)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.conftest import ROOT
from tests.support.net import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

COMPOSE = ROOT / "compose.yaml"
VENV_BIN = Path(sys.executable).parent


def _interpolate(value: str) -> str:
    """Compose's `${VAR:-default}` / `${VAR}` with the variables unset (the file's defaults)."""
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: m.group(2) or "", value)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # PyYAML resolves the `<<: *perfloop` merges


def _command(service: dict, ports: dict[str, str]) -> list[str]:
    cmd = [_interpolate(str(part)) for part in service["command"]]
    for old, new in ports.items():
        cmd = [part.replace(old, new) for part in cmd]
    return cmd


def _env(service: dict, url: str, data_dir: Path) -> dict[str, str]:
    env = {**os.environ, **{k: _interpolate(str(v)) for k, v in service["environment"].items()}}
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://")  # the file's driver
    env["DATABASE_URL"] = url
    env["PERFLOOP_DATA_DIR"] = str(data_dir)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"  # the image's executables
    return env


class Processes:
    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        out = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
        self.started.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for _, proc in self.started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _, proc in self.started:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.stop()


def _migrate(migrate: dict, url: str, data: Path) -> None:
    """The `migrate` service: its command, to completion (what the others depend on)."""
    done = subprocess.run(
        _command(migrate, {}),
        cwd=ROOT,
        env=_env(migrate, url, data),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _get(url: str, procs: Processes, name: str, proc: subprocess.Popen, within: float) -> bytes:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{name} exited {proc.returncode}:\n{procs.log(name)}"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read()
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{name}: no answer at {url} in {within:.0f} s:\n{procs.log(name)}")


def test_the_compose_services_run_as_described(compose, postgres_url, processes, tmp_path):
    services = compose["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("app", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    data = tmp_path / "data"
    data.mkdir()
    app_port = str(free_port())

    _migrate(services["migrate"], postgres_url, data)
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()

    app = services["app"]
    assert [_interpolate(p) for p in app["ports"]] == ["8501:8501"]
    app_env = _env(app, postgres_url, data)
    assert app_env["PERFLOOP_JOBS"] == "queue" and app_env["PERFLOOP_SANDBOX_BACKEND"] == "bwrap"
    app_proc = processes.start("app", _command(app, {"8501": app_port}), app_env)

    worker = services["worker"]
    replicas = worker["deploy"]["replicas"]
    assert replicas == 2
    worker_pids = {
        processes.start(f"worker{i}", _command(worker, {}), _env(worker, postgres_url, data)).pid
        for i in range(replicas)
    }

    health = f"http://127.0.0.1:{app_port}/_stcore/health"
    assert _get(health, processes, "app", app_proc, 90) == b"ok"

    (tmp_path / "cc.py").write_text(
        "def count_common(xs, ys):\n    return sum(1 for x in xs if x in ys)\n"
    )
    (tmp_path / "cw.py").write_text(
        "def cases():\n    return [(list(range(200)), list(range(0, 400, 2)))]\n"
    )
    cli = processes.start(
        "run",
        [
            *("python", "-m", "app", "run"),
            *("--code", str(tmp_path / "cc.py"), "--entry", "count_common"),
            *("--workload", str(tmp_path / "cw.py"), "--turns", "0", "--json"),
        ],
        app_env,  # the app's settings: it enqueues, the workers run
    )
    deadline = time.monotonic() + 180
    while cli.poll() is None:  # a worker that died would leave it waiting: fail on that at once
        for name, proc in processes.started:
            if name.startswith("worker"):
                assert proc.poll() is None, f"{name} exited:\n{processes.log(name)}"
        assert time.monotonic() < deadline, "no worker ran the validation:\n" + processes.log("run")
        time.sleep(0.5)
    out = processes.log("run")
    assert cli.returncode == 0, out
    session = json.loads(out.splitlines()[-1])["session_id"]
    listed = subprocess.run(
        ["python", "-m", "app", "jobs", "--session", str(session), "--json"],
        cwd=ROOT,
        env=app_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    jobs = json.loads(listed.stdout)
    assert [(j["kind"], j["state"]) for j in jobs] == [("validation", "done")], jobs
    held_by = int(jobs[0]["worker"].rsplit(":", 1)[1])
    assert held_by in worker_pids, (jobs[0]["worker"], worker_pids)  # not the CLI, not the app


def test_the_demo_oidc_profile_serves_sign_in(compose, postgres_url, processes, tmp_path):
    services = compose["services"]
    oidc, signin = services["oidc"], services["app-signin"]
    assert oidc["profiles"] == signin["profiles"] == ["demo-oidc"]
    provider_port, signin_port = str(free_port()), str(free_port())

    (config,) = signin["configs"]
    content = _interpolate(compose["configs"][config["source"]]["content"])
    auth = tomllib.loads(content)["auth"]
    assert set(auth) == {
        "redirect_uri",
        "cookie_secret",
        "client_id",
        "client_secret",
        "server_metadata_url",
    }  # what st.login needs
    assert auth["redirect_uri"] == "http://localhost:8502/oauth2callback"
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(content.replace("9400", provider_port).replace("8502", signin_port))

    data = tmp_path / "data"
    data.mkdir()
    _migrate(services["migrate"], postgres_url, data)
    provider = processes.start(
        "oidc", _command(oidc, {"9400": provider_port}), {**os.environ, "PATH": str(VENV_BIN)}
    )
    metadata = _get(
        tomllib.loads(secrets.read_text())["auth"]["server_metadata_url"],
        processes,
        "oidc",
        provider,
        60,
    )
    assert json.loads(metadata)["authorization_endpoint"].startswith("http://localhost:")
    cmd = _command(signin, {"8501": signin_port})
    assert f"--secrets.files={config['target']}" in cmd
    cmd = [f"--secrets.files={secrets}" if p.startswith("--secrets.files=") else p for p in cmd]
    app = processes.start("app-signin", cmd, _env(signin, postgres_url, data))
    health = f"http://127.0.0.1:{signin_port}/_stcore/health"
    assert _get(health, processes, "app-signin", app, 90) == b"ok"
