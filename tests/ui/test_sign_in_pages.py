"""Identity on the pages: the local single-user mode is labelled everywhere; with sign-in
configured, anonymous visitors see only the sign-in button, and a private session stays with
its author (and admins) on every page that takes ``?session=ID``, in the session list and its
count. ``AppTest.user`` plays the identity an OpenID Connect provider would return; the real
provider and browser are in tests/e2e/test_sign_in.py."""

from __future__ import annotations

import pytest

from app import services
from tests.ui.conftest import texts

PAGES = ["optimize", "sessions", "review", "classroom", "routing", "settings"]
SESSION_PAGES = ["optimize", "review", "classroom", "routing"]


@pytest.fixture
def team(seeded):  # noqa: ANN001, ANN201
    """root (admin, the first to sign in), ada (editor, the seeded session's author), bob
    (editor) and vera (viewer); ada's session made private."""
    root = services.sign_in(name="root")
    ada = services.sign_in(name="ada")
    services.sign_in(name="bob")
    vera = services.sign_in(name="vera")
    services.set_role(vera.user_id, "viewer", actor=root)
    services.update_session_info(seeded.session_id, visibility="private", actor=ada)
    return seeded


@pytest.mark.parametrize("page", PAGES)
def test_local_mode_is_labelled_on_every_page(seeded_at, page) -> None:  # noqa: ANN001
    at = seeded_at(page)
    assert any("Local single-user mode" in c.value for c in at.sidebar.caption)
    assert not at.sidebar.get("button") or all(b.label != "Sign in" for b in at.sidebar.button)


def test_anonymous_visitor_sees_only_the_sign_in_button(team, seeded_at) -> None:  # noqa: ANN001
    at = seeded_at("review", team=True, session=str(team.session_id))
    assert [b.label for b in at.sidebar.button] == ["Sign in"]
    assert "Sign in to use perfloop." in texts(at)
    assert "Use a generator" not in texts(at) and not at.title


@pytest.mark.parametrize("page", SESSION_PAGES)
def test_a_private_session_is_refused_by_url_to_another_person(team, seeded_at, page) -> None:  # noqa: ANN001
    sid = str(team.session_id)
    at = seeded_at(page, user="bob", session=sid)
    assert any("Signed in as **bob**" in c.value for c in at.sidebar.caption)
    assert any(f"Session {sid} is private" in e.value for e in at.error), texts(at)
    page_text = texts(at) + "".join(c.value for c in at.code)
    assert "sum_of_squares" not in page_text and "Use a generator" not in page_text


@pytest.mark.parametrize("page", ["optimize", "review"])
def test_its_author_and_an_admin_open_it(team, seeded_at, page) -> None:  # noqa: ANN001
    for who in ("ada", "root"):
        at = seeded_at(page, user=who, session=str(team.session_id))
        assert not at.error, (who, [e.value for e in at.error])
        assert "Use a generator" in texts(at), who


def test_the_session_list_neither_shows_nor_counts_a_hidden_session(team, seeded_at) -> None:  # noqa: ANN001
    bob = seeded_at("sessions", user="bob")
    assert "0 session(s) match" in texts(bob)
    assert bob.dataframe[0].value.empty
    ada = seeded_at("sessions", user="ada")
    assert "1 session(s) match; showing 1–1" in texts(ada)
    assert list(ada.dataframe[0].value["id"]) == [team.session_id]


def test_a_viewer_reads_and_comments_but_cannot_work_a_session(team, seeded_at) -> None:  # noqa: ANN001
    ada = services.find_user("ada")
    services.update_session_info(team.session_id, visibility="team", actor=ada)
    at = seeded_at("optimize", user="vera", session=str(team.session_id))
    assert not at.error, [e.value for e in at.error]
    assert "You can read this session" in texts(at)
    assert not at.chat_input and not any(b.label == "Mark best" for b in at.button)
    review = seeded_at("review", user="vera", session=str(team.session_id))
    review.text_area(key=f"keep:review:{team.session_id}:comment").input("Looks right.").run()
    review.button(key=f"review_post_{team.session_id}").click().run()
    assert not review.error, [e.value for e in review.error]
    [comment] = services.list_comments(team.session_id)
    assert comment.author == "vera" and comment.text == "Looks right."
    new = seeded_at("optimize", user="vera")
    assert "Viewers read and comment" in texts(new)
    assert not any(b.label.startswith("Create session") for b in new.button)


def test_the_admin_page_sets_roles_and_shows_the_audit_log(team, seeded_at) -> None:  # noqa: ANN001
    bob = services.find_user("bob")
    at = seeded_at("admin", user="root")
    assert not at.error, [e.value for e in at.error]
    at.selectbox(key=f"admin:role:{bob.user_id}").set_value("viewer").run()
    at.button(key=f"admin:save:{bob.user_id}").click().run()
    assert services.find_user("bob").role == "viewer"
    log = at.dataframe[-1].value
    assert {"sign-in", "role", "visibility"} <= set(log["action"])
    # not an admin: the page is not in the navigation, and the services refuse the log
    with pytest.raises(services.Forbidden):
        services.audit_log(actor=services.find_user("ada"))


def test_the_author_changes_the_visibility_on_review_and_others_cannot(team, seeded_at) -> None:  # noqa: ANN001
    sid = team.session_id
    at = seeded_at("review", user="ada", session=str(sid))
    at.radio(key=f"review:{sid}:visibility").set_value("team").run()
    at.button(key=f"review_settings_{sid}").click().run()
    assert not at.error, [e.value for e in at.error]
    assert services.get_session(sid).info.visibility == "team"
    bob = seeded_at("review", user="bob", session=str(sid))
    assert not bob.error and "Use a generator" in texts(bob)  # team: bob reads it now
    assert not any(b.key == f"review_settings_{sid}" for b in bob.button)  # but cannot change it
    log = services.audit_log(session_id=sid, actor=services.find_user("root"))
    assert [(e.actor, e.action, e.detail) for e in log if e.action == "visibility"][0] == (
        "ada",
        "visibility",
        {"from": "private", "to": "team"},
    )
