"""Every page opens from the entry point without an exception (Streamlit AppTest)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

PAGES = ["optimize", "sessions", "review", "classroom", "routing", "settings"]


@pytest.mark.parametrize("page", PAGES)
def test_page_opens_from_entry_point(page: str, sqlite_engine, monkeypatch) -> None:  # noqa: ANN001
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=60)
    at.run()
    assert not at.exception
    at.switch_page(str(ROOT / "pages" / f"{page}.py"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, f"page {page} shows no title"
