"""The Sessions page (AppTest): the list with its figures, search, open, delete with
confirmation."""

from __future__ import annotations

import pytest

from app import services

pytestmark = pytest.mark.slow


def _table(at):  # noqa: ANN001, ANN202
    return at.dataframe[0].value


def test_list_search_and_filters(seeded, seeded_at) -> None:  # noqa: ANN001
    at = seeded_at("sessions")
    table = _table(at)
    assert list(table["title"]) == ["Seeded session"]
    assert list(table["candidates"]) == [2] and list(table["author"]) == ["ada"]
    assert list(table["review"]) == [f"/review?session={seeded.session_id}"]
    at.text_input(key="keep:sessions:search").input("no such thing").run()
    assert len(_table(at)) == 0
    assert "0 session(s) match" in at.caption[0].value
    at.text_input(key="keep:sessions:search").input("seeded").run()
    at.text_input(key="keep:sessions:tag").input("demo").run()
    assert len(_table(at)) == 1


def test_delete_asks_for_confirmation(seeded, seeded_at) -> None:  # noqa: ANN001
    at = seeded_at("sessions")
    at.button(key="sessions:delete").click().run()
    assert any("cannot be undone" in w.value for w in at.warning)
    at.button(key="sessions:delete_no").click().run()
    assert services.list_sessions()[1] == 1  # cancelled: still there
    at.button(key="sessions:delete").click().run()
    at.button(key="sessions:delete_yes").click().run()
    assert not at.exception
    assert services.list_sessions()[1] == 0
    assert len(_table(at)) == 0


def test_open_for_review_switches_page(seeded, seeded_at) -> None:  # noqa: ANN001
    at = seeded_at("sessions")
    at.button(key="sessions:review").click().run()
    assert not at.exception
    assert at.title[0].value == "Review"
    assert at.query_params.get("session") in (str(seeded.session_id), [str(seeded.session_id)])
