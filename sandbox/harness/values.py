"""Canonical encoding of Python values, and the equality used to judge equivalence.

Workers encode outputs (and inputs after the call, to compare mutation) into JSON-able trees;
the supervisor compares trees and never unpickles anything the code under test produced.

Equality rules (documented contract):

- numbers compare by value across int/float/bool/complex (as Python's ``==``); when a float is
  involved, ``math.isclose(rel_tol=1e-9, abs_tol=1e-12)``, and NaN equals NaN;
- str, bytes, None: exact; list and tuple are different kinds (as in Python), namedtuples are
  tuples; dicts compare keys exactly and values with these rules, order-insensitively;
- sets/frozensets: exact, order-insensitive;
- numpy arrays: same shape and ``numpy.allclose(rtol=1e-5, atol=1e-8, equal_nan=True)`` for
  numbers (dtype may differ), exact for anything else; numpy scalars are numbers;
- dataclasses: same class name and equal fields; other objects: same class name and equal
  ``__dict__`` (or equal ``repr`` when they have none);
- a raised exception is an output: same exception class expected, the message is shown only;
- a value with more than ``budget`` elements is "too large to compare" and never equal.
"""

from __future__ import annotations

import base64
import math
import sys

REL_TOL = 1e-9
ABS_TOL = 1e-12
DEFAULT_BUDGET = 2_000_000  # elements (a str/bytes counts len/8: at most 16 MB of text)


class _Budget:
    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self, n: int = 1) -> bool:
        self.left -= n
        return self.left >= 0


def _qualname(obj_type: type) -> str:
    module = getattr(obj_type, "__module__", "")
    name = getattr(obj_type, "__qualname__", obj_type.__name__)
    return name if module in ("builtins", None, "") else f"{module}.{name}"


def encode_exception(exc: BaseException) -> list:
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a hostile __str__
        message = "<unprintable>"
    return ["exception", _qualname(type(exc)), message[:500]]


def encode(value: object, budget: int = DEFAULT_BUDGET) -> list:
    """Encode ``value``; never raises (unencodable parts become reprs or markers)."""
    b = _Budget(budget)
    try:
        return _encode(value, b, set(), 0)
    except _TooLarge:
        return ["toolarge", _qualname(type(value)), _size_hint(value)]
    except RecursionError:
        return ["toolarge", _qualname(type(value)), "too deeply nested"]


class _TooLarge(Exception):
    pass


def _size_hint(value: object) -> str:
    try:
        return f"{len(value):,} items"  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001
        return "unknown size"


