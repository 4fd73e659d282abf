"""Export a session as Markdown, self-contained offline HTML (plotly.js inline) or JSON, and
import JSON into another instance losslessly.

The JSON document holds every column of every row of the session (binary routing traces as
base64), so an import reproduces it exactly except for the row ids, which are renumbered; ids
inside JSON columns (``candidate_id`` in a ConAIR ranking, ``parent_id`` in a message's meta…)
are renumbered with them.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from app.services.access import Actor, acting, audit, require_create, require_read
from app.services.context import Context, get_context
from app.services.errors import ImportFailed
from app.services.views import SessionView
from db.engine import unit_of_work
from db.models import (
    Candidate,
    CodeSummary,
    Comment,
    ConairRound,
    Evaluation,
    Message,
    OptimizationSession,
    RoutingTrace,
    TestCase,
)

ExportFormat = Literal["md", "html", "json", "patch"]
#: Version of the JSON document; bump on incompatible changes, keep importing old ones.
EXPORT_VERSION = 1
FORMAT_NAME = "perfloop-session"

# (document key, model) in an order where every foreign key points backwards.
TABLES: list[tuple[str, type]] = [
    ("messages", Message),
    ("test_cases", TestCase),
    ("candidates", Candidate),
    ("evaluations", Evaluation),
    ("summaries", CodeSummary),
    ("routing_traces", RoutingTrace),
    ("comments", Comment),
    ("conair_rounds", ConairRound),
]
# Which id space a foreign-key column (or a key inside a JSON column) refers to.
REFS = {
    "candidate_id": "candidates",
    "candidate_ids": "candidates",
    "passing_candidate_ids": "candidates",
    "failing_candidate_ids": "candidates",
    "parent_id": "candidates",
    "message_id": "messages",
    "reply_id": "messages",
    "test_case_id": "test_cases",
    "test_case_ids": "test_cases",
    "tests_shown": "test_cases",
    "summary_id": "summaries",
}


# --- rows <-> plain JSON --------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        # SQLite hands back naive datetimes (stored as UTC): export every one as aware UTC.
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return {"$datetime": aware.astimezone(UTC).isoformat()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$base64": base64.b64encode(bytes(value)).decode()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        if "$datetime" in value:
            return datetime.fromisoformat(value["$datetime"])
        if "$base64" in value:
            return base64.b64decode(value["$base64"])
    return value


def _columns(model: type) -> list[str]:
    return [c.key for c in inspect(model).column_attrs]


def _row_dict(row: Any, skip: tuple[str, ...] = ("session_id",)) -> dict[str, Any]:
    return {k: _encode(getattr(row, k)) for k in _columns(type(row)) if k not in skip}


def _session_rows(s: Session, session_id: int) -> dict[str, list[Any]]:
    cand_ids = select(Candidate.id).where(Candidate.session_id == session_id)
    msg_ids = select(Message.id).where(Message.session_id == session_id)
    by_session = lambda m: select(m).where(m.session_id == session_id).order_by(m.id)  # noqa: E731
    return {
        "messages": list(s.scalars(by_session(Message))),
        "test_cases": list(s.scalars(by_session(TestCase))),
        "candidates": list(s.scalars(by_session(Candidate))),
        "evaluations": list(
            s.scalars(
                select(Evaluation)
                .where(Evaluation.candidate_id.in_(cand_ids))
                .order_by(Evaluation.id)
            )
        ),
        "summaries": list(
            s.scalars(
                select(CodeSummary)
                .where(CodeSummary.candidate_id.in_(cand_ids))
                .order_by(CodeSummary.id)
            )
        ),
        "routing_traces": list(
            s.scalars(
                select(RoutingTrace)
                .where(RoutingTrace.message_id.in_(msg_ids))
                .order_by(RoutingTrace.id)
            )
        ),
        "comments": list(s.scalars(by_session(Comment))),
        "conair_rounds": list(s.scalars(by_session(ConairRound))),
    }


def export_document(
    session_id: int, *, actor: Actor | None = None, ctx: Context | None = None
) -> dict[str, Any]:
    """The JSON export as a dict: every row of the session, routing traces base64-encoded.
    Whoever may read the session may export it; each export is audited."""
    c = get_context(ctx)
    who = acting(actor, c)
    with unit_of_work(c.engine) as s:
        sess = require_read(s, session_id, who, c.settings)
        audit(s, who, "export", session_id=session_id, detail={"format": "json"})
        doc: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": EXPORT_VERSION,
            "session": _row_dict(sess, skip=()),
        }
        for key, rows in _session_rows(s, session_id).items():
            doc[key] = [_row_dict(r) for r in rows]
        return doc


def _remap(value: Any, maps: dict[str, dict[int, int]], key: str | None = None) -> Any:
    """Renumber ids inside JSON values by the key they sit under (see ``REFS``)."""
    space = REFS.get(key or "")
    if space is not None:
        table = maps.get(space, {})
        if isinstance(value, int) and not isinstance(value, bool):
            return table.get(value, value)
        if isinstance(value, list):
            return [table.get(v, v) if isinstance(v, int) else _remap(v, maps) for v in value]
    if isinstance(value, dict):
        return {k: _remap(v, maps, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_remap(v, maps, key) for v in value]
    return value


#: The tag an imported session carries (its notes start with the full mark).
IMPORTED_TAG = "imported"


def import_mark(source: str, when: datetime | None = None) -> str:
    """The line that tells an imported session from its original."""
    when = when or datetime.now(UTC)
    return f"imported from {source} on {when:%Y-%m-%d %H:%M} UTC"


def import_session(
    document: str | bytes | dict[str, Any],
    *,
    source: str | None = None,
    actor: Actor | None = None,
    ctx: Context | None = None,
) -> SessionView:
    """Import an exported JSON document as a new session (new ids, same content), marked
    "imported from <source> on <date>" (``source``: the file name or the instance it came
    from; default: the original session's id) in its notes and with the ``imported`` tag.
    The import belongs to the importer (its author; editors and admins import)."""
    from app.services.sessions import get_session

    c = get_context(ctx)
    who = acting(actor, c)
    require_create(who, "import sessions")
    if isinstance(document, str | bytes):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise ImportFailed(f"This is not a JSON document: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise ImportFailed("This JSON is not a perfloop session export (no format marker).")
    version = document.get("version")
    if not isinstance(version, int) or version > EXPORT_VERSION:
        raise ImportFailed(
            f"This export has version {version!r}; this perfloop reads up to {EXPORT_VERSION}."
        )
    original = (document.get("session") or {}).get("id") if isinstance(document, dict) else None
    mark = import_mark(source or f"session #{original} of another perfloop")
    try:
        with unit_of_work(c.engine) as s:
            session_id = _import(s, document)
            row = s.get(OptimizationSession, session_id)
            row.tags = [*[t for t in (row.tags or []) if t != IMPORTED_TAG], IMPORTED_TAG]
            row.notes = mark + (f"\n\n{row.notes}" if row.notes else "")
            row.author = who.name
            flag_modified(row, "updated_at")  # keep the original's, not the moment of the mark
            audit(s, who, "import", session_id=session_id, detail={"from": mark})
    except ImportFailed:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ImportFailed(f"The export is incomplete or damaged: {exc!r}") from exc
    return get_session(session_id, actor=who, ctx=c)


def _import(s: Session, doc: dict[str, Any]) -> int:
    fields = {k: _decode(v) for k, v in doc["session"].items() if k != "id"}
    sess = OptimizationSession(
        **{k: v for k, v in fields.items() if k in _columns(OptimizationSession)}
    )
    s.add(sess)
    s.flush()
    maps: dict[str, dict[int, int]] = {}
    imported: list[tuple[Any, dict[str, Any]]] = []  # (row, its JSON columns as exported)
    for key, model in TABLES:
        table = maps.setdefault(key, {})
        parents: list[tuple[Any, int]] = []
        for raw in doc.get(key, []):
            values = {k: _decode(v) for k, v in raw.items() if k in _columns(model)}
            old_id = values.pop("id")
            json_cols = {k: v for k, v in values.items() if isinstance(v, dict | list)}
            for col, v in list(values.items()):
                # Foreign-key columns point at rows imported earlier (tables are in order);
                # a candidate's parent may come later in the same table.
                if (
                    col in REFS
                    and isinstance(v, int)
                    and not (model is Candidate and col == "parent_id")
                ):
                    values[col] = maps[REFS[col]][v]
            parent = values.pop("parent_id", None) if model is Candidate else None
            if "session_id" in _columns(model):
                values["session_id"] = sess.id
            row = model(**values)
            s.add(row)
            s.flush()
            table[old_id] = row.id
            imported.append((row, json_cols))
            if parent is not None:
                parents.append((row, parent))
        for row, parent in parents:
            row.parent_id = table[parent]
    # JSON columns may name rows of any table: renumber them once every id is known.
    for row, json_cols in imported:
        for col, v in json_cols.items():
            setattr(row, col, _remap(v, maps, col))
    s.flush()
    return sess.id


def canonical_document(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with every id renumbered 1..n per table in order, and without the marks
    of import (tag and notes line), to compare the content of exports."""
    maps: dict[str, dict[int, int]] = {}
    for key, _ in TABLES:
        maps[key] = {raw["id"]: i for i, raw in enumerate(doc.get(key, []), 1)}
    out: dict[str, Any] = {"format": doc["format"], "version": doc["version"]}
    session = dict(doc["session"])
    session.pop("id", None)
    if isinstance(session.get("tags"), list):
        session["tags"] = [t for t in session["tags"] if t != IMPORTED_TAG]
    notes = session.get("notes")
    while isinstance(notes, str) and notes.startswith("imported from "):
        notes = notes.split("\n\n", 1)[1] if "\n\n" in notes else ""
    if notes is not None:
        session["notes"] = notes
    out["session"] = session
    for key, _ in TABLES:
        rows = []
        for raw in doc.get(key, []):
            row = {}
            for col, v in raw.items():
                if col == "id":
                    row[col] = maps[key][v]
                elif col in REFS and isinstance(v, int):
                    row[col] = maps[REFS[col]].get(v, v)
                else:
                    row[col] = _remap(v, maps, col)
            rows.append(row)
        out[key] = rows
    return out


# --- Markdown and HTML ----------------------------------------------------------------------


def export_session(
    session_id: int,
    fmt: ExportFormat,
    *,
    candidate_id: int | None = None,
    actor: Actor | None = None,
    ctx: Context | None = None,
) -> str:
    """The session as text in ``fmt`` (``md``, ``html``, ``json``, or ``patch``: a candidate,
    default the best, as a patch against the original file); each export is audited."""
    from app.services import report

    c = get_context(ctx)
    who = acting(actor, c)
    if fmt == "json":
        doc = export_document(session_id, actor=who, ctx=c)
        return json.dumps(doc, indent=1, ensure_ascii=False)
    if fmt not in ("md", "html", "patch"):
        raise ValueError(f"unknown export format {fmt!r}; choose md, html, json or patch")
    if fmt == "patch":
        from app.services.projects import candidate_patch

        text = candidate_patch(session_id, candidate_id, actor=who, ctx=c)
        with unit_of_work(c.engine) as s:
            audit(s, who, "export", session_id=session_id, detail={"format": fmt})
        return text
    from app.services.sessions import load_view

    with unit_of_work(c.engine) as s:
        require_read(s, session_id, who, c.settings)
        audit(s, who, "export", session_id=session_id, detail={"format": fmt})
        view = load_view(s, session_id)
    return report.markdown(view) if fmt == "md" else report.html(view)
