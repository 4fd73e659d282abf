"""Who may do what: the acting person, their role, the visibility of a session — enforced here,
in the services, for every page, link, export, import, job and the CLI.

Every public service that reads or changes a session takes ``actor=`` (an :class:`Actor`);
without one it acts as the context's actor (``Context.actor``), which in the embedded
single-user mode is :func:`local_actor` — the one person at this machine, who may do
everything. Pages always pass the signed-in person (``app.ui.identity.actor()``); the CLI
passes ``--as USER``.

Rules (the privacy matrix in ``tests/services/test_privacy_matrix.py`` checks each):

============  =====================================  ==========================================
visibility    who may read                           who may change (turns, edits, evaluations,
                                                     ConAIR, summaries, best, visibility, delete)
============  =====================================  ==========================================
private       its author, admins                     its author (editor or admin), admins
team          every signed-in person                 the same
public        also anonymous readers, where the      the same
              instance allows them
              (``PERFLOOP_PUBLIC_READERS``)
============  =====================================  ==========================================

Creating and importing a session needs the editor or admin role (an import belongs to the
importer); commenting needs to be signed in and able to read; exporting needs to read; roles
and the audit log are for admins. Reads filter in SQL (lists and their counts only ever see
what the actor may read); a refusal raises :class:`Forbidden` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, false, func, or_, select, true

from app.services.errors import Forbidden, InvalidInput, NotFound

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.config import Settings
    from app.services.context import Context
    from db.models import OptimizationSession

ROLES = ("admin", "editor", "viewer")


@dataclass(frozen=True)
class Actor:
    """The person a service acts for.

    ``name`` is what sessions and comments record as their author. ``role`` is None for an
    anonymous reader. ``local`` is the embedded single-user mode (no sign-in: one person, who
    may do everything); ``system`` is the operator (the CLI without ``--as``) and the job
    runner, which act on what a permitted person asked for.
    """

    name: str
    role: str | None = None
    user_id: int | None = None
    local: bool = False
    system: bool = False

    @property
    def is_admin(self) -> bool:
        return self.local or self.system or self.role == "admin"

    @property
    def signed_in(self) -> bool:
        return self.local or self.system or self.role is not None

    @property
    def can_create(self) -> bool:
        return self.is_admin or self.role == "editor"

    def describe(self) -> str:
        if self.role is None and not (self.local or self.system):
            return "an anonymous reader"
        return f"{self.name} ({'admin' if self.is_admin else self.role})"


ANONYMOUS = Actor(name="anonymous")
SYSTEM = Actor(name="perfloop", system=True)


def local_actor(settings: Settings) -> Actor:
    """The single user of the embedded mode (no sign-in): ``PERFLOOP_AUTHOR``, may do all."""
    return Actor(name=settings.author, role="admin", local=True)


def acting(actor: Actor | None, ctx: Context) -> Actor:
    return actor if actor is not None else ctx.actor


# --- reading --------------------------------------------------------------------------------


def readable(actor: Actor, settings: Settings) -> ColumnElement[bool]:
    """SQL condition on ``OptimizationSession``: the sessions ``actor`` may read."""
    from db.models import OptimizationSession as S

    if actor.is_admin:
        return true()
    if actor.signed_in:
        return or_(S.visibility.in_(("team", "public")), S.author == actor.name)
    if settings.public_readers:
        return S.visibility == "public"
    return false()


def can_read(actor: Actor, row: OptimizationSession, settings: Settings) -> bool:
    if actor.is_admin:
        return True
    if row.visibility == "private":
        return actor.signed_in and row.author == actor.name
    if row.visibility == "team":
        return actor.signed_in
    return actor.signed_in or settings.public_readers


def _read_refusal(actor: Actor, row: OptimizationSession) -> str:
    if row.visibility == "private":
        return (
            f"Session {row.id} is private: only its author and admins may open it "
            f"(you are {actor.describe()})."
        )
    if row.visibility == "team":
        return f"Session {row.id} is visible to signed-in team members only: sign in to open it."
    return f"Session {row.id} is public, but this instance does not allow anonymous readers."


def session_row(s: Session, session_id: int) -> OptimizationSession:
    from db.models import OptimizationSession

    row = s.get(OptimizationSession, session_id)
    if row is None:
        raise NotFound("session", session_id)
    return row


def require_read(
    s: Session, session_id: int, actor: Actor, settings: Settings
) -> OptimizationSession:
    """The session's row, or :class:`Forbidden` (:class:`NotFound` if there is none)."""
    row = session_row(s, session_id)
    if not can_read(actor, row, settings):
        raise Forbidden(_read_refusal(actor, row))
    return row


