"""Fixtures for the services: a migrated database, a services Context on it with the real
sandbox (small time budgets: 2 shared cores), and a small, realistic optimisation problem."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from app.config import get_settings
from app.services import Context
from tests.llm.conftest import LITELLM_PYDANTIC_WARNING

# Quick but real timing: fresh processes, paired samples, a CI — just fewer of them. Two rounds
# are too few for the sequential protocol's anytime-valid interval (its width after 2 rounds is
# ~56 round-to-round sds: tests/sandbox/test_stats.py), so these service tests use the fixed
# protocol; the sequential one is tested in tests/sandbox/test_sequential.py.
FAST_TIMING = {
    "sequential": False,
    "budget_s": 0.5,
    "min_rounds": 2,
    "max_rounds": 2,
    "pairs_per_round": 2,
    "min_sample_s": 0.005,
}
LIMITS = {"wall_s": 60.0}

BASELINE = '''\
def count_common(a, b):
    """How many items of a also occur in b."""
    n = 0
    for x in a:
        if x in b:
            n += 1
    return n
'''

# The classic quadratic-to-linear fix: membership in a set instead of a list.
FASTER = '''\
def count_common(a, b):
    """How many items of a also occur in b."""
    seen = set(b)
    return sum(1 for x in a if x in seen)
'''

WRONG = """\
def count_common(a, b):
    return len(set(a) & set(b))
"""

WORKLOAD = """\
def cases():
    a = list(range(0, 6000, 2)) + [6, 6, 6]
    b = list(range(0, 6000, 3))
    return [(a, b)]
"""

TESTS = """\
from target import count_common


def test_duplicates_count_each_time():
    assert count_common([1, 1, 2], [1]) == 2


def test_empty():
    assert count_common([], [1, 2]) == 0
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.filterwarnings(LITELLM_PYDANTIC_WARNING))


def sandbox_backend() -> tuple[str, bool]:
    """bwrap where it runs (the default), else the process backend, explicitly allowed."""
    import sandbox

    available = sandbox.available_backends()
    if available.get("bwrap") is None:
        return "bwrap", False
    return "process", True


@pytest.fixture
def make_ctx():
    made: list[Context] = []

    def make(engine: Engine, **overrides) -> Context:
        backend, allow = sandbox_backend()
        values = dict(
            engine=engine,
            sandbox_backend=backend,
            allow_process=allow,
            sandbox_limits=LIMITS,
            sandbox_timing=FAST_TIMING,
            eval_workers=2,
        )
        values.update(overrides)
        ctx = Context.from_settings(get_settings(), **values)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()


@pytest.fixture
def ctx(sqlite_engine: Engine, make_ctx) -> Iterator[Context]:
    """Services on a fresh, migrated SQLite database with the real sandbox."""
    yield make_ctx(sqlite_engine)


@pytest.fixture
def any_ctx(engine: Engine, make_ctx) -> Iterator[Context]:
    """The same on SQLite and on PostgreSQL (parametrized by the shared ``engine`` fixture)."""
    yield make_ctx(engine)


def reply_with(code: str, idea: str = "Use a set for membership tests.") -> str:
    return f"{idea}\n\n```python\n{code}```\n"
