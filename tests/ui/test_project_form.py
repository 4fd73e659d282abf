"""The Optimize page on real code (AppTest): pick "Project directory", name a method target and
a project test by node id, create the session; the baseline card says how much of the target
the tests execute; a chat turn (remote model answered by litellm's mock_response) gives a
candidate whose card offers its patch."""

from __future__ import annotations

import pytest

from app import services
from tests.services.conftest import reply_with
from tests.services.projectkit import FASTER_METHOD, WORKLOAD, write_project
from tests.ui.conftest import texts, wait_for_jobs

pytestmark = pytest.mark.slow


def test_a_project_method_session_from_the_page_mock_provider(app_at, ui_context, tmp_path):
    project = write_project(tmp_path / "proj")
    ui_context.llm_options["mock_response"] = reply_with(FASTER_METHOD, "Exit early.")
    at = app_at("optimize")
    at.sidebar.toggle(key="keep:plain_editor").set_value(True).run()
    at.radio(key="keep:proj:source").set_value("project").run()
    at.text_input(key="keep:proj:dir").input(str(project)).run()
    # The project's test files are offered for picking.
    assert at.multiselect(key="keep:proj:files").options == ["tests/test_stats.py"]
    at.text_input(key="keep:proj:target").input("statkit.stats:Stat.extrema")
    at.text_area(key="keep:proj:tests").input("tests/test_stats.py::test_extrema_one_band")
    at.text_area(key="keep:proj:workload").input(WORKLOAD)
    at.button(key="proj:create").click().run()
    assert not at.exception, [e.value for e in at.exception]
    wait_for_jobs()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    [row] = services.list_sessions()[0]
    view = services.get_session(row.id)
    assert view.ready and view.info.target == "statkit.stats:Stat.extrema"
    assert "Coverage: the tests execute 11 of 12 lines of `Stat.extrema`" in texts(at)

    at.chat_input(key=f"chat:{row.id}").set_value("Exit early").run()
    wait_for_jobs()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    cand = services.get_session(row.id).candidates[-1]
    assert cand.origin == "llm" and cand.evaluation.correct
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download patch" in labels, labels


def test_a_bad_target_shows_one_clear_message_and_keeps_the_inputs(app_at, tmp_path):
    project = write_project(tmp_path / "proj")
    at = app_at("optimize")
    at.sidebar.toggle(key="keep:plain_editor").set_value(True).run()
    at.radio(key="keep:proj:source").set_value("project").run()
    at.text_input(key="keep:proj:dir").input(str(project))
    at.text_input(key="keep:proj:target").input("statkit.stats:Stat")
    at.text_area(key="keep:proj:workload").input(WORKLOAD)
    at.button(key="proj:create").click().run()
    assert not at.exception
    assert any("is a class; name one of its methods" in e.value for e in at.error)
    assert at.text_area(key="keep:proj:workload").value == WORKLOAD
    assert services.list_sessions()[1] == 0


def test_the_pillow_example_loads_into_the_form_and_runs(app_at, ui_context, tmp_path):
    ui_context.settings = ui_context.settings.model_copy(update={"data_dir": tmp_path / "data"})
    at = app_at("optimize")
    at.sidebar.toggle(key="keep:plain_editor").set_value(True).run()
    at.button(key="proj:example").click().run(timeout=300)
    assert not at.exception, [e.value for e in at.exception]
    env = tmp_path / "data" / "envs" / "pillow-10.1.0"
    assert at.radio(key="keep:proj:source").value == "installed"
    assert at.text_input(key="keep:proj:target").value == "PIL.ImageStat:Stat._getextrema"
    assert at.text_input(key="keep:proj:env").value == str(env)
    assert "ImageStat.Stat(img)" in at.text_area(key="keep:proj:workload").value
    at.button(key="proj:create").click().run()
    wait_for_jobs()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    [row] = services.list_sessions()[0]
    view = services.get_session(row.id)
    assert view.ready, view.validation_error
    assert view.info.environment == str(env) and view.info.source_kind == "installed"
    assert "n = min(n, i)" in view.info.baseline_source  # Pillow 10.1.0's original loop
