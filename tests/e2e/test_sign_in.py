"""Sign-in and privacy in a real browser (issue 12): the app signs people in through a real
OpenID Connect provider (``oidc-provider-mock``, started here) with Streamlit's ``st.login``.
The first person becomes admin, the next ones editors. Alice creates a private session in the
UI and starts a turn on it (a scripted model streams its reply for minutes); she sees it on
every page. Bob, signed in in another browser, is refused it by URL on every page, does not
count it in the Sessions list, and neither sees nor can stop Alice's running job on Routing's
live tab; signed out, he sees only the way to sign in. Then Alice stops her job. Screenshots
and the provider's and the app's logs go to test-artifacts/."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.ui import examples
from tests.e2e.conftest import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    scripted_model_env,
    selectbox_shows,
)
from tests.e2e.test_core_flow import shot, wait_idle
from tests.support.oidc import OIDCProvider
from tests.support.openai_stub import ScriptedOpenAIServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN, ALICE, BOB = "admin@example.com", "alice@example.com", "bob@example.com"
TITLE = "Alice's private plan"
CODE_MARK = "alice-private-7f3a"  # a comment in her baseline: it must never reach Bob
CODE = examples.BASELINE.replace("    total = 0\n", f"    total = 0  # {CODE_MARK}\n")
#: a small workload: the baseline is checked and timed quickly
WORKLOAD = "def cases():\n    yield (list(range(200)),)\n"
REPLY_MARK = "ALICE-STREAMING-REPLY"
#: (url path, page heading) of every page that takes ``?session=ID``
PAGES = [
    ("", "Optimize"),
    ("sessions", "Sessions"),
    ("review", "Review"),
    ("classroom", "Classroom"),
    ("routing", "Routing"),
]


@pytest.fixture(scope="module")
def model_server() -> Iterator[ScriptedOpenAIServer]:
    """A model that takes minutes over its reply: Alice's turn is still running while Bob looks."""
    with ScriptedOpenAIServer(models=["expert"], chunk_chars=12, delay_s=1.0) as server:
        server.queue(f"{REPLY_MARK} " * 1000)
        yield server


@pytest.fixture(scope="module")
def provider() -> Iterator[OIDCProvider]:
    ARTIFACTS.mkdir(exist_ok=True)
    with OIDCProvider(log_path=ARTIFACTS / "e2e-oidc-provider.log") as p:
        yield p


@pytest.fixture(scope="module")
def secrets_file(tmp_path_factory, provider: OIDCProvider) -> Path:  # noqa: ANN001
    path = tmp_path_factory.mktemp("secrets") / "secrets.toml"
    # {port}: Streamlit fills in its own server port; the browser uses 127.0.0.1 too, so the
    # state cookie set at /auth/login comes back with /oauth2callback
    path.write_text(provider.auth_secrets(redirect_uri="http://127.0.0.1:{port}/oauth2callback"))
    return path


@pytest.fixture(scope="module")
def app_args(secrets_file: Path) -> list[str]:
    return ["--secrets.files", str(secrets_file)]


@pytest.fixture(scope="module")
def app_env(model_server: ScriptedOpenAIServer) -> dict[str, str]:
    return scripted_model_env(model_server.base_url, "e2e-server-sign-in.log")


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class People(dict):
    """name → page: one browser context (its own cookies, so its own person) per name. The
    conftest's hook screenshots each page when the test fails."""

    def __init__(self, browser) -> None:  # noqa: ANN001
        super().__init__()
        self._browser = browser

    def open_as(self, email: str):  # noqa: ANN201
        context = self._browser.new_context(viewport={"width": 1440, "height": 1800})
        page = context.new_page()
        page.set_default_timeout(30_000)
        self[email.split("@")[0]] = page
        return page

    def close(self) -> None:
        for page in self.values():
            page.context.close()


@pytest.fixture
def browser_pages(browser) -> Iterator[People]:  # noqa: ANN001
    people = People(browser)
    yield people
    people.close()


def sign_in(page, app_url: str, email: str) -> None:  # noqa: ANN001
    """Sign in through the provider's authorize form as ``email`` (its ``sub`` and email)."""
    page.goto(app_url)
    page.get_by_text("Not signed in.").wait_for()
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/oauth2/authorize"))
    page.locator("input[name=sub]").fill(email)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(re.compile(re.escape(app_url)))
    sidebar(page).get_by_text("Signed in as").wait_for()
    wait_idle(page)


def sidebar(page):  # noqa: ANN001, ANN201
    return page.locator("[data-testid='stSidebar']")


