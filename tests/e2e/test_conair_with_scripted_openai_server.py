"""ConAIR in a real browser against a scripted OpenAI-compatible model server that answers like a
capable remote model (tests/support/openai_stub.py; remote providers cannot be reached from the
tests): four correct candidates and tests of which one expects a wrong value. Correctness rests
on trusted evidence only (issue 9 item 2): no candidate is shown incorrect because of the
unvalidated wrong test, the test is flagged as contradicting the baseline, and after the person
rejects it every candidate is still correct. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import scripted_model_env
from tests.e2e.test_core_flow import shot, wait_idle
from tests.support.openai_stub import ScriptedOpenAIServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CANDIDATES = [
    "def sum_of_squares(numbers):\n    return sum(x * x for x in numbers)\n",
    "def sum_of_squares(numbers):\n    return sum([x * x for x in numbers])\n",
    "def sum_of_squares(numbers):\n    total = 0\n    for x in numbers:\n"
    "        total += x * x\n    return total\n",
    "import operator\n\n\ndef sum_of_squares(numbers):\n"
    "    return sum(map(operator.mul, numbers, numbers))\n",
]
TESTS = """# tests
from target import sum_of_squares


def test_empty():
    assert sum_of_squares([]) == 0


def test_negative():
    assert sum_of_squares([-3]) == 9


def test_pair():
    assert sum_of_squares([1, 2]) == 6
"""
FIXED_TEST = """from target import sum_of_squares


def test_pair():
    assert sum_of_squares([1, 2]) == 5
"""


def _reply() -> str:
    blocks = [f"```python\n# candidate {i}\n{c}```" for i, c in enumerate(CANDIDATES, 1)]
    return "Four versions and the tests:\n\n" + "\n\n".join(blocks) + f"\n\n```python\n{TESTS}```"


@pytest.fixture(scope="module")
def model_server() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer(models=["expert"], delay_s=0.005) as server:
        server.reply(_reply(), when="different faster versions")
        server.reply(f"Corrected:\n\n```python\n{FIXED_TEST}```\n", when="is wrong")
        yield server


@pytest.fixture(scope="module")
def app_env(model_server: ScriptedOpenAIServer) -> dict[str, str]:
    return scripted_model_env(model_server.base_url, "e2e-server-scripted-conair.log")


def _card_titles(page) -> list[str]:  # noqa: ANN001
    cards = page.locator("[data-testid='stExpander']").filter(has_text=re.compile("Candidate #"))
    return [t.split("\n")[0] for t in cards.all_inner_texts()]


def _wait_job(page, kind: str) -> None:  # noqa: ANN001
    done = re.compile(rf"^{kind} · job \d+ · (done|failed)$")
    page.get_by_text(done).first.wait_for(timeout=900_000)
    wait_idle(page)
    errors = page.locator("[data-testid='stAlertContentError']").all_inner_texts()
    assert not errors, errors


@pytest.mark.timeout(1800)  # four candidates evaluated in the real sandbox, twice judged
def test_conair_judges_by_trusted_tests_with_scripted_openai_server(  # noqa: ANN001
    app_url: str, browser_page, model_server: ScriptedOpenAIServer
) -> None:
    page = browser_page
    page.goto(app_url)
    page.get_by_role("heading", name="Optimize").wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Create session and run the baseline").click()
    page.get_by_text("iteration 0 is on the chart").wait_for(timeout=240_000)
    wait_idle(page)

    shot(page, "23-scripted-conair-before-mode")
    page.get_by_text(re.compile("ConAIR$")).first.click()
    wait_idle(page)
    page.get_by_role("button", name="Start ConAIR").click()
    _wait_job(page, "conair")
    assert "different faster versions" in model_server.chat_requests()[-1].last_user

    # The wrong generated test is flagged and asked first; it makes no candidate "incorrect".
    page.get_by_text("This test contradicts the baseline").first.wait_for()
    titles = _card_titles(page)
    assert len([t for t in titles if "baseline" not in t]) >= 4, titles
    assert not any("❌" in t for t in titles), titles
    shot(page, "24-scripted-conair-round-1")

    page.get_by_role("button", name="Submit answers").click()  # reject is preselected
    _wait_job(page, "conair answer")
    titles = _card_titles(page)
    assert not any("❌" in t for t in titles), titles
    metric = page.locator("[data-testid='stMetric']").filter(has_text="Candidates (correct)")
    tried, correct = map(int, re.findall(r"\d+", metric.first.inner_text())[-2:])
    assert correct >= 4 and tried >= correct, (tried, correct)
    shot(page, "25-scripted-conair-after-answers")
