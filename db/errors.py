"""Errors of the data layer.

DatabaseError                 anything the data layer refuses
 ├── NotFound                 no row with that id (or not visible to the caller)
 └── InvalidValue             a value outside the allowed set (role, origin, status, ...)
"""


class DatabaseError(Exception):
    """Base of the data layer's errors."""


class NotFound(DatabaseError):
    def __init__(self, what: str, ident: object) -> None:
        super().__init__(f"{what} {ident} does not exist")
        self.what = what
        self.ident = ident


class InvalidValue(DatabaseError):
    pass
