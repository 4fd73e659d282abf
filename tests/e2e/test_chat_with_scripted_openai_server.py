"""Chat turns in a real browser against a scripted OpenAI-compatible model server that answers
like a capable remote model (tests/support/openai_stub.py; remote providers cannot be reached
from the tests): each turn improves the current best version (issue 9 item 1), and the speedup
chart reads right — ticks in ×, the baseline at 1×, candidates of one iteration side by side,
the legend off the title (item 4). Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import ARTIFACTS, scripted_model_env, selectbox_shows
from tests.e2e.test_core_flow import chart_points, shot, wait_idle
from tests.support.openai_stub import ScriptedOpenAIServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GENERATOR = "def sum_of_squares(numbers):\n    return sum(x * x for x in numbers)\n"
LIST_COMP = "def sum_of_squares(numbers):\n    return sum([x * x for x in numbers])\n"
OPERATOR = (
    "import operator\n\n\ndef sum_of_squares(numbers):\n"
    "    return sum(map(operator.mul, numbers, numbers))\n"
)
LOCAL_TOTAL = (
    "def sum_of_squares(numbers):\n    total = 0\n    for x in numbers:\n"
    "        total += x * x\n    return total\n"
)


def _block(code: str) -> str:
    return f"```python\n{code}```\n"


@pytest.fixture(scope="module")
def model_server() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer(models=["expert"], delay_s=0.02) as server:
        server.reply("The loop becomes a generator:\n\n" + _block(GENERATOR), when="generator")
        server.reply(
            "Two variants to measure:\n\n" + _block(LIST_COMP) + "\nand\n\n" + _block(OPERATOR),
            when="two variants",
        )
        server.reply("A local accumulator:\n\n" + _block(LOCAL_TOTAL), when="once more")
        yield server


@pytest.fixture(scope="module")
def app_env(model_server: ScriptedOpenAIServer) -> dict[str, str]:
    return scripted_model_env(model_server.base_url, "e2e-server-scripted.log")


def _turn(page, text: str, job: int) -> None:  # noqa: ANN001
    """Send ``text`` and wait until its turn (background job number ``job``) has finished."""
    box = page.get_by_placeholder(re.compile("Ask the optimizer"))
    box.fill(text)
    box.press("Enter")
    # the app imports litellm on its first remote call (~30 s on a loaded machine)
    page.get_by_text(re.compile(rf"^turn · job {job} · (done|failed)$")).wait_for(timeout=600_000)
    wait_idle(page)
    errors = page.locator("[data-testid='stAlertContentError']").all_inner_texts()
    assert not errors, errors
    page.get_by_text(re.compile(r"new candidate\(s\) evaluated")).first.wait_for()


def _improve_version(page) -> str:  # noqa: ANN001
    """What the "Improve version" selector shows."""
    box = page.locator("[data-testid='stSelectbox']").filter(has_text="Improve version").first
    return selectbox_shows(box)


@pytest.mark.timeout(1800)  # three turns, each evaluated in the real sandbox, on a busy machine
def test_chat_turns_improve_the_best_with_scripted_openai_server(  # noqa: ANN001
    app_url: str, browser_page, model_server: ScriptedOpenAIServer
) -> None:
    page = browser_page
    page.goto(app_url)
    page.get_by_role("heading", name="Optimize").wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Create session and run the baseline").click()
    page.get_by_text("iteration 0 is on the chart").wait_for(timeout=240_000)
    wait_idle(page)

    _turn(page, "Use a generator instead of the loop.", 2)
    assert GENERATOR.strip() not in model_server.chat_requests()[-1].last_user
    card = page.locator("[data-testid='stExpander']").filter(has_text="Candidate #2 ·").first
    card.get_by_role("button", name="Mark best").click()
    wait_idle(page)
    page.locator("[data-testid='stExpander']").filter(has_text="⭐ best").first.wait_for()
    assert "#2" in _improve_version(page)  # the selector followed the new best

    _turn(page, "Now give me two variants of it.", 3)
    prompt = model_server.chat_requests()[-1].last_user
    assert GENERATOR.strip() in prompt, prompt  # the best version's code …
    assert "candidate 2" in prompt  # … and its verdict
    assert "total = total + x * x" not in prompt  # not the baseline's

    _turn(page, "Try once more, keep it simple.", 4)
    prompt = model_server.chat_requests()[-1].last_user
    assert GENERATOR.strip() in prompt and "total = total + x * x" not in prompt
    assert "#2" in _improve_version(page)

    # the chart: baseline, one point of iteration 1, two of iteration 2, one of iteration 3
    assert chart_points(page, "Speedup per iteration", at_least=5) >= 5
    chart = page.locator(".js-plotly-plot").filter(has_text="Speedup per iteration").first
    ticks = chart.locator("g.ytick text").all_text_contents()
    assert "1×" in ticks and all(t.endswith("×") for t in ticks), ticks
    label = chart.locator("g.annotation").filter(has_text="baseline 1×").first
    one = chart.locator("g.ytick").filter(has_text=re.compile(r"^1×$")).first
    label_box, one_box = label.bounding_box(), one.bounding_box()
    assert label_box and one_box
    # the label sits on the 1× gridline, level with the 1× tick (not at 10×)
    label_mid = label_box["y"] + label_box["height"] / 2
    assert abs(label_mid - (one_box["y"] + one_box["height"] / 2)) < 12
    points = chart.locator("g.scatterlayer g.points path.point")
    xs = [round(points.nth(i).bounding_box()["x"]) for i in range(points.count())]
    assert len(set(xs)) == len(xs), xs  # no candidate hides another
    title = chart.locator("g.g-gtitle").bounding_box()
    legend = chart.locator("g.legend").bounding_box()
    assert title and legend and legend["y"] > title["y"] + title["height"]  # off the title
    shot(page, "21-scripted-chat-three-turns")
    chart.screenshot(path=str(ARTIFACTS / "22-scripted-speedup-chart.png"))