def signed_in_as(page) -> str:  # noqa: ANN001
    return sidebar(page).get_by_text("Signed in as").inner_text()


def open_page(page, app_url: str, path: str, heading: str, sid: int) -> None:  # noqa: ANN001
    """Open ``path?session=sid`` as a shared link would (the caller then waits for what the
    page must show: Streamlit draws it in pieces)."""
    page.goto(f"{app_url}/{path}?session={sid}")
    page.get_by_role("heading", name=heading).first.wait_for()
    sidebar(page).get_by_text("Signed in as").wait_for()
    wait_idle(page)


def fill_in(page, field, text: str) -> None:  # noqa: ANN001
    """Type ``text`` into a text box and hand it to the app (Streamlit takes it on blur)."""
    field.fill(text)
    field.blur()
    page.wait_for_timeout(500)  # the rerun it starts shows its status widget after a moment
    wait_idle(page)
    assert field.input_value() == text


def in_html(page, text: str) -> None:  # noqa: ANN001
    """Wait until ``text`` is drawn (in an element's text or a select box's value)."""
    page.wait_for_function("t => document.body.innerHTML.includes(t)", arg=text)


def stored_traces(page) -> None:  # noqa: ANN001
    """Open Routing's stored tab; the live tab's polling redraw can swallow a click: again."""
    panel = page.get_by_role("tabpanel", name="Stored traces")
    for _ in range(5):
        page.get_by_role("tab", name="Stored traces").click()
        try:
            panel.wait_for(timeout=5_000)
            return
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: click again
            continue
    panel.wait_for()


def errors(page) -> list[str]:  # noqa: ANN001
    return page.locator("[data-testid='stAlertContentError']").all_inner_texts()


def phase(name: str, t0: list[float]) -> None:
    """Print how long the test took to get here (``-s`` shows it): a slow step is found."""
    print(f"[sign-in e2e] {time.monotonic() - t0[0]:6.1f} s  {name}", flush=True)


