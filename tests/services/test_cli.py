"""The headless CLI, in-process (so the recorded transcript stands in for a remote provider)
and once as a real subprocess for the export command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app import services
from app.__main__ import main
from tests.llm import recorded
from tests.services.conftest import BASELINE, FASTER, TESTS, WORKLOAD, WRONG, reply_with


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, text in {"code": BASELINE, "workload": WORKLOAD, "tests": TESTS}.items():
        paths[name] = tmp_path / f"{name}.py"
        paths[name].write_text(text)
    return paths


@pytest.fixture
def default_ctx(ctx):
    services.set_default_context(ctx)
    yield ctx
    services.set_default_context(None)


@pytest.mark.slow
def test_run_prints_one_json_object_recorded_transcript(default_ctx, files, capsys):
    recorded.install([reply_with(WRONG), reply_with(FASTER)])
    code = main(
        [
            "run",
            "--code",
            str(files["code"]),
            "--entry",
            "count_common",
            "--workload",
            str(files["workload"]),
            "--tests",
            str(files["tests"]),
            "--model",
            "recorded/transcript",
            "--turns",
            "2",
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)  # exactly one JSON object on stdout
    assert data["candidates_tried"] == 2 and data["candidates_correct"] == 1
    assert data["candidates_faster"] == 1 and data["best_speedup"] > 2
    low, high = data["best_ci95"]
    assert 1 < low <= data["best_speedup"] <= high
    assert data["tokens"] > 0 and data["llm_calls"] == 2 and data["turns"] == 2
    view = services.get_session(data["session_id"], ctx=default_ctx)
    assert view.best.id == data["best_candidate_id"]
    # The second turn asked to improve the best version so far: still the baseline then.
    assert view.candidates[2].parent_id == view.baseline.id
    # its work was recorded as jobs, like the app's, and `jobs --json` lists them
    assert main(["jobs", "--session", str(data["session_id"]), "--json"]) == 0
    jobs = json.loads(capsys.readouterr().out)
    assert [(j["kind"], j["state"], j["error"]) for j in jobs] == [
        ("validation", "done", None),
        ("turn", "done", None),
        ("turn", "done", None),
    ]
    assert all(j["session_id"] == data["session_id"] for j in jobs)


def test_run_with_a_missing_entry_point_exits_2_with_the_message(default_ctx, files, capsys):
    code = main(
        [
            "run",
            "--code",
            str(files["code"]),
            "--entry",
            "nope",
            "--workload",
            str(files["workload"]),
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 2
    data = json.loads(captured.out)
    assert data["error"].startswith("The entry point `nope` is not defined")
    assert "is stored" in captured.err
    assert services.get_session(data["session_id"], ctx=default_ctx).info.entry_point == "nope"


def test_export_writes_markdown_html_and_json(default_ctx, tmp_path, capsys):
    view = services.create_session(
        baseline_source=BASELINE,
        entry_point="count_common",
        workload_source=WORKLOAD,
        validate=False,
        ctx=default_ctx,
    )
    sid = str(view.info.id)
    assert main(["export", sid, "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("# Optimise count_common")
    assert main(["export", sid, "--format", "json", "-o", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["format"] == "perfloop-session"
    assert main(["export", "999", "--format", "md"]) == 1
    assert "session 999 does not exist" in capsys.readouterr().err


def test_export_as_a_real_command(sqlite_url, sqlite_engine, tmp_path):
    from db import queries
    from db.engine import unit_of_work

    with unit_of_work(sqlite_engine) as s:
        sid = queries.create_session(
            session=s,
            title="cli",
            baseline_source=BASELINE,
            entry_point="count_common",
            workload_source=WORKLOAD,
        ).id
    env = {"DATABASE_URL": sqlite_url, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "app", "export", str(sid), "--format", "html"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout
    assert out.startswith("<!DOCTYPE html>") and "<h1>cli</h1>" in out


def test_a_database_without_tables_gets_a_clear_message(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "app", "export", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "no such table" in proc.stderr and "make migrate" in proc.stderr
