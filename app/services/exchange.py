"""Export a session as Markdown, self-contained offline HTML (plotly.js inline) or JSON, and
import JSON into another instance losslessly."""

from __future__ import annotations

from typing import Any, Literal

from app.services.context import Context
from app.services.views import SessionView

ExportFormat = Literal["md", "html", "json"]
#: Version of the JSON document; bump on incompatible changes, keep importing old ones.
EXPORT_VERSION = 1


def export_session(session_id: int, fmt: ExportFormat, *, ctx: Context | None = None) -> str:
    """The session as text in ``fmt`` (``md``, ``html`` or ``json``)."""
    raise NotImplementedError


def export_document(session_id: int, *, ctx: Context | None = None) -> dict[str, Any]:
    """The JSON export as a dict: every row of the session, routing traces base64-encoded."""
    raise NotImplementedError


def import_session(
    document: str | bytes | dict[str, Any], *, ctx: Context | None = None
) -> SessionView:
    """Import an exported JSON document as a new session (new ids, same content)."""
    raise NotImplementedError
