"""The model chosen on the page is the one every mode uses (issue 9 item 6), and the new-session
form takes any litellm model string; remote calls answered by litellm's mock_response."""

from __future__ import annotations

import pytest

from app import services
from tests.ui.conftest import wait_for_jobs

pytestmark = pytest.mark.slow

TYPED = "openai/gpt-typed-by-the-person"


def test_summary_uses_the_model_typed_on_the_page_mock_provider(seeded, seeded_at) -> None:  # noqa: ANN001
    sid = seeded.session_id
    at = seeded_at("optimize", session=str(sid))
    at.text_input(key=f"keep:model_other:{sid}").input(TYPED).run()
    at.segmented_control(key=f"keep:mode:{sid}").set_value("summary").run()
    assert not at.exception, [e.value for e in at.exception]
    next(b for b in at.button if b.label == "Summarize").click().run()
    wait_for_jobs()
    at.run()
    replies = [m for m in services.get_session(sid).messages if m.role == "assistant"]
    assert replies[-1].model == TYPED, [(m.kind, m.model) for m in replies]


def test_new_session_form_takes_any_model_string(app_at) -> None:  # noqa: ANN001
    at = app_at("optimize")
    at.text_input(key="keep:model_other:new").input("ollama/qwen2.5-coder:7b")
    next(b for b in at.button if b.label == "Create session and run the baseline").click().run()
    assert not at.exception, [e.value for e in at.exception]
    [row] = services.list_sessions()[0]
    assert services.get_session(row.id).info.model == "ollama/qwen2.5-coder:7b"
    wait_for_jobs()


def test_the_local_model_says_it_is_for_trying_the_studio(app_at) -> None:  # noqa: ANN001
    at = app_at("optimize")
    at.selectbox(key="keep:model:new").set_value("perfloop-moe/default").run()
    captions = "\n".join(c.value for c in at.caption)
    assert "good for trying the studio and watching routing" in captions
    assert "stronger model" in captions and "PERFLOOP_MOE_MODEL_PATH" in captions