@pytest.mark.timeout(420)
def test_a_private_session_and_its_job_stay_with_their_author(  # noqa: ANN001
    app_url: str, browser_pages, model_server: ScriptedOpenAIServer
) -> None:
    t0 = [time.monotonic()]
    open_as = browser_pages.open_as
    # the first person to sign in becomes admin; everyone after is an editor
    admin = open_as(ADMIN)
    sign_in(admin, app_url, ADMIN)
    assert signed_in_as(admin) == f"👤 Signed in as {ADMIN} · admin"
    admin.goto("about:blank")  # a page left open keeps the app (and this machine) busy
    alice = open_as(ALICE)
    sign_in(alice, app_url, ALICE)
    assert signed_in_as(alice) == f"👤 Signed in as {ALICE} · editor"
    shot(alice, "40-sign-in-alice")
    phase("admin and alice signed in", t0)

    # Alice creates a private session with code of her own, and starts a turn that streams
    sidebar(alice).get_by_text("Plain text editors").click()
    alice.get_by_role("textbox", name="Code to optimize").wait_for()  # the rerun drew them
    alice.wait_for_timeout(500)
    wait_idle(alice)
    fill_in(alice, alice.get_by_label("Title"), TITLE)
    fill_in(alice, alice.get_by_role("textbox", name="Code to optimize"), CODE)
    fill_in(alice, alice.get_by_role("textbox", name="Workload"), WORKLOAD)
    visibility = alice.locator("[data-testid='stSelectbox']").filter(has_text="Visibility")
    for _ in range(5):  # a rerun still drawing the form can swallow the choice: choose again
        wait_idle(alice)
        visibility.locator("input").first.click()
        alice.keyboard.type("private")
        alice.keyboard.press("Enter")
        wait_idle(alice)
        if "private" in selectbox_shows(visibility):
            break
    assert "private" in selectbox_shows(visibility), selectbox_shows(visibility)
    alice.get_by_role("button", name="Create session and run the baseline").click()
    alice.get_by_text("iteration 0 is on the chart").wait_for(timeout=240_000)
    wait_idle(alice)
    sid = int(re.search(r"[?&]session=(\d+)", alice.url)[1])
    alice.get_by_text(re.compile(r"· private ·")).first.wait_for()  # the header says so
    phase(f"alice created private session {sid}", t0)
    box = alice.get_by_placeholder(re.compile("Ask the optimizer"))
    box.fill("Make it faster, please.")
    box.press("Enter")
    # the app imports litellm on its first remote call (~30 s on a loaded machine)
    alice.get_by_text(REPLY_MARK).first.wait_for(timeout=120_000)
    caption = alice.get_by_text(re.compile(r"^turn · job \d+ · running$")).inner_text()
    job = int(re.search(r"job (\d+)", caption)[1])
    phase(f"alice's turn (job {job}) streams", t0)

    # Alice sees her session on every page, her code, and her job live with its Stop button
    for path, heading in PAGES:
        if path:  # she is on the Optimize page of her session already
            open_page(alice, app_url, path, heading, sid)
        if path == "sessions":  # the table is drawn on a canvas: its count says it is there
            alice.get_by_text("1 session(s) match").wait_for()
        elif path != "routing":  # the page's header or its session picker
            in_html(alice, TITLE)
        if path == "review":  # the Code tab of the baseline's card
            alice.get_by_role("tab", name="Candidates").click()
            card = alice.locator("[data-testid='stExpander']").filter(has_text="Candidate #1")
            code_tab = card.first.get_by_role("tab", name="Code")
            if not code_tab.is_visible():
                card.first.locator("summary").click()
            code_tab.click()
            card.first.get_by_test_id("stCode").get_by_text(CODE_MARK).wait_for()
        elif path == "classroom":  # the first step of the replay: the baseline's code
            alice.get_by_test_id("stCode").get_by_text(CODE_MARK).first.wait_for()
        elif path == "routing":
            alice.get_by_text(f"turn · job {job} · running").wait_for()
            alice.get_by_text(REPLY_MARK).first.wait_for()
            # the live panel redraws every poll: wait for its button rather than count at once
            expect(alice.get_by_role("button", name="Stop")).to_have_count(1, timeout=20_000)
            shot(alice, "41-routing-alice-sees-her-job")
            stored_traces(alice)  # its session picker
            alice.get_by_text("No routing was recorded in this session").wait_for()
            in_html(alice, TITLE)
        assert not errors(alice), (path, errors(alice))
        phase(f"alice on /{path}", t0)
    phase("alice saw her session on every page", t0)
    alice.goto("about:blank")

    # Bob, signed in in another browser, is refused on every page and sees none of it
    bob = open_as(BOB)
    sign_in(bob, app_url, BOB)
    assert signed_in_as(bob) == f"👤 Signed in as {BOB} · editor"
    phase("bob signed in", t0)
    for path, heading in PAGES:
        open_page(bob, app_url, path, heading, sid)
        if path == "sessions":  # the list neither shows nor counts it
            bob.get_by_text("0 session(s) match").wait_for()
        elif path == "routing":
            # the live tab: Alice's job is running, yet Bob neither sees it nor can stop it
            bob.get_by_text("Nothing is generating right now.").wait_for()
            assert bob.get_by_text(re.compile(r"turn · job")).count() == 0
            assert bob.get_by_role("button", name="Stop").count() == 0
            assert REPLY_MARK not in bob.content()
            shot(bob, "43-routing-bob-sees-no-job")
            stored_traces(bob)  # where a stored session's routing is opened
        if path != "sessions":
            bob.get_by_text(f"Session {sid} is private").wait_for()
            refusal = f"Session {sid} is private: only its author and admins may open it"
            assert any(refusal in e for e in errors(bob)), (path, errors(bob))
            shot(bob, f"42-bob-refused-{path or 'optimize'}")
        html = bob.content()
        for secret in (TITLE, CODE_MARK, REPLY_MARK):
            assert secret not in html, (path, secret)
        phase(f"bob on /{path}", t0)
    phase("bob was refused on every page", t0)

    # signed out, Bob is an anonymous visitor: a link shows nothing but the way to sign in
    sidebar(bob).get_by_role("button", name="Sign out").click()
    bob.get_by_role("button", name="End session").click()  # the provider's sign-out form
    bob.get_by_text("Not signed in.").wait_for()
    bob.goto(f"{app_url}/review?session={sid}")
    bob.get_by_text("Sign in to use perfloop.").wait_for()
    assert bob.get_by_role("heading", name="Review").count() == 0
    assert TITLE not in bob.content()
    phase("bob signed out", t0)

    # …while Alice's job went on streaming all along, and she can stop it
    open_page(alice, app_url, "routing", "Routing", sid)
    alice.get_by_text(f"turn · job {job} · running").wait_for()
    alice.get_by_role("button", name="Stop").click()
    # its reply would stream for half an hour: it ended because she stopped it
    alice.get_by_text("Nothing is generating right now.").wait_for(timeout=60_000)
    phase("alice stopped her job", t0)