# --- changing -------------------------------------------------------------------------------


def can_change(actor: Actor, row: OptimizationSession) -> bool:
    """Work the session (turns, edits, evaluations, ConAIR, summaries, best, visibility,
    delete, its jobs): its author while an editor or admin, and admins."""
    if actor.is_admin:
        return True
    return actor.role == "editor" and row.author == actor.name


def require_change(
    s: Session, session_id: int, actor: Actor, settings: Settings
) -> OptimizationSession:
    row = require_read(s, session_id, actor, settings)
    if not can_change(actor, row):
        if actor.role == "viewer":
            why = "viewers read and comment; they do not change sessions"
        else:
            why = f"only its author ({row.author}) and admins may change it"
        raise Forbidden(f"You ({actor.describe()}) may not change session {row.id}: {why}.")
    return row


def require_create(actor: Actor, what: str = "create sessions") -> None:
    if not actor.can_create:
        raise Forbidden(
            f"You ({actor.describe()}) may not {what}: that needs the editor or admin role "
            "(an admin sets roles on the Admin page)."
        )


def require_comment(s: Session, session_id: int, actor: Actor, settings: Settings) -> None:
    require_read(s, session_id, actor, settings)
    if not actor.signed_in:
        raise Forbidden("Sign in to comment.")


def require_admin(actor: Actor, what: str) -> None:
    if not actor.is_admin:
        raise Forbidden(f"Only admins may {what} (you are {actor.describe()}).")


def session_of_candidate(s: Session, candidate_id: int) -> int:
    from db.models import Candidate

    cand = s.get(Candidate, candidate_id)
    if cand is None:
        raise NotFound("candidate", candidate_id)
    return cand.session_id


def session_of_message(s: Session, message_id: int) -> int:
    from db.models import Message

    msg = s.get(Message, message_id)
    if msg is None:
        raise NotFound("message", message_id)
    return msg.session_id


# --- people ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserView:
    id: int
    name: str
    display_name: str | None
    email: str | None
    role: str
    created_at: Any
    last_seen_at: Any


def _user_view(row: Any) -> UserView:
    return UserView(
        row.id, row.name, row.display_name, row.email, row.role, row.created_at, row.last_seen_at
    )


def _actor_of(row: Any) -> Actor:
    return Actor(name=row.name, role=row.role, user_id=row.id)


def sign_in(
    *,
    name: str,
    email: str | None = None,
    display_name: str | None = None,
    issuer: str | None = None,
    subject: str | None = None,
    ctx: Context | None = None,
) -> Actor:
    """The person behind a sign-in (or a CLI ``--as``), registered on first sight: the first
    person of the instance becomes admin, later ones get ``PERFLOOP_NEW_USER_ROLE``."""
    from app.services.context import get_context
    from db.engine import unit_of_work
    from db.models import User, utcnow

    c = get_context(ctx)
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A sign-in needs a name (the provider sent no e-mail and no sub).")
    with unit_of_work(c.engine) as s:
        row = None
        if issuer and subject:
            row = s.scalar(select(User).where(User.issuer == issuer, User.subject == subject))
        if row is None:
            row = s.scalar(select(User).where(User.name == name))
            if row is not None and row.subject and (row.issuer, row.subject) != (issuer, subject):
                # the name belongs to another account (another provider, or another sub with
                # the same e-mail): never hand it over
                raise Forbidden(
                    f"The name {name} belongs to another account here; sign in with that "
                    "account, or ask an admin."
                )
            if row is not None and issuer and subject:
                row.issuer, row.subject = issuer, subject  # first sign-in of a CLI-named person
        first = row is None and not s.scalar(select(func.count(User.id)))
        if row is None:
            role = "admin" if first else c.settings.new_user_role
            row = User(
                name=name,
                email=email,
                display_name=display_name,
                issuer=issuer,
                subject=subject,
                role=role,
            )
            s.add(row)
            s.flush()
            audit(s, Actor(name=name, role=role), "sign-in", detail={"first": first, "role": role})
        else:
            row.email = email or row.email
            row.display_name = display_name or row.display_name
        row.last_seen_at = utcnow()
        return _actor_of(row)


