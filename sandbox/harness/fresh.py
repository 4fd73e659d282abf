"""Fresh inputs for every call, at the cost of copying what the inputs hold, no more.

Every call the harness makes (equivalence, timing, profile) gets its own copy of its case's
arguments, so that code which mutates its inputs sees the same inputs on every call and the
next call is not handed what the last one left. ``copy.deepcopy`` copies anything, but pays for
that with a Python-level visit and a memo entry per element: ~0.4 µs per int of a list, so a
list of 20,000 ints costs ~8 ms to copy and ``sum()`` over it 0.1 ms. Timing prepares a fresh
copy for every call of every sample (untimed, but it is most of the wait for a verdict on such
code), and a benchmark harness that did the same never finished calibrating.

A case never changes (only its copies are handed out), so it is planned once
(:func:`copier`): a tree of exact builtin containers over immutable values gets a copier that
rebuilds just the containers (``list.copy`` for a list of ints: ~0.05 ms for the 20,000), and
shares what deepcopy would share too (ints, strs, tuples of them). Anything else — instances,
subclasses of builtins, a container reachable twice (deepcopy keeps such aliasing; a tree copy
would not), nesting deeper than ``MAX_DEPTH`` — makes the whole case go through
``copy.deepcopy``, so every copy is what deepcopy would have made: equal, of the same types,
sharing no mutable object with the original or with another copy.
"""

from __future__ import annotations

import copy
import sys
import types
from collections.abc import Callable

#: Types whose objects deepcopy returns as they are (``copy._deepcopy_atomic``).
ATOMIC = frozenset(
    {
        type(None),
        type(Ellipsis),
        type(NotImplemented),
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        range,
        type,
        types.FunctionType,
        types.BuiltinFunctionType,
        types.CodeType,
        property,
    }
)
MAX_DEPTH = 50

Copier = Callable[[], object]


class _Deepcopy(Exception):
    """This value needs ``copy.deepcopy``'s generality."""


def copier(value: object) -> Copier:
    """A function of no arguments that returns a fresh deep copy of ``value`` each call."""
    try:
        plan = _plan(value, set(), 0)
    except _Deepcopy:
        return lambda: copy.deepcopy(value)
    except RecursionError:
        return lambda: copy.deepcopy(value)
    if plan is None:
        return lambda: value  # nothing mutable in it: shared, as deepcopy would share it
    return plan


def _plan(value: object, seen: set[int], depth: int) -> Copier | None:
    """``None``: ``value`` is immutable all the way down (shared as it is); else its copier.
    ``seen``: the containers met so far (one met twice means aliasing: deepcopy it all)."""
    kind = type(value)
    if kind in ATOMIC:
        return None
    if depth > MAX_DEPTH:
        raise _Deepcopy
    if kind is tuple:
        parts = [_plan(x, seen, depth + 1) for x in value]
        if all(p is None for p in parts):
            return None
        _once(value, seen)
        return _sequence(value, parts, tuple)
    if kind is frozenset:
        if any(_plan(x, seen, depth + 1) is not None for x in value):
            raise _Deepcopy
        return None
    if kind in (list, dict, set, bytearray):
        _once(value, seen)  # before the elements: a list that holds itself is met again
    if kind is list:
        parts = [_plan(x, seen, depth + 1) for x in value]
        if all(p is None for p in parts):
            return value.copy
        return _sequence(value, parts, list)
    if kind is dict:
        if any(_plan(k, seen, depth + 1) is not None for k in value):
            raise _Deepcopy
        parts = [_plan(x, seen, depth + 1) for x in value.values()]
        if all(p is None for p in parts):
            return value.copy
        items = [(k, v, p) for (k, v), p in zip(value.items(), parts, strict=True)]
        return lambda: {k: v if p is None else p() for k, v, p in items}
    if kind is set:
        if any(_plan(x, seen, depth + 1) is not None for x in value):
            raise _Deepcopy
        return value.copy
    if kind is bytearray:
        return lambda: bytearray(value)
    np = sys.modules.get("numpy")
    if np is not None and kind is np.ndarray and not value.dtype.hasobject:
        _once(value, seen)
        return lambda: value.copy(order="K")  # what ndarray.__deepcopy__ makes
    raise _Deepcopy


def _once(value: object, seen: set[int]) -> None:
    if id(value) in seen:
        raise _Deepcopy
    seen.add(id(value))


def _sequence(value: tuple | list, parts: list[Copier | None], kind: type) -> Copier:
    items = [(x, p) for x, p in zip(value, parts, strict=True)]
    return lambda: kind([x if p is None else p() for x, p in items])
