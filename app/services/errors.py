"""Errors of the services layer. Each carries a message written for the person using perfloop;
``app/ui`` shows ``str(exc)`` as is, the CLI prints it.

    ServiceError                    anything a use-case refuses or cannot finish
     ├── NotFound                   no session / candidate / summary / job with that id
     ├── Forbidden                  the acting person may not read or change that (why: str)
     ├── InvalidInput               the person's input is wrong; nothing was evaluated
     │    ├── CodeDoesNotParse      baseline, candidate, workload or tests: SyntaxError + line
     │    ├── EntryNotFound         the entry point is not defined at the module's top level
     │    ├── WorkloadError         the workload has no cases(), it raised, or yields nothing
     │    └── BaselineTestsFail     the tests do not pass on the baseline
     ├── SandboxFailed              the sandbox could not run an evaluation (not: the code failed)
     ├── ModelError                 the LLM call failed (wraps app.llm.LLMError: .retryable)
     ├── NoCodeInReply              the reply held no usable code block (the reply is stored)
     ├── Cancelled                  a background job was cancelled by the person
     └── ImportFailed               an exported JSON document cannot be imported

Where a service stores something before it fails (the session before validation, the reply
before code extraction, the partial reply before a provider error) the exception says so in
``stored`` (ids of the rows kept), so the UI can point at them.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base of the services' errors; ``str(exc)`` is the message for the person."""

    def __init__(self, message: str, *, stored: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.stored: dict[str, Any] = dict(stored or {})


class NotFound(ServiceError):
    def __init__(self, what: str, ident: object) -> None:
        super().__init__(f"{what} {ident} does not exist")
        self.what = what
        self.ident = ident


class Forbidden(ServiceError):
    """The acting person may not do this (see ``app.services.access``); nothing changed."""


class InvalidInput(ServiceError):
    """The person's input is wrong. ``field`` names it: baseline, entry, workload, tests."""

    field: str = ""

    def __init__(
        self, message: str, *, field: str = "", line: int | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.field = field or self.field
        self.line = line


class CodeDoesNotParse(InvalidInput):
    pass


class EntryNotFound(InvalidInput):
    field = "entry"


class WorkloadError(InvalidInput):
    field = "workload"


class BaselineTestsFail(InvalidInput):
    field = "tests"


class SandboxFailed(ServiceError):
    pass


class ModelError(ServiceError):
    """The LLM call failed; ``retryable`` says whether trying again later may help."""

    def __init__(self, message: str, *, retryable: bool = False, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retryable = retryable


class NoCodeInReply(ServiceError):
    pass


class Cancelled(ServiceError):
    def __init__(self, message: str = "cancelled", **kw: Any) -> None:
        super().__init__(message, **kw)


class ImportFailed(ServiceError):
    pass