def find_user(name: str, *, ctx: Context | None = None) -> Actor | None:
    from app.services.context import get_context
    from db.engine import unit_of_work
    from db.models import User

    c = get_context(ctx)
    with unit_of_work(c.engine) as s:
        row = s.scalar(select(User).where(User.name == name))
        return _actor_of(row) if row is not None else None


def list_users(*, actor: Actor | None = None, ctx: Context | None = None) -> list[UserView]:
    from app.services.context import get_context
    from db.engine import unit_of_work
    from db.models import User

    c = get_context(ctx)
    require_admin(acting(actor, c), "list users")
    with unit_of_work(c.engine) as s:
        return [_user_view(r) for r in s.scalars(select(User).order_by(User.id))]


def set_role(
    user_id: int, role: str, *, actor: Actor | None = None, ctx: Context | None = None
) -> UserView:
    """An admin sets a person's role. The last admin cannot give up the role (someone must be
    able to manage the instance)."""
    from app.services.context import get_context
    from db.engine import unit_of_work
    from db.models import User

    c = get_context(ctx)
    who = acting(actor, c)
    require_admin(who, "set roles")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}; got {role!r}", field="role")
    with unit_of_work(c.engine) as s:
        row = s.get(User, user_id)
        if row is None:
            raise NotFound("user", user_id)
        if row.role == "admin" and role != "admin":
            admins = s.scalar(select(func.count(User.id)).where(User.role == "admin"))
            if admins <= 1:
                raise InvalidInput(
                    f"{row.name} is the only admin: make someone else admin first.", field="role"
                )
        before, row.role = row.role, role
        audit(s, who, "role", detail={"user": row.name, "from": before, "to": role})
        return _user_view(row)


# --- the audit log --------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditView:
    id: int
    at: Any
    actor: str
    action: str
    session_id: int | None
    detail: dict[str, Any]


def audit(
    s: Session,
    actor: Actor,
    action: str,
    *,
    session_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record ``action`` in the caller's unit of work (it commits with the change itself)."""
    from db.models import AuditEvent

    s.add(AuditEvent(actor=actor.name, action=action, session_id=session_id, detail=detail or {}))


def audit_log(
    *,
    session_id: int | None = None,
    limit: int = 200,
    actor: Actor | None = None,
    ctx: Context | None = None,
) -> list[AuditView]:
    """The newest audit events (admins only)."""
    from app.services.context import get_context
    from db.engine import unit_of_work
    from db.models import AuditEvent

    c = get_context(ctx)
    require_admin(acting(actor, c), "read the audit log")
    with unit_of_work(c.engine) as s:
        stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if session_id is not None:
            stmt = stmt.where(AuditEvent.session_id == session_id)
        return [
            AuditView(r.id, r.at, r.actor, r.action, r.session_id, dict(r.detail or {}))
            for r in s.scalars(stmt)
        ]


@dataclass(frozen=True)
class Permissions:
    """What the acting person may do with one session (pages hide what they may not; the
    services refuse it either way)."""

    read: bool
    change: bool
    comment: bool


def permissions(
    session_id: int | None, *, actor: Actor | None = None, ctx: Context | None = None
) -> Permissions:
    """``session_id`` None: what may be done outside a session (create = ``change``)."""
    from app.services.context import get_context
    from db.engine import unit_of_work

    c = get_context(ctx)
    who = acting(actor, c)
    if session_id is None:
        return Permissions(read=True, change=who.can_create, comment=False)
    with unit_of_work(c.engine) as s:
        row = session_row(s, session_id)
        read = can_read(who, row, c.settings)
        return Permissions(
            read=read, change=read and can_change(who, row), comment=read and who.signed_in
        )
