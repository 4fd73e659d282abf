"""Usage errors of the sandbox package: the one place callers catch.

Candidate misbehaviour (crashes, timeouts, tampering…) is never an exception: it is a
``status`` in the verdict. These exceptions mean the evaluation itself could not be run as asked::

    SandboxError                 base class; str(e) is a message fit for the user
    ├── InvalidTask              the task dict / TASK.json is malformed (missing field, bad type)
    │   └── InvalidLimits        a limit is not a positive number, or an unknown limit was given
    └── BackendUnavailable       the chosen backend cannot run here (bwrap missing, no Docker
        │                        engine, image not built, 'process' not explicitly allowed)
        └── UnknownBackend       no backend of that name exists
"""

from __future__ import annotations


class SandboxError(Exception):
    """Base class of every error the sandbox raises for a usage problem."""


class InvalidTask(SandboxError):
    """The task is malformed; the message names the field and what was expected."""


class InvalidLimits(InvalidTask):
    """A resource limit is malformed."""


class BackendUnavailable(SandboxError):
    """The requested backend cannot run on this machine; the message says why and what to do."""

    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(f"sandbox backend {backend!r} is unavailable: {reason}")
        self.backend = backend
        self.reason = reason


class UnknownBackend(BackendUnavailable):
    """No backend of that name exists."""

    def __init__(self, backend: str, known: list[str]) -> None:
        super().__init__(backend, f"unknown backend; choose one of {', '.join(known)}")
