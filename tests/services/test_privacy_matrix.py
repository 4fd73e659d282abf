"""The privacy matrix (issue 12): who may read, change, comment on, create, export and import
sessions, and see or stop their jobs — asserted on every public service path.

People: ``admin`` (root, signed in first), ``editor`` (alice, the author of most sessions),
``other`` (bob, a second editor who authors nothing), ``viewer`` (victor, set to viewer by the
admin; he authored sessions while he was still an editor), ``anon`` (an anonymous reader on an
instance without public readers) and ``anon+public`` (the same where ``public_readers`` is on).
Sessions: each visibility (private / team / public), authored by alice, root or victor.

The expected outcome of each cell comes from the rule table written out below (independently
of ``app.services.access``): a refusal is ``Forbidden`` and nothing changed (a snapshot of the
session's rows, read straight from the database, is the same before and after); an allowed call
is not ``Forbidden`` and has its effect — or, on the expensive paths (turns, ConAIR, validation,
evaluation, summaries), stops on purpose at the next cheap hurdle (a session that is not ready,
a baseline that does not parse, a sandbox backend that does not exist, a patched model call), so
the matrix runs no sandbox and no LLM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from app.config import get_settings
from app.services import access
from app.services.access import ANONYMOUS, Actor
from app.services.context import Context
from app.services.errors import (
    CodeDoesNotParse,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceError,
)
from db import queries
from db.engine import unit_of_work
from db.models import (
    AuditEvent,
    Candidate,
    CodeSummary,
    Comment,
    ConairRound,
    Evaluation,
    Job,
    Message,
    OptimizationSession,
    TestCase,
    utcnow,
)
from tests.services.conftest import FAST_TIMING, LIMITS

# --- the rules, written out (not imported from app.services.access) -------------------------

VISIBILITIES = ("private", "team", "public")


def may_read(role: str | None, visibility: str, is_author: bool, public_readers: bool) -> bool:
    """private: its author and admins; team: every signed-in person; public: also anonymous
    readers where the instance allows them."""
    if role == "admin":
        return True
    if role is None:
        return visibility == "public" and public_readers
    if visibility == "private":
        return is_author
    return True


def may_change(role: str | None, visibility: str, is_author: bool, public_readers: bool) -> bool:
    """Its author while an editor (or admin), and admins — of what they can read."""
    if not may_read(role, visibility, is_author, public_readers):
        return False
    return role == "admin" or (role == "editor" and is_author)


def may_comment(role: str | None, visibility: str, is_author: bool, public_readers: bool) -> bool:
    return role is not None and may_read(role, visibility, is_author, public_readers)


def may_create(role: str | None) -> bool:
    return role in ("admin", "editor")


def may_administer(role: str | None) -> bool:
    return role == "admin"


# --- the people and the instance -------------------------------------------------------------

PEOPLE = ("admin", "editor", "other", "viewer", "anon", "anon+public")
NAMES = {"admin": "root", "editor": "alice", "other": "bob", "viewer": "victor"}
#: Who authors sessions: alice (editor), root (admin), victor (a viewer now; an editor then).
OWNERS = ("editor", "admin", "viewer")
ROLE = {
    "admin": "admin",
    "editor": "editor",
    "other": "editor",
    "viewer": "viewer",
    "anon": None,
    "anon+public": None,
}

BROKEN_BASELINE = "def count_common(a, b:\n    return 0\n"  # never validated: no sandbox runs
HUMAN = "def count_common(a, b):\n    seen = set(b)\n    return sum(1 for x in a if x in seen)\n"
WORKLOAD = "def cases():\n    return [([1, 2, 3], [2, 3])]\n"
SUMMARY_ITEMS = [{"text": "Counts the items of a found in b.", "spans": [[1, 2]]}]
#: No such sandbox backend: should anything reach the sandbox it fails at once (SandboxFailed).
NO_BACKEND = "no-such-backend"


class Reached(Exception):  # noqa: N818 - a marker, not an error
    """Raised by a patched expensive step: the call got past the access check."""


@dataclass(frozen=True)
class Person:
    key: str
    actor: Actor
    ctx: Context

    @property
    def role(self) -> str | None:
        return ROLE[self.key]

    @property
    def public_readers(self) -> bool:
        return bool(self.ctx.settings.public_readers)

    def is_author(self, seeded: Seeded) -> bool:
        return self.actor.role is not None and self.actor.name == seeded.author


@dataclass(frozen=True)
class Seeded:
    """A session with one of everything: baseline, a human candidate labelled best, a message,
    a comment, a summary, a finished (ping) job and a queued one."""

    id: int
    author: str
    visibility: str
    base_id: int
    cand_id: int
    msg_id: int
    summary_id: int
    done_job: int
    queued_job: int
    title: str


def _make_ctx(engine: Engine, *, public_readers: bool) -> Context:
    settings = get_settings().model_copy(
        update={"public_readers": public_readers, "jobs": "embedded"}
    )
    return Context.from_settings(
        settings,
        engine=engine,
        sandbox_backend=NO_BACKEND,
        allow_process=False,
        sandbox_limits=LIMITS,
        sandbox_timing=FAST_TIMING,
        eval_workers=1,
        # A call that drops the actor on its way acts as nobody, so such a slip shows up as a
        # refusal in an allowed cell instead of passing as the all-powerful local user.
        actor=ANONYMOUS,
    )


@dataclass
class World:
    engine: Engine
    closed: Context  # public_readers off
    open: Context  # public_readers on
    people: dict[str, Person]
    shared: dict[tuple[str, str], Seeded]  # (owner key, visibility) → a session to read
    counter: list[int]

    def seed(self, owner: str, visibility: str, *, human: bool = True) -> Seeded:
        self.counter[0] += 1
        name = NAMES[owner]
        title = f"{name} {visibility} #{self.counter[0]}"
        with unit_of_work(self.engine) as s:
            row = queries.create_session(
                session=s,
                title=title,
                baseline_source=BROKEN_BASELINE,
                entry_point="count_common",
                workload_source=WORKLOAD,
                author=name,
                visibility=visibility,
            )
            base = queries.add_candidate(
                session=s,
                session_id=row.id,
                source=BROKEN_BASELINE,
                origin="baseline",
                iteration=0,
                meta={"validation": {"ok": False, "message": "not validated yet"}},
            )
            cand = base
            if human:
                cand = queries.add_candidate(
                    session=s,
                    session_id=row.id,
                    source=HUMAN,
                    origin="human",
                    parent_id=base.id,
                    iteration=1,
                )
                cand.label = "best"
            msg = queries.add_message(
                session=s, session_id=row.id, role="assistant", content="Use a set."
            )
            queries.add_comment(session=s, session_id=row.id, author=name, text="first look")
            summary = queries.add_code_summary(
                session=s, candidate_id=cand.id, granularity="step-by-step", items=SUMMARY_ITEMS
            )
            now = utcnow()
            done = Job(
                kind="ping",
                session_id=row.id,
                started_by=name,
                state="done",
                params={},
                progress=[],
                routing_tail=[],
                created_at=now,
                finished_at=now,
                result={"worker": "x", "pid": 1},
            )
            # queued with no worker: nothing claims it and nothing reaps it
            queued = Job(
                kind="ping",
                session_id=row.id,
                started_by=name,
                state="queued",
                params={"sleep_s": 0},
                progress=[],
                routing_tail=[],
                created_at=now,
            )
            s.add_all([done, queued])
            s.flush()
            return Seeded(
                row.id,
                name,
                visibility,
                base.id,
                cand.id,
                msg.id,
                summary.id,
                done.id,
                queued.id,
                title,
            )


def snapshot(engine: Engine, session_id: int) -> dict[str, Any] | None:
    """Everything a write could change on a session, read straight from the tables."""
    with unit_of_work(engine) as s:
        row = s.get(OptimizationSession, session_id)
        if row is None:
            return None
        cands = list(
            s.scalars(
                select(Candidate).where(Candidate.session_id == session_id).order_by(Candidate.id)
            )
        )
        cand_ids = [c.id for c in cands]

        def count(model: Any, *where: Any) -> int:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

        jobs = s.scalars(select(Job).where(Job.session_id == session_id).order_by(Job.id))
        return {
            "title": row.title,
            "visibility": row.visibility,
            "author": row.author,
            "tags": list(row.tags or []),
            "notes": row.notes,
            "baseline": row.baseline_source,
            "entry": row.entry_point,
            "workload": row.workload_source,
            "candidates": [(c.id, c.origin, c.label, c.source, dict(c.meta or {})) for c in cands],
            "messages": count(Message, Message.session_id == session_id),
            "comments": count(Comment, Comment.session_id == session_id),
            "tests": count(TestCase, TestCase.session_id == session_id),
            "evaluations": count(Evaluation, Evaluation.candidate_id.in_(cand_ids)),
            "summaries": [
                (x.id, x.items, x.edited_items)
                for x in s.scalars(
                    select(CodeSummary)
                    .where(CodeSummary.candidate_id.in_(cand_ids))
                    .order_by(CodeSummary.id)
                )
            ],
            "conair": count(ConairRound, ConairRound.session_id == session_id),
            "jobs": [(j.id, j.state, bool(j.cancel_requested)) for j in jobs],
            "audit": [
                (e.actor, e.action)
                for e in s.scalars(select(AuditEvent).where(AuditEvent.session_id == session_id))
            ],
        }


def audit_events(
    engine: Engine, session_id: int | None = None
) -> list[tuple[str, str, int | None]]:
    with unit_of_work(engine) as s:
        q = select(AuditEvent).order_by(AuditEvent.id)
        if session_id is not None:
            q = q.where(AuditEvent.session_id == session_id)
        return [(e.actor, e.action, e.session_id) for e in s.scalars(q)]


def _build_world(engine: Engine) -> World:
    closed = _make_ctx(engine, public_readers=False)
    opened = _make_ctx(engine, public_readers=True)
    root = access.sign_in(name="root", ctx=closed)
    alice = access.sign_in(name="alice", ctx=closed)
    bob = access.sign_in(name="bob", ctx=closed)
    victor = access.sign_in(name="victor", ctx=closed)
    access.set_role(victor.user_id, "viewer", actor=root, ctx=closed)
    victor = access.find_user("victor", ctx=closed)
    assert victor is not None
    people = {
        "admin": Person("admin", root, closed),
        "editor": Person("editor", alice, closed),
        "other": Person("other", bob, closed),
        "viewer": Person("viewer", victor, closed),
        "anon": Person("anon", ANONYMOUS, closed),
        "anon+public": Person("anon+public", ANONYMOUS, opened),
    }
    world = World(engine, closed, opened, people, {}, [0])
    for owner in OWNERS:
        for vis in VISIBILITIES:
            world.shared[(owner, vis)] = world.seed(owner, vis)
    return world


def _migrated_sqlite(path: Path) -> Engine:
    from alembic import command

    from db.engine import make_engine
    from tests.conftest import alembic_config

    url = f"sqlite:///{path}"
    command.upgrade(alembic_config(url), "head")
    return make_engine(url)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One SQLite instance for the whole matrix (reads share its sessions; each write cell
    seeds a session of its own)."""
    engine = _migrated_sqlite(tmp_path_factory.mktemp("privacy") / "perfloop.db")
    w = _build_world(engine)
    try:
        yield w
    finally:
        w.closed.close()
        w.open.close()
        engine.dispose()


