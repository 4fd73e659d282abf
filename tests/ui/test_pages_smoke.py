"""Every page opens from the entry point without an exception (Streamlit AppTest)."""

from __future__ import annotations

import pytest

PAGES = ["optimize", "sessions", "review", "classroom", "routing", "settings"]


@pytest.mark.parametrize("page", PAGES)
def test_page_opens_from_entry_point(page: str, app_at) -> None:  # noqa: ANN001
    at = app_at(page)
    assert at.title, f"page {page} shows no title"
    assert not at.error, [e.value for e in at.error]
