"""perfloop's data layer: typed models, engines/units of work, and query functions."""

from db.engine import dispose_engines, get_engine, make_engine, unit_of_work
from db.errors import DatabaseError, InvalidValue, NotFound
from db.models import Base

__all__ = [
    "Base",
    "DatabaseError",
    "InvalidValue",
    "NotFound",
    "dispose_engines",
    "get_engine",
    "make_engine",
    "unit_of_work",
]