def expect(condition: bool, value: Any) -> None:
    assert condition, f"unexpected result: {str(value)[:300]}"


def attempt(call: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    try:
        return call(), None
    except (ServiceError, Reached) as exc:
        return None, exc


def _finish_jobs(w: World, *snaps: Any) -> None:
    """Let the ping jobs a cell started end (they take milliseconds) before the next cell."""
    from app.services.jobs import wait_job

    for snap in snaps:
        if snap is not None:
            wait_job(snap.id, timeout=10, actor=w.people["admin"].actor, ctx=w.closed)


# --- reads -----------------------------------------------------------------------------------

ReadCall = Callable[[Person, Seeded], Any]
ReadCheck = Callable[[Any, Seeded], None]


def _read_paths() -> dict[str, tuple[ReadCall, ReadCheck]]:
    from app import services as sv
    from app.services.projects import candidate_patch

    def kw(p: Person) -> dict[str, Any]:
        return {"actor": p.actor, "ctx": p.ctx}

    def is_session(v: Any, w: Seeded) -> None:
        assert v.info.id == w.id and v.info.title == w.title

    def ok(v: Any, w: Seeded) -> None:
        pass  # the call itself (no Forbidden) is what is checked; the value may be None

    return {
        "get_session": (lambda p, w: sv.get_session(w.id, **kw(p)), is_session),
        "session_figures": (
            lambda p, w: sv.session_figures(w.id, **kw(p)),
            lambda v, w: expect(v is not None, v),
        ),
        "best_candidate": (
            lambda p, w: sv.best_candidate(w.id, **kw(p)),
            lambda v, w: expect(v is not None and v.id == w.cand_id, v),
        ),
        "get_candidate": (
            lambda p, w: sv.get_candidate(w.cand_id, **kw(p)),
            lambda v, w: None if v.id == w.cand_id and v.source == HUMAN else pytest.fail(str(v)),
        ),
        "candidate_diff": (
            lambda p, w: sv.candidate_diff(w.base_id, w.cand_id, **kw(p)),
            lambda v, w: None if "seen = set(b)" in v else pytest.fail(v),
        ),
        "list_comments": (
            lambda p, w: sv.list_comments(w.id, **kw(p)),
            lambda v, w: None if [c.text for c in v][:1] == ["first look"] else pytest.fail(str(v)),
        ),
        "get_summary": (
            lambda p, w: sv.get_summary(w.summary_id, **kw(p)),
            lambda v, w: None if v.id == w.summary_id else pytest.fail(str(v)),
        ),
        "list_summaries": (
            lambda p, w: sv.list_summaries(w.cand_id, **kw(p)),
            lambda v, w: None if [x.id for x in v] == [w.summary_id] else pytest.fail(str(v)),
        ),
        "replay": (
            lambda p, w: list(sv.replay(w.id, **kw(p))),
            lambda v, w: expect({"message", "comment"} <= {st.kind for st in v}, v),
        ),
        "get_routing": (lambda p, w: sv.get_routing(w.msg_id, **kw(p)), ok),
        # allowed: NotFound (ConAIR never started on it), never Forbidden
        "conair_state": (lambda p, w: sv.conair_state(w.id, **kw(p)), ok),
        "export_md": (
            lambda p, w: sv.export_session(w.id, "md", **kw(p)),
            lambda v, w: None if w.title in v else pytest.fail(v[:200]),
        ),
        "export_html": (
            lambda p, w: sv.export_session(w.id, "html", **kw(p)),
            lambda v, w: None if w.title in v else pytest.fail(v[:200]),
        ),
        "export_json": (
            lambda p, w: sv.export_session(w.id, "json", **kw(p)),
            lambda v, w: None if w.title in v else pytest.fail(v[:200]),
        ),
        "export_document": (
            lambda p, w: sv.export_document(w.id, **kw(p)),
            lambda v, w: None if isinstance(v, dict) and v else pytest.fail(str(v)[:200]),
        ),
        "candidate_patch": (lambda p, w: candidate_patch(w.id, **kw(p)), ok),
        "get_job": (
            lambda p, w: sv.get_job(w.done_job, **kw(p)),
            lambda v, w: (
                None if v.id == w.done_job and v.session_id == w.id else pytest.fail(str(v))
            ),
        ),
        "wait_job": (
            lambda p, w: sv.wait_job(w.done_job, timeout=0, **kw(p)),
            lambda v, w: None if v.id == w.done_job else pytest.fail(str(v)),
        ),
    }


READS = _read_paths()


def _exports(engine: Engine, session_id: int) -> int:
    return sum(1 for _, action, _ in audit_events(engine, session_id) if action == "export")


#: Authors of the sessions read: alice (an editor) and victor (a viewer now). A session of the
#: admin's reads like one of alice's for everyone but its author, so it is left out of the
#: read and write cells (it is the original of the imports below).
READ_OWNERS = ("editor", "viewer")


@pytest.mark.parametrize("path", list(READS))
@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("owner", READ_OWNERS, ids=[f"by-{o}" for o in READ_OWNERS])
@pytest.mark.parametrize("who", PEOPLE)
def test_read(world: World, who: str, owner: str, visibility: str, path: str) -> None:
    person = world.people[who]
    seeded = world.shared[(owner, visibility)]
    call, check = READS[path]
    allowed = may_read(person.role, visibility, person.is_author(seeded), person.public_readers)
    exporting = path.startswith("export")
    exports = _exports(world.engine, seeded.id) if exporting else 0
    value, exc = attempt(lambda: call(person, seeded))
    if exporting:  # every export is audited, under the reader's name; a refused one is not
        assert _exports(world.engine, seeded.id) == exports + (1 if allowed else 0)
        if allowed:
            assert audit_events(world.engine, seeded.id)[-1] == (
                person.actor.name,
                "export",
                seeded.id,
            )
    if allowed:
        assert not isinstance(exc, Forbidden), f"{who} may read a {visibility} session: {exc}"
        if exc is None:
            check(value, seeded)
        else:  # the one allowed failure: no ConAIR run on it
            assert path == "conair_state" and isinstance(exc, NotFound), repr(exc)
    else:
        assert isinstance(exc, Forbidden), (
            f"{who} may not read {owner}'s {visibility} session, yet {path} gave "
            f"{exc!r} / {str(value)[:200]!r}"
        )
        assert str(exc), "a refusal says why"


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("owner", READ_OWNERS, ids=[f"by-{o}" for o in READ_OWNERS])
@pytest.mark.parametrize("who", PEOPLE)
def test_list_jobs_of_session(world: World, who: str, owner: str, visibility: str) -> None:
    """``list_jobs`` filters: a job appears to exactly those who may read its session."""
    from app.services import list_jobs

    person = world.people[who]
    seeded = world.shared[(owner, visibility)]
    allowed = may_read(person.role, visibility, person.is_author(seeded), person.public_readers)
    mine = {seeded.done_job, seeded.queued_job}
    of_session = {
        j.id for j in list_jobs(seeded.id, reap=False, actor=person.actor, ctx=person.ctx)
    }
    everything = {
        j.id for j in list_jobs(limit=10_000, reap=False, actor=person.actor, ctx=person.ctx)
    }
    assert of_session == (mine if allowed else set())
    assert (mine <= everything) if allowed else not (mine & everything)


# --- the session list --------------------------------------------------------------------------


@pytest.mark.parametrize("who", PEOPLE)
def test_list_sessions(world: World, who: str) -> None:
    """Each person sees exactly the sessions they may read, and the total counts only those
    (not "3 session(s) match; showing 1–2" with hidden ones counted)."""
    from app.services import list_sessions

    person = world.people[who]
    with unit_of_work(world.engine) as s:
        every = [(r.id, r.visibility, r.author) for r in s.scalars(select(OptimizationSession))]
    assert len(every) >= 9
    expected = {
        sid
        for sid, vis, author in every
        if may_read(
            person.role,
            vis,
            person.actor.role is not None and author == person.actor.name,
            person.public_readers,
        )
    }
    rows, total = list_sessions(limit=10_000, actor=person.actor, ctx=person.ctx)
    assert {r.id for r in rows} == expected
    assert total == len(expected)
    # one page of two: the total still counts only the readable ones
    page, total2 = list_sessions(limit=2, actor=person.actor, ctx=person.ctx)
    assert total2 == len(expected) and len(page) == min(2, len(expected))
    assert {r.id for r in page} <= expected
    # filtered by author (alice): the readable ones of hers only
    hers, n_hers = list_sessions(author="alice", limit=10_000, actor=person.actor, ctx=person.ctx)
    want = {sid for sid, vis, author in every if author == "alice" and sid in expected}
    assert {r.id for r in hers} == want and n_hers == len(want)
    # filtered by visibility=private: never another person's private session
    priv, n_priv = list_sessions(
        visibility=("private",), limit=10_000, actor=person.actor, ctx=person.ctx
    )
    want = {sid for sid, vis, author in every if vis == "private" and sid in expected}
    assert {r.id for r in priv} == want and n_priv == len(want)


# --- writes --------------------------------------------------------------------------------------

NEXT_VISIBILITY = {"private": "team", "team": "public", "public": "private"}


@dataclass(frozen=True)
class Write:
    rule: Callable[..., bool]
    call: Callable[[Person, Seeded], Any]
    #: (value, exception, snapshot before, snapshot after, seeded, person) for an allowed call
    check: Callable[[Any, BaseException | None, dict, dict | None, Seeded, Person], None]
    human: bool = True  # seed the session with a human candidate (update_inputs wants none)
    jobs: bool = False  # the call starts a ping job: wait for it to end


def _no_error(exc: BaseException | None) -> None:
    assert exc is None, repr(exc)


def _writes() -> dict[str, Write]:
    from app import services as sv
    from app.services.views import SummaryItem, TestAnswer

    def kw(p: Person) -> dict[str, Any]:
        return {"actor": p.actor, "ctx": p.ctx}

    def title(v, exc, before, after, w, p) -> None:
        _no_error(exc)
        assert after["title"] == "Renamed" and v.title == "Renamed"

    def visibility(v, exc, before, after, w, p) -> None:
        _no_error(exc)
        assert after["visibility"] == NEXT_VISIBILITY[w.visibility]
        assert (p.actor.name, "visibility", w.id) in audit_events(p.ctx.engine, w.id)

    def inputs(v, exc, before, after, w, p) -> None:
        _no_error(exc)
        assert after["workload"] == WORKLOAD + "# changed\n"

    def validation(v, exc, before, after, w, p) -> None:
        assert isinstance(exc, CodeDoesNotParse), repr(exc)  # got past the check, to the code
        assert after["messages"] == before["messages"] + 1  # the validation message

    def deleted(v, exc, before, after, w, p) -> None:
        _no_error(exc)
        assert after is None
        assert (p.actor.name, "delete", w.id) in audit_events(p.ctx.engine, w.id)

    def not_ready(v, exc, before, after, w, p) -> None:
        assert isinstance(exc, InvalidInput) and "not ready" in str(exc), repr(exc)
        assert after == before

    def human(v, exc, before, after, w, p) -> None:
        _no_error(exc)
        assert v.origin == "human" and len(after["candidates"]) == len(before["candidates"]) + 1

    def marked(v, exc, before, after, w, p) -> None:
        _no_error(exc)
        labels = {cid: label for cid, _, label, _, _ in after["candidates"]}
        assert labels[w.base_id] == "best" and labels[w.cand_id] is None

    def cleared(v, exc, before, after, w, p) -> None:
        _no_error(exc)
        assert all(label is None for _, _, label, _, _ in after["candidates"])

    def no_round(v, exc, before, after, w, p) -> None:
        assert isinstance(exc, NotFound) and "ConAIR" in str(exc), repr(exc)
        assert after == before

    def evaluated(v, exc, before, after, w, p) -> None:
        _no_error(exc)
        assert v.status == "ok" and after["evaluations"] == before["evaluations"] + 1

    def reached(v, exc, before, after, w, p) -> None:
        assert isinstance(exc, Reached), repr(exc)

    def same_summary(v, exc, before, after, w, p) -> None:
        assert isinstance(exc, InvalidInput) and "same" in str(exc), repr(exc)
        assert after == before

    def submitted(v, exc, before, after, w, p) -> None:
        _no_error(exc)
        assert v.session_id == w.id and v.kind == "ping"
        assert len(after["jobs"]) == len(before["jobs"]) + 1

    def cancelled(v, exc, before, after, w, p) -> None:
        _no_error(exc)
        assert v.id == w.queued_job and v.state == "cancelled"

    def rerun(v, exc, before, after, w, p) -> None:
        _no_error(exc)
        assert v.rerun_of == w.done_job and len(after["jobs"]) == len(before["jobs"]) + 1

    def commented(v, exc, before, after, w, p) -> None:
        _no_error(exc)
        assert v.author == p.actor.name and after["comments"] == before["comments"] + 1
        assert (p.actor.name, "comment", w.id) in audit_events(p.ctx.engine, w.id)

    same = [
        SummaryItem(text=i["text"], spans=[tuple(x) for x in i["spans"]]) for i in SUMMARY_ITEMS
    ]
    return {
        "update_info_title": Write(
            may_change, lambda p, w: sv.update_session_info(w.id, title="Renamed", **kw(p)), title
        ),
        "update_info_visibility": Write(
            may_change,
            lambda p, w: sv.update_session_info(
                w.id, visibility=NEXT_VISIBILITY[w.visibility], **kw(p)
            ),
            visibility,
        ),
        "update_inputs": Write(
            may_change,
            lambda p, w: sv.update_session_inputs(
                w.id, workload_source=WORKLOAD + "# changed\n", validate=False, **kw(p)
            ),
            inputs,
            human=False,
        ),
        "validate_session": Write(
            may_change, lambda p, w: sv.validate_session(w.id, **kw(p)), validation
        ),
        "delete_session": Write(may_change, lambda p, w: sv.delete_session(w.id, **kw(p)), deleted),
        "run_turn": Write(
            may_change, lambda p, w: sv.run_turn(w.id, "faster please", **kw(p)), not_ready
        ),
        "evaluate_candidate": Write(
            may_change, lambda p, w: sv.evaluate_candidate(w.cand_id, **kw(p)), evaluated
        ),
        "add_human_candidate": Write(
            may_change,
            lambda p, w: sv.add_human_candidate(
                w.id, HUMAN + "\n# mine\n", evaluate=False, **kw(p)
            ),
            human,
        ),
        "mark_best": Write(may_change, lambda p, w: sv.mark_best(w.base_id, **kw(p)), marked),
        "clear_best": Write(may_change, lambda p, w: sv.clear_best(w.id, **kw(p)), cleared),
        "start_conair": Write(may_change, lambda p, w: sv.start_conair(w.id, **kw(p)), not_ready),
        "answer_tests": Write(
            may_change,
            lambda p, w: sv.answer_tests(
                w.id, [TestAnswer(test_case_id=1, answer="accept")], **kw(p)
            ),
            no_round,
        ),
        "summarize": Write(may_change, lambda p, w: sv.summarize(w.cand_id, **kw(p)), reached),
        "apply_summary_edit": Write(
            may_change,
            lambda p, w: sv.apply_summary_edit(w.summary_id, same, **kw(p)),
            same_summary,
        ),
        "submit_job": Write(
            may_change,
            lambda p, w: sv.submit_job("ping", session_id=w.id, params={}, **kw(p)),
            submitted,
            jobs=True,
        ),
        "cancel_job": Write(
            may_change, lambda p, w: sv.cancel_job(w.queued_job, **kw(p)), cancelled
        ),
        "rerun_job": Write(
            may_change, lambda p, w: sv.rerun_job(w.done_job, **kw(p)), rerun, jobs=True
        ),
        "add_comment": Write(
            may_comment, lambda p, w: sv.add_comment(w.id, "a reviewer's note", **kw(p)), commented
        ),
    }


WRITES = _writes()


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """A summary that gets past the access check stops before the model is asked; an
    evaluation is stored as measured without starting the sandbox (so the call runs to its
    end, where it reads the result back for the acting person)."""
    from app.services import iterations, summaries

    def stop(*a: Any, **k: Any) -> Any:
        raise Reached("the model would be asked now")

    def measured(candidate_ids: list[int], ctx: Context, **k: Any) -> dict[int, Any]:
        out = {}
        with unit_of_work(ctx.engine) as s:
            for cid in candidate_ids:
                row = queries.add_evaluation(session=s, candidate_id=cid, backend="fake")
                row.status, row.correct, row.finished_at = "ok", True, utcnow()
                out[cid] = (row.id, {"status": "ok"}, None)
        return out

    monkeypatch.setattr(summaries, "_summarize_source", stop)
    monkeypatch.setattr(iterations, "evaluate_on_pool", measured)


#: Everyone on alice's sessions, and victor on his own (an author demoted to viewer reads his
#: private sessions but no longer changes them).
WRITERS = [(who, "editor") for who in PEOPLE] + [("viewer", "viewer")]


@pytest.mark.parametrize("path", list(WRITES))
@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize(("who", "owner"), WRITERS, ids=[f"{w}-by-{o}" for w, o in WRITERS])
def test_write(
    world: World, no_model: None, who: str, owner: str, visibility: str, path: str
) -> None:
    person = world.people[who]
    write = WRITES[path]
    seeded = world.seed(owner, visibility, human=write.human)
    allowed = write.rule(person.role, visibility, person.is_author(seeded), person.public_readers)
    before = snapshot(world.engine, seeded.id)
    assert before is not None
    value, exc = attempt(lambda: write.call(person, seeded))
    if write.jobs:
        _finish_jobs(world, value)
    after = snapshot(world.engine, seeded.id)
    if allowed:
        assert not isinstance(exc, Forbidden), (
            f"{who} may do {path} on {owner}'s {visibility} session: {exc}"
        )
        write.check(value, exc, before, after, seeded, person)
    else:
        assert isinstance(exc, Forbidden), (
            f"{who} may not do {path} on {owner}'s {visibility} session, yet it gave "
            f"{exc!r} / {str(value)[:200]!r}"
        )
        assert after == before, "a refused call changed the session (or was audited as done)"


# --- creating and importing --------------------------------------------------------------------


def _session_count(engine: Engine) -> int:
    with unit_of_work(engine) as s:
        return int(s.scalar(select(func.count(OptimizationSession.id))) or 0)


CREATES = ("create_session", "create_project_session", "import_session")


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("path", CREATES)
@pytest.mark.parametrize("who", PEOPLE)
def test_create(world: World, who: str, path: str, visibility: str, tmp_path: Path) -> None:
    """Creating and importing need the editor or admin role; the new session is the creator's
    (an import is the importer's, whoever wrote the original) and the act is audited."""
    from app import services as sv
    from app.services.projects import create_project_session

    person = world.people[who]
    original = world.shared[("admin", visibility)]
    document = sv.export_document(original.id, actor=world.people["admin"].actor, ctx=world.closed)
    kw = {"actor": person.actor, "ctx": person.ctx}
    calls = {
        "create_session": lambda: sv.create_session(
            baseline_source=HUMAN,
            entry_point="count_common",
            workload_source=WORKLOAD,
            title=f"new by {who}",
            visibility=visibility,
            validate=False,
            **kw,
        ),
        # allowed: refused further on, because there is no such project (nothing is stored)
        "create_project_session": lambda: create_project_session(
            target="pkg.mod:fn",
            workload_source=WORKLOAD,
            project=str(tmp_path / "no-such-project"),
            visibility=visibility,
            validate=False,
            **kw,
        ),
        "import_session": lambda: sv.import_session(document, source="matrix", **kw),
    }
    count = _session_count(world.engine)
    events = len(audit_events(world.engine))
    value, exc = attempt(calls[path])
    if not may_create(person.role):
        assert isinstance(exc, Forbidden), f"{who} may not {path}, yet: {exc!r} / {value!r}"
        assert _session_count(world.engine) == count
        assert len(audit_events(world.engine)) == events
        return
    assert not isinstance(exc, Forbidden), f"{who} may {path}: {exc}"
    if path == "create_project_session":
        assert isinstance(exc, InvalidInput) and "does not exist" in str(exc), repr(exc)
        assert _session_count(world.engine) == count
        return
    _no_error(exc)
    assert value.info.author == person.actor.name, "the session is its creator's / importer's"
    if path == "create_session":
        assert value.info.visibility == visibility
    action = "create" if path == "create_session" else "import"
    assert (person.actor.name, action, value.info.id) in audit_events(world.engine, value.info.id)
    assert _session_count(world.engine) == count + 1


# --- people, roles, the audit log ----------------------------------------------------------------


def test_first_person_is_admin_later_ones_editors(world: World) -> None:
    users = {
        u.name: u.role
        for u in access.list_users(actor=world.people["admin"].actor, ctx=world.closed)
    }
    assert users == {"root": "admin", "alice": "editor", "bob": "editor", "victor": "viewer"}
    again = access.sign_in(name="alice", ctx=world.closed)
    assert again.role == "editor", "signing in again keeps the role"


@pytest.mark.parametrize("who", [p for p in PEOPLE if p != "admin"])
def test_only_admins_manage_people(world: World, who: str) -> None:
    person = world.people[who]
    bob = world.people["other"].actor
    admin = world.people["admin"].actor
    with pytest.raises(Forbidden):
        access.set_role(bob.user_id, "admin", actor=person.actor, ctx=person.ctx)
    with pytest.raises(Forbidden):
        access.set_role(bob.user_id, "viewer", actor=person.actor, ctx=person.ctx)
    with pytest.raises(Forbidden):
        access.list_users(actor=person.actor, ctx=person.ctx)
    with pytest.raises(Forbidden):
        access.audit_log(actor=person.actor, ctx=person.ctx)
    roles = {u.name: u.role for u in access.list_users(actor=admin, ctx=world.closed)}
    assert roles["bob"] == "editor", "a refused set_role changed the role"


def test_audit_log_holds_each_kind_of_event(world: World) -> None:
    from app import services as sv

    p = world.people
    alice, bob, victor, root = (p[k].actor for k in ("editor", "other", "viewer", "admin"))
    c = world.closed
    view = sv.create_session(
        baseline_source=HUMAN,
        entry_point="count_common",
        workload_source=WORKLOAD,
        title="audited",
        visibility="private",
        validate=False,
        actor=alice,
        ctx=c,
    )
    sid = view.info.id
    sv.update_session_info(sid, visibility="team", actor=alice, ctx=c)
    sv.add_comment(sid, "looks good", actor=victor, ctx=c)
    sv.export_session(sid, "md", actor=bob, ctx=c)
    doc = sv.export_document(sid, actor=bob, ctx=c)
    imported = sv.import_session(doc, source="audit test", actor=bob, ctx=c).info.id
    with pytest.raises(Forbidden):  # a refused export leaves no "export" behind
        sv.export_session(world.shared[("editor", "private")].id, "md", actor=bob, ctx=c)
    sv.delete_session(sid, actor=alice, ctx=c)

    log = access.audit_log(actor=root, ctx=c, limit=100_000)
    events = {(e.actor, e.action, e.session_id) for e in log}
    for wanted in [
        ("alice", "create", sid),
        ("alice", "visibility", sid),
        ("victor", "comment", sid),
        ("bob", "export", sid),
        ("bob", "import", imported),
        ("alice", "delete", sid),
    ]:
        assert wanted in events, wanted
    assert ("bob", "export", world.shared[("editor", "private")].id) not in events
    who_signed_in = {e.actor for e in log if e.action == "sign-in"}
    assert {"root", "alice", "bob", "victor"} <= who_signed_in
    roles = [e for e in log if e.action == "role"]
    assert any(
        e.actor == "root" and e.detail.get("user") == "victor" and e.detail.get("to") == "viewer"
        for e in roles
    )
    # one session's log; the deletion outlives the session
    only = access.audit_log(session_id=sid, actor=root, ctx=c)
    assert {e.action for e in only} >= {"create", "visibility", "comment", "export", "delete"}
    assert all(e.session_id == sid for e in only)


# --- jobs -----------------------------------------------------------------------------------------


def test_jobs_of_a_private_session_are_hidden_and_unstoppable(world: World) -> None:
    """alice runs a job on her private session: bob (another editor) and the viewer can neither
    see it (get_job, list_jobs) nor stop it; alice and the admin can."""
    from app import services as sv

    p = world.people
    alice, bob, victor, root = (p[k].actor for k in ("editor", "other", "viewer", "admin"))
    c = world.closed
    seeded = world.seed("editor", "private")
    job = sv.submit_job("ping", session_id=seeded.id, params={"sleep_s": 30.0}, actor=alice, ctx=c)
    try:
        assert job.started_by == "alice"
        for intruder in (bob, victor, ANONYMOUS):
            with pytest.raises(Forbidden):
                sv.get_job(job.id, actor=intruder, ctx=c)
            with pytest.raises(Forbidden):
                sv.cancel_job(job.id, actor=intruder, ctx=c)
            with pytest.raises(Forbidden):
                sv.rerun_job(job.id, actor=intruder, ctx=c)
            assert job.id not in {j.id for j in sv.list_jobs(actor=intruder, ctx=c, limit=10_000)}
            assert job.id not in {
                j.id for j in sv.list_jobs(running_only=True, actor=intruder, ctx=c)
            }
            assert sv.list_jobs(seeded.id, actor=intruder, ctx=c) == []
        seen = sv.get_job(job.id, actor=alice, ctx=c)
        assert not seen.cancel_requested, "a refused stop left its mark"
        assert job.id in {j.id for j in sv.list_jobs(seeded.id, actor=root, ctx=c)}
        stopped = sv.cancel_job(job.id, actor=alice, ctx=c)
        assert stopped.cancel_requested
    finally:
        done = sv.wait_job(job.id, timeout=10, actor=root, ctx=c)
    assert done.finished


@pytest.mark.parametrize("session", ["no session", "own session", "its session"])
@pytest.mark.parametrize("kind", ["evaluation", "summary", "summary edit", "hand edit"])
def test_a_job_cannot_reach_into_another_persons_session(
    world: World, no_model: None, kind: str, session: str
) -> None:
    """A job whose target is named in its params (a candidate, a summary) must be checked on
    that target's session, not on the ``session_id`` the caller chose: else bob evaluates (or
    summarises, or rewrites) alice's private code through a job that runs with full rights."""
    from app import services as sv
    from app.services import job_kinds

    bob = world.people["other"].actor
    c = world.closed
    target = world.seed("editor", "private")
    own = {"own session": world.seed("other", "team"), "its session": target}.get(session)
    params = {
        "evaluation": {"candidate_id": target.cand_id},
        "summary": {"candidate_id": target.cand_id},
        "summary edit": {"summary_id": target.summary_id, "edited_items": SUMMARY_ITEMS},
        "hand edit": {"source": HUMAN, "parent_id": target.cand_id, "evaluate": False},
    }[kind]
    if job_kinds.KINDS[kind].needs_session and own is None:
        pytest.skip(f"a {kind} job needs a session (needs_session)")
    before = snapshot(world.engine, target.id)
    value, exc = attempt(
        lambda: sv.submit_job(
            kind, session_id=own.id if own else None, params=params, actor=bob, ctx=c
        )
    )
    if value is not None:
        _finish_jobs(world, value)
    # refused: Forbidden, or (bob's own session named) "names rows of session X, not of Y"
    assert value is None and isinstance(exc, Forbidden | InvalidInput), (
        f"bob's {kind} job on alice's private candidate/summary was accepted: {value!r}"
    )
    if session != "own session":
        assert isinstance(exc, Forbidden), repr(exc)
    assert snapshot(world.engine, target.id) == before


# --- PostgreSQL too (a representative subset, filtered in SQL) -----------------------------------


def test_matrix_subset_on_both_backends(engine: Engine) -> None:
    """get_session, update_session_info, add_comment and list_sessions for every person ×
    visibility, on SQLite and on PostgreSQL (the ``engine`` fixture's two parameters)."""
    from app import services as sv

    w = _build_world(engine)
    try:
        failures: list[str] = []
        for who in PEOPLE:
            person = w.people[who]
            for (owner, vis), seeded in w.shared.items():
                if owner == "admin" or (owner == "viewer" and vis != "private"):
                    continue  # alice's three, and victor's private one (his own, as a viewer)
                author = person.is_author(seeded)
                args = (person.role, vis, author, person.public_readers)
                kw = {"actor": person.actor, "ctx": person.ctx}
                sid, note = seeded.id, f"by {who}"
                for path, rule, call in [
                    ("get_session", may_read, partial(sv.get_session, sid, **kw)),
                    (
                        "update_info",
                        may_change,
                        partial(sv.update_session_info, sid, notes=note, **kw),
                    ),
                    ("add_comment", may_comment, partial(sv.add_comment, sid, note, **kw)),
                ]:
                    before = snapshot(engine, seeded.id)
                    _, exc = attempt(call)
                    cell = f"{who}-{owner}-{vis}-{path}"
                    if rule(*args):
                        if exc is not None:
                            failures.append(f"{cell}: allowed, got {exc!r}")
                    elif not isinstance(exc, Forbidden) or snapshot(engine, seeded.id) != before:
                        failures.append(f"{cell}: should be refused, got {exc!r}")
            with unit_of_work(engine) as s:
                every = [
                    (r.id, r.visibility, r.author) for r in s.scalars(select(OptimizationSession))
                ]
            expected = {
                sid
                for sid, vis, author in every
                if may_read(
                    person.role,
                    vis,
                    person.actor.role is not None and author == person.actor.name,
                    person.public_readers,
                )
            }
            rows, total = sv.list_sessions(limit=2, actor=person.actor, ctx=person.ctx)
            if total != len(expected) or not {r.id for r in rows} <= expected:
                failures.append(f"{who}-list_sessions: total {total}, expected {len(expected)}")
        assert not failures, "\n".join(failures)
    finally:
        w.closed.close()
        w.open.close()


@pytest.mark.parametrize("fmt", ["md", "html", "json", "patch"])
def test_every_export_format_is_audited(world: World, fmt: str) -> None:
    """``python -m app export --format md|html|json|patch`` all export the session: each is
    audited under the reader's name."""
    from app import services as sv

    bob = world.people["other"].actor
    seeded = world.shared[("editor", "team")]
    before = _exports(world.engine, seeded.id)
    cand = seeded.cand_id if fmt == "patch" else None
    sv.export_session(seeded.id, fmt, candidate_id=cand, actor=bob, ctx=world.closed)
    assert _exports(world.engine, seeded.id) == before + 1
    assert audit_events(world.engine, seeded.id)[-1] == ("bob", "export", seeded.id)


def test_a_diff_needs_both_sessions_readable(world: World) -> None:
    """bob diffs a candidate he may read against one of alice's private session: refused."""
    from app import services as sv

    bob = world.people["other"].actor
    mine = world.shared[("editor", "team")]
    hers = world.shared[("editor", "private")]
    for old, new in [(mine.cand_id, hers.cand_id), (hers.cand_id, mine.cand_id)]:
        with pytest.raises(Forbidden):
            sv.candidate_diff(old, new, actor=bob, ctx=world.closed)
    assert "seen" in sv.candidate_diff(mine.base_id, mine.cand_id, actor=bob, ctx=world.closed)
