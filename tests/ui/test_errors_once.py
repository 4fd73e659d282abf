"""Errors are shown once (issue 9 item 7): a workload that raises gives one message, not the
same text two to four times, and no green tick beside the failure; a turn whose model server
cannot be reached says which address failed and that retrying is safe, keeps the error text in
the transcript and puts the typed request back in the chat box."""

from __future__ import annotations

import socket

import pytest

from app import services
from app.ui import examples
from tests.ui.conftest import texts, wait_for_jobs

pytestmark = pytest.mark.slow

BAD_WORKLOAD = "def cases():\n    raise ValueError('no input files here')\n"


def _button(at, label: str):  # noqa: ANN001
    return next(b for b in at.button if b.label == label)


def test_a_failing_workload_is_reported_once_without_green_ticks(app_at) -> None:  # noqa: ANN001
    at = app_at("optimize")
    at.sidebar.toggle(key="keep:plain_editor").set_value(True).run()
    at.text_area(key="keep:new:workload").input(BAD_WORKLOAD)
    _button(at, "Create session and run the baseline").click().run()
    wait_for_jobs()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    page = texts(at)
    assert page.count("no input files here") == 1, page
    assert "the workload failed: the workload failed" not in page.lower()
    # no green tick beside the failure: not on the verdict card, not on a step that never ran
    lines = page.splitlines()
    assert any(line.startswith("could not be evaluated ❌") for line in lines), page
    ticked = [line for line in lines if "✅" in line]
    assert all("checking the inputs" in t or "starting the sandbox" in t for t in ticked), ticked
    assert any(line.startswith("❌") for line in lines), page  # the step that failed


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens


def test_unreachable_model_server_names_the_address_and_keeps_the_request(app_at) -> None:  # noqa: ANN001
    sid = services.create_session(
        baseline_source=examples.BASELINE,
        entry_point=examples.ENTRY,
        workload_source=examples.WORKLOAD,
        tests_source=examples.TESTS,
    ).info.id
    ctx = services.get_context()
    ctx.llm_options.pop("mock_response", None)
    port = _closed_port()
    ctx.llm_options.update(api_base=f"http://127.0.0.1:{port}/v1", api_key="sk-test")
    at = app_at("optimize", session=str(sid))
    request = "Please unroll the loop by four"
    at.chat_input(key=f"chat:{sid}").set_value(request).run()
    wait_for_jobs()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [e.value for e in at.error]
    assert len(shown) == 1, shown
    assert f"127.0.0.1:{port}" in shown[0] and "retry" in shown[0].lower(), shown
    assert "the provider had an error" not in shown[0]
    # the transcript keeps what went wrong, not a bare ⚠️
    captions = [c.value for c in at.caption]
    assert any(c.startswith("⚠️") and f"127.0.0.1:{port}" in c for c in captions), captions
    # …and the request is back in the box, ready to send again
    assert at.chat_input(key=f"chat:{sid}").value == request
