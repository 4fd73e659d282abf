"""The per-call copies of a case's arguments (sandbox/harness/fresh.py): each one what
``copy.deepcopy`` would make — equal, same types, no mutable object shared with the original or
another copy — whichever path made it."""

from __future__ import annotations

import collections
import copy
import random

import numpy as np

from sandbox.harness import fresh


def _mutables(value: object, found: dict[int, object] | None = None) -> dict[int, object]:
    """Every mutable object reachable from ``value``, by id."""
    found = {} if found is None else found
    if id(value) in found:
        return found
    if isinstance(value, (list, dict, set, bytearray, np.ndarray, collections.deque)):
        found[id(value)] = value
    if isinstance(value, np.ndarray):
        return found
    if isinstance(value, dict):
        for k, v in value.items():
            _mutables(k, found)
            _mutables(v, found)
    elif isinstance(value, (list, tuple, set, frozenset, collections.deque)):
        for x in value:
            _mutables(x, found)
    elif hasattr(value, "__dict__"):
        _mutables(vars(value), found)
    return found


def _same(a: object, b: object) -> bool:
    """Equal with the same types all the way down (1 == 1.0 == True is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and bool((a == b).all())
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if type(a).__eq__ is object.__eq__ and hasattr(a, "__dict__"):  # compared by identity
        return _same(vars(a), vars(b))
    return a == b


def _random_value(rng: random.Random, depth: int = 0) -> object:
    atoms = [
        lambda: rng.randint(-5, 10**20),
        lambda: rng.random(),
        lambda: rng.choice(["", "a", "é", "xyz"]),
        lambda: rng.choice([None, True, False]),
        lambda: bytes(rng.randrange(256) for _ in range(3)),
        lambda: complex(rng.random(), 1),
        lambda: range(rng.randint(0, 5)),
    ]
    if depth >= 4 or rng.random() < 0.4:
        return rng.choice(atoms)()
    n = rng.randint(0, 4)
    kind = rng.choice(["list", "tuple", "dict", "set", "frozenset", "bytearray", "array"])
    if kind == "list":
        return [_random_value(rng, depth + 1) for _ in range(n)]
    if kind == "tuple":
        return tuple(_random_value(rng, depth + 1) for _ in range(n))
    if kind == "dict":
        return {rng.randint(0, 99): _random_value(rng, depth + 1) for _ in range(n)}
    if kind == "set":
        return {rng.randint(0, 99) for _ in range(n)}
    if kind == "frozenset":
        return frozenset(rng.choice("abcdef") for _ in range(n))
    if kind == "bytearray":
        return bytearray(b"ab" * n)
    return np.arange(n * 2, dtype=rng.choice(["int64", "float32"])).reshape(2, n)


def _check_fresh(value: object) -> None:
    make = fresh.copier(value)
    first, second = make(), make()
    for got in (first, second):
        assert _same(got, value)
        assert _same(got, copy.deepcopy(value))
    original = _mutables(value)
    for a, b in ((first, original), (second, original), (first, _mutables(second))):
        shared = _mutables(a).keys() & (b.keys() if isinstance(b, dict) else b)
        assert not shared, f"shares {[type(b[i]).__name__ for i in shared]} with another copy"


def test_random_trees_of_builtins_copy_like_deepcopy() -> None:
    rng = random.Random(7)
    for _ in range(400):
        _check_fresh(((_random_value(rng), _random_value(rng)), {"k": _random_value(rng)}))


def test_a_flat_list_takes_the_cheap_path_and_mutating_a_copy_leaves_the_next_intact() -> None:
    xs = list(range(1000))
    make = fresh.copier(((xs,), {}))
    (got,), _ = make()
    got.sort(reverse=True)
    got.append(-1)
    (again,), _ = make()
    assert again == list(range(1000)) and xs == list(range(1000))
    assert fresh.copier(xs) == xs.copy  # a bound list.copy: no per-element work
    assert fresh.copier(xs).__self__ is xs


def test_immutable_values_are_shared_as_deepcopy_shares_them() -> None:
    value = (1, "a", (2.0, b"x", None), range(3), len)
    assert copy.deepcopy(value) is value
    assert fresh.copier(value)() is value
    frozen = (frozenset({1, 2}),)  # deepcopy rebuilds an equal frozenset; sharing it is as safe
    assert fresh.copier(frozen)() is frozen


def test_aliasing_inside_a_case_is_kept_by_falling_back_to_deepcopy() -> None:
    shared = [1, 2, 3]
    args = (shared, shared, {"again": shared})
    got = fresh.copier(args)()
    assert got[0] is got[1] is got[2]["again"]
    assert got[0] is not shared
    cycle: list = [1]
    cycle.append(cycle)
    copied = fresh.copier(cycle)()
    assert copied[1] is copied and copied is not cycle


def test_instances_and_subclasses_of_builtins_keep_their_types() -> None:
    class Point:
        def __init__(self) -> None:
            self.xy = [1, 2]

    value = (
        collections.OrderedDict(a=[1]),
        collections.defaultdict(list, b=[2]),
        collections.deque([3]),
        Point(),
        type("MyList", (list,), {})([4]),
    )
    got = fresh.copier(value)()
    assert [type(x) for x in got] == [type(x) for x in value]
    assert got[3].xy == [1, 2] and got[3].xy is not value[3].xy
    assert got[1]["missing"] == []  # still a defaultdict(list)
    _check_fresh(value)


def test_arrays_keep_their_memory_order_and_object_arrays_copy_their_items() -> None:
    fortran = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    got = fresh.copier(fortran)()
    assert got.flags.f_contiguous and not np.shares_memory(got, fortran)
    assert got.flags.f_contiguous == copy.deepcopy(fortran).flags.f_contiguous
    objects = np.array([[1], [2]] + [None], dtype=object)[:2]
    got = fresh.copier(objects)()
    assert got[0] == [1] and got[0] is not objects[0]


def test_deep_nesting_falls_back_and_still_copies() -> None:
    value: list = []
    for _ in range(fresh.MAX_DEPTH + 5):
        value = [value]
    got = fresh.copier(value)()
    assert got == value and got is not value


def test_code_that_consumes_its_inputs_gets_them_whole_on_every_call(evaluate) -> None:  # noqa: ANN001
    """In the real sandbox: both sides empty the list they are given; a call handed the last
    call's (emptied) list would return 0, and timing's check of repeated calls would fail it."""
    baseline = (
        "def f(xs, table):\n    n = 0\n    while xs:\n        n += xs.pop()\n"
        "    return n + len(table)\n"
    )
    candidate = "def f(xs, table):\n    n = sum(xs)\n    xs.clear()\n    return n + len(table)\n"
    workload = "def cases():\n    return [(list(range(3000)), {'a': [1, 2], 'b': [3]})]\n"
    verdict = evaluate(candidate, baseline=baseline, workload=workload)
    assert verdict["status"] == "ok", verdict["message"]
    assert verdict["equivalent"] is True
    assert verdict["rounds"] >= 2 and verdict["speedup"] > 1