def _encode(v: object, b: _Budget, path: set, depth: int) -> list:
    if not b.take():
        raise _TooLarge
    if v is None:
        return ["none"]
    if isinstance(v, bool):
        return ["bool", v]
    if isinstance(v, int):
        return ["int", str(int(v))]
    if isinstance(v, float):
        return ["float", float(v)]
    if isinstance(v, complex):
        return ["complex", v.real, v.imag]
    if isinstance(v, str):
        if not b.take(len(v) // 8):
            raise _TooLarge
        return ["str", str(v)]
    if isinstance(v, bytes | bytearray):
        if not b.take(len(v) // 8):
            raise _TooLarge
        return ["bytes", bytes(v).hex()]
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(v, np.ndarray):
            return _encode_array(v, b, path, depth, np)
        if isinstance(v, np.generic):
            return _encode(v.item(), b, path, depth)
    key = id(v)
    if key in path:
        return ["cycle"]
    path.add(key)
    try:
        return _encode_container(v, b, path, depth)
    finally:
        path.discard(key)


def _encode_container(v: object, b: _Budget, path: set, depth: int) -> list:
    enc = _encode
    if isinstance(v, list):
        return ["list", [enc(x, b, path, depth + 1) for x in v]]
    if isinstance(v, tuple):
        return ["tuple", [enc(x, b, path, depth + 1) for x in v]]
    if isinstance(v, dict):
        items = [[enc(k, b, path, depth + 1), enc(x, b, path, depth + 1)] for k, x in v.items()]
        items.sort(key=lambda kv: repr(kv[0]))
        return ["dict", items]
    if isinstance(v, set | frozenset):
        items = sorted((enc(x, b, path, depth + 1) for x in v), key=repr)
        return ["set", items]
    # A dataclass exists only once its module is imported; the harness does not import it
    # itself (with the ``inspect`` it pulls in, it cost each worker's start ~15 ms).
    dataclasses = sys.modules.get("dataclasses")
    if dataclasses is not None and dataclasses.is_dataclass(v) and not isinstance(v, type):
        fields = [
            [f.name, enc(getattr(v, f.name, None), b, path, depth + 1)]
            for f in dataclasses.fields(v)
        ]
        return ["dataclass", _qualname(type(v)), fields]
    if isinstance(v, BaseException):
        return encode_exception(v)
    attrs = getattr(v, "__dict__", None)
    if isinstance(attrs, dict) and not isinstance(v, type) and not callable(v):
        items = [[str(k), enc(x, b, path, depth + 1)] for k, x in sorted(attrs.items())]
        return ["object", _qualname(type(v)), items]
    try:
        text = repr(v)
    except Exception:  # noqa: BLE001
        text = "<unprintable>"
    return ["repr", _qualname(type(v)), text[:2000]]


def _encode_array(a, b: _Budget, path: set, depth: int, np) -> list:  # noqa: ANN001
    if not b.take(a.size):
        raise _TooLarge
    if a.dtype.kind in "biufc":
        data = np.ascontiguousarray(a).tobytes()
        return ["ndarray", a.dtype.str, list(a.shape), base64.b64encode(data).decode()]
    return ["ndarray", a.dtype.str, list(a.shape), _encode(a.tolist(), b, path, depth + 1)]


# --- comparison -------------------------------------------------------------------------------

_NUMERIC = ("bool", "int", "float", "complex")


def _number(node: list) -> complex | float | int:
    kind = node[0]
    if kind == "bool":
        return int(node[1])
    if kind == "int":
        return int(node[1])
    if kind == "float":
        return node[1]
    return complex(node[1], node[2])


def _close(x: float, y: float) -> bool:
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return x == y or math.isclose(x, y, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def numbers_equal(a: list, b: list) -> bool:
    x, y = _number(a), _number(b)
    if isinstance(x, int) and isinstance(y, int):
        return x == y
    x, y = complex(x), complex(y)
    return _close(x.real, y.real) and _close(x.imag, y.imag)


def difference(expected: list, got: list, where: str = "") -> str | None:
    """``None`` when equal, else a short description of the first difference."""
    ek, gk = expected[0], got[0]
    if ek in _NUMERIC and gk in _NUMERIC:
        return None if numbers_equal(expected, got) else f"{where or 'value'} differs"
    if ek == "toolarge" or gk == "toolarge":
        return f"{where or 'value'} is too large to compare"
    if ek != gk:
        if gk == "exception":
            return f"raised {got[1]}, expected {_kind(expected)}"
        if ek == "exception":
            return f"returned {_kind(got)}, expected it to raise {expected[1]}"
        return f"{where or 'value'} is {_kind(got)}, expected {_kind(expected)}"
    if ek in ("none", "cycle"):
        return None
    if ek in ("str", "bytes", "set"):
        return None if expected[1] == got[1] else f"{where or 'value'} differs"
    if ek in ("list", "tuple"):
        if len(expected[1]) != len(got[1]):
            return f"{where or ek} has length {len(got[1])}, expected {len(expected[1])}"
        for i, (e, g) in enumerate(zip(expected[1], got[1], strict=True)):
            diff = difference(e, g, f"{where}[{i}]")
            if diff:
                return diff
        return None
    if ek == "dict":
        ekeys = [repr(k) for k, _ in expected[1]]
        gkeys = [repr(k) for k, _ in got[1]]
        if ekeys != gkeys:
            return f"{where or 'dict'} has different keys"
        for (k, e), (_, g) in zip(expected[1], got[1], strict=True):
            diff = difference(e, g, f"{where}[{render(k, 40)}]")
            if diff:
                return diff
        return None
    if ek == "exception":
        if expected[1] != got[1]:
            return f"raised {got[1]}, expected {expected[1]}"
        return None
    if ek in ("dataclass", "object"):
        if expected[1] != got[1]:
            return f"{where or 'value'} is a {got[1]}, expected a {expected[1]}"
        if [k for k, _ in expected[2]] != [k for k, _ in got[2]]:
            return f"{where or 'object'} has different attributes"
        for (k, e), (_, g) in zip(expected[2], got[2], strict=True):
            diff = difference(e, g, f"{where}.{k}")
            if diff:
                return diff
        return None
    if ek == "ndarray":
        return _array_difference(expected, got, where or "array")
    if ek == "repr":
        same = expected[1] == got[1] and expected[2] == got[2]
        return None if same else f"{where or 'value'} differs"
    return None if expected == got else f"{where or 'value'} differs"


def _kind(node: list) -> str:
    name = node[1] if node[0] in ("dataclass", "object", "repr") else node[0]
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def _array_difference(e: list, g: list, where: str) -> str | None:
    if e[2] != g[2]:
        return f"{where} has shape {tuple(g[2])}, expected {tuple(e[2])}"
    if isinstance(e[3], str) and isinstance(g[3], str):
        import numpy as np

        x = np.frombuffer(base64.b64decode(e[3]), dtype=np.dtype(e[1])).reshape(e[2])
        y = np.frombuffer(base64.b64decode(g[3]), dtype=np.dtype(g[1])).reshape(g[2])
        if x.dtype.kind in "biu" and y.dtype.kind in "biu":
            same = bool(np.array_equal(x, y))
        else:
            same = bool(np.allclose(x, y, rtol=1e-5, atol=1e-8, equal_nan=True))
        return None if same else f"{where} values differ"
    if isinstance(e[3], str) != isinstance(g[3], str):
        return f"{where} has dtype {g[1]}, expected {e[1]}"
    return difference(e[3], g[3], where)


# --- rendering --------------------------------------------------------------------------------


def render(node: list, limit: int = 200) -> str:
    """A short Python-like rendering of an encoded value, for mismatch reports."""
    text = _render(node, limit + 1)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _render(node: list, limit: int) -> str:
    kind = node[0]
    if kind == "none":
        return "None"
    if kind == "bool":
        return repr(node[1])
    if kind in ("int",):
        return node[1] if len(node[1]) < 60 else node[1][:30] + "…"
    if kind == "float":
        return repr(node[1])
    if kind == "complex":
        return repr(complex(node[1], node[2]))
    if kind == "str":
        return repr(node[1][:limit])
    if kind == "bytes":
        return repr(bytes.fromhex(node[1][: 2 * limit]))
    if kind in ("list", "tuple", "set"):
        opening, closing = {"list": "[]", "tuple": "()", "set": "{}"}[kind]
        return opening + _join((_render(x, limit) for x in node[1]), limit) + closing
    if kind == "dict":
        pairs = (f"{_render(k, limit)}: {_render(v, limit)}" for k, v in node[1])
        return "{" + _join(pairs, limit) + "}"
    if kind in ("dataclass", "object"):
        fields = (f"{k}={_render(v, limit)}" for k, v in node[2])
        return f"{node[1]}(" + _join(fields, limit) + ")"
    if kind == "exception":
        return f"raised {node[1]}({node[2]!r})"
    if kind == "ndarray":
        return f"array(shape={tuple(node[2])}, dtype={node[1]})"
    if kind == "repr":
        return node[2][:limit]
    if kind == "toolarge":
        return f"<{node[1]} too large to compare: {node[2]}>"
    return f"<{kind}>"


def _join(parts, limit: int) -> str:  # noqa: ANN001
    out, size = [], 0
    for part in parts:
        if size > limit:
            out.append("…")
            break
        out.append(part)
        size += len(part) + 2
    return ", ".join(out)
