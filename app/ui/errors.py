"""The one place that turns any exception into what the person sees: a single clear ``st.error``
(never a traceback), saying what failed, whether retrying can help, and that nothing typed was
lost. Pages wrap every service call in ``with guard("creating the session"):``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import streamlit as st

log = logging.getLogger("perfloop.ui")


@dataclass(frozen=True)
class UserMessage:
    text: str
    hint: str = ""  # what the person can do about it


def _is(exc: BaseException, module: str, name: str) -> bool:
    return any(c.__name__ == name and c.__module__ == module for c in type(exc).__mro__)


def message_for(exc: BaseException, *, doing: str = "") -> UserMessage:
    """What to tell the person about ``exc`` (pure: no Streamlit, unit tested)."""
    what = f" while {doing}" if doing else ""
    if _is(exc, "app.services.errors", "ServiceError"):
        hint = ""
        stored = getattr(exc, "stored", {}) or {}
        if "session_id" in stored:
            hint = f"Your input is saved as session #{stored['session_id']}; fix it and retry."
        elif stored:
            hint = "What was produced so far is saved."
        if getattr(exc, "retryable", False):
            hint = (hint + " Trying again in a moment may help.").strip()
        return UserMessage(str(exc), hint)
    if _is(exc, "app.llm.errors", "LLMError"):
        hint = "Trying again in a moment may help." if getattr(exc, "retryable", False) else ""
        return UserMessage(f"The language model call failed{what}: {exc}", hint)
    if _is(exc, "app.moe.errors", "MoEError"):
        return UserMessage(f"The local model failed{what}: {exc}")
    if type(exc).__module__.split(".")[0] == "sandbox":
        return UserMessage(
            f"The sandbox could not run{what}: {exc}",
            "Check the sandbox backend on the Settings page.",
        )
    if _is(exc, "db.errors", "DatabaseError"):
        return UserMessage(f"The database refused{what}: {exc}")
    if type(exc).__module__.startswith("sqlalchemy"):
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return UserMessage(
            f"The database could not be reached{what} ({type(exc).__name__}: {first[:200]}).",
            "Check the database on the Settings page; nothing you typed was lost.",
        )
    if isinstance(exc, NotImplementedError):
        return UserMessage(f"This part of perfloop is not available yet{what}.")
    return UserMessage(
        f"Something went wrong{what}: {type(exc).__name__}: {exc}",
        "Nothing you typed was lost. The details are in the server log.",
    )


def message_for_job(error: str | None, error_type: str | None, *, doing: str = "") -> UserMessage:
    """The message for a failed background job (its snapshot holds the text and class name)."""
    if error_type in _SERVICE_ERRORS:
        return UserMessage(error or "failed")
    what = f" while {doing}" if doing else ""
    if error_type == "NotImplementedError":
        return UserMessage(f"This part of perfloop is not available yet{what}.")
    first = (error or "").strip().splitlines()[0] if error else ""
    return UserMessage(
        f"Something went wrong{what}: {error_type}: {first}",
        "Nothing you typed was lost. The details are in the server log.",
    )


_SERVICE_ERRORS = {
    "ServiceError",
    "NotFound",
    "InvalidInput",
    "CodeDoesNotParse",
    "EntryNotFound",
    "WorkloadError",
    "BaselineTestsFail",
    "SandboxFailed",
    "ModelError",
    "NoCodeInReply",
    "Cancelled",
    "ImportFailed",
}


def show_message(msg: UserMessage, *, icon: str = "🚫") -> None:
    st.error(msg.text + (f"\n\n{msg.hint}" if msg.hint else ""), icon=icon)


def show_error(exc: BaseException, *, doing: str = "") -> None:
    msg = message_for(exc, doing=doing)
    if not _is(exc, "app.services.errors", "ServiceError"):
        log.error("error %s", doing or "in a page", exc_info=exc)
    show_message(msg)


@contextmanager
def guard(doing: str = "") -> Iterator[None]:
    """Run a block; any exception (but Streamlit's own control flow) becomes one ``st.error``."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the page must never show a traceback
        if _is_streamlit_control_flow(exc):
            raise
        show_error(exc, doing=doing)


def _is_streamlit_control_flow(exc: BaseException) -> bool:
    # st.rerun / st.stop / st.switch_page raise these; they must pass through.
    return any(c.__name__ == "ScriptControlException" for c in type(exc).__mro__)


_FLASH = "ui:flash"


@contextmanager
def capture(doing: str = "", *, slot: str = "main") -> Iterator[None]:
    """Like ``guard`` for widget callbacks (which run before the page is drawn): the message is
    kept and shown by ``show_flash(slot)`` where the page wants it."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the page must never show a traceback
        if not _is(exc, "app.services.errors", "ServiceError"):
            log.error("error %s", doing or "in a callback", exc_info=exc)
        flash(message_for(exc, doing=doing), slot=slot)


def flash(msg: UserMessage, *, slot: str = "main") -> None:
    st.session_state.setdefault(_FLASH, {})[slot] = msg


def show_flash(slot: str = "main") -> None:
    msg = st.session_state.get(_FLASH, {}).pop(slot, None)
    if msg is not None:
        show_message(msg)
