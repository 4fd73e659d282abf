"""litellm builds pydantic schemas lazily, inside the first calls; pydantic warns that some of
litellm's TypedDicts use ``ReadOnly``. Harmless, but an error under ``filterwarnings = error``."""

from __future__ import annotations

import pytest

LITELLM_PYDANTIC_WARNING = "ignore:.*`ReadOnly` qualifier:UserWarning"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.filterwarnings(LITELLM_PYDANTIC_WARNING))
