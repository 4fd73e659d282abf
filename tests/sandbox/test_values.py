"""The equality used for equivalence (sandbox/harness/values.py), tested directly."""

from __future__ import annotations

import dataclasses
import math
from collections import namedtuple

import numpy as np
import pytest

from sandbox.harness.values import difference, encode, encode_exception, render


def same(a: object, b: object) -> bool:
    return difference(encode(a), encode(b)) is None


@dataclasses.dataclass
class Point:
    x: float
    y: float


class Box:
    def __init__(self, items: list) -> None:
        self.items = items


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, 1.0),
        (0.1 + 0.2, 0.3),
        (float("nan"), float("nan")),
        (float("inf"), float("inf")),
        (1 + 2j, 1 + 2j),
        ({"a": [1, 2.0], "b": None}, {"b": None, "a": [1.0, 2]}),
        ({1, 2, 3}, {3, 2, 1}),
        (frozenset("ab"), {"a", "b"}),
        (Point(1.0, 2.0), Point(1.0, 2.0 + 1e-12)),
        (Box([1, 2]), Box([1, 2])),
        (np.array([1.0, np.nan, 3.0]), np.array([1.0, np.nan, 3.0 + 1e-9])),
        (np.arange(6).reshape(2, 3), np.arange(6).reshape(2, 3)),
        (np.float64(2.5), 2.5),
        (namedtuple("P", "a b")(1, 2), (1, 2)),
        (b"\x00\xff", b"\x00\xff"),
        (10**40, 10**40),
    ],
)
def test_equal(a, b):
    assert same(a, b)


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        (1, 2, "differs"),
        (0.3, 0.31, "differs"),
        ([1, 2], (1, 2), "is a tuple, expected a list"),
        ([1, 2], [1, 2, 3], "length 3"),
        ({"a": 1}, {"b": 1}, "different keys"),
        ({1, 2}, {1, 3}, "differs"),
        (Point(1, 2), Point(1, 3), ".y differs"),
        (np.zeros(3), np.zeros(4), "shape"),
        (np.array([1.0, 2.0]), np.array([1.0, 2.1]), "values differ"),
        (np.array([1.0, np.nan]), np.array([1.0, 0.0]), "values differ"),
        (float("nan"), 1.0, "differs"),
        ("abc", b"abc", "is a bytes"),
        ([[1, 2], [3, 4]], [[1, 2], [3, 5]], "[1][1] differs"),
        (10**40, 10**40 + 1, "differs"),
    ],
)
def test_different(a, b, reason):
    diff = difference(encode(a), encode(b))
    assert diff is not None and reason in diff


def test_exceptions_compare_by_type_only():
    assert difference(encode_exception(ValueError("a")), encode_exception(ValueError("b"))) is None
    diff = difference(encode_exception(ValueError("a")), encode_exception(TypeError("a")))
    assert diff == "raised TypeError, expected ValueError"
    assert difference(encode_exception(ValueError()), encode(1)) == (
        "returned an int, expected it to raise ValueError"
    )
    diff = difference(encode(1), encode_exception(ValueError()))
    assert diff == "raised ValueError, expected an int"


def test_too_large_values_never_compare_equal():
    big = encode(list(range(100)), budget=10)
    assert big[0] == "toolarge"
    assert "too large" in difference(big, big)
    assert encode("x" * 10**6, budget=1000)[0] == "toolarge"


def test_cycles_and_unprintable_objects():
    cyclic: list = [1]
    cyclic.append(cyclic)
    assert same(cyclic, cyclic)

    class Weird:
        __slots__ = ()

        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert encode(Weird())[0] == "repr"


def test_render_is_short_and_readable():
    text = render(encode({"key": list(range(1000))}), limit=60)
    assert len(text) <= 60 and text.startswith("{'key': [0, 1, 2")
    assert render(encode_exception(KeyError("k"))) == "raised KeyError(\"'k'\")"
    assert render(encode(np.zeros((2, 2)))) == "array(shape=(2, 2), dtype=<f8)"
    assert math.isnan(encode(float("nan"))[1])
