"""Code blocks in replies: whole modules, single functions merged by name, broken blocks."""

from __future__ import annotations

import ast

from app.services.code import extract_code, fenced_blocks, merge

BASE = '''\
"""Module docstring."""
import math

SCALE = 3


def helper(x):
    return x * SCALE


@staticmethod
def slow(xs):
    out = []
    for x in xs:
        out.append(helper(x))
    return out
'''


def test_a_single_function_replaces_its_namesake_and_keeps_the_rest():
    block = "from functools import reduce\n\ndef slow(xs):\n    return [helper(x) for x in xs]\n"
    merged, kind, names = merge(BASE, block)
    assert kind == "functions" and names == ["slow"]
    assert merged.count("def slow(") == 1
    assert "[helper(x) for x in xs]" in merged
    assert "out.append" not in merged
    assert "@staticmethod" not in merged, "the old decorator goes with the old function"
    assert "def helper(x):" in merged and "SCALE = 3" in merged
    assert '"""Module docstring."""' in merged
    assert "from functools import reduce" in merged.split("SCALE")[0], "imports go on top"
    ast.parse(merged)


def test_new_helpers_are_added_and_example_calls_ignored():
    block = (
        "def fast_helper(x):\n    return x * 3\n\n"
        "def slow(xs):\n    return list(map(fast_helper, xs))\n\nprint(slow([1, 2]))\n"
    )
    merged, kind, _ = merge(BASE, block)
    assert kind == "functions"
    assert "def fast_helper(x):" in merged
    assert "print(slow" not in merged


def test_a_block_with_every_function_is_a_whole_module():
    block = (
        "SCALE = 3\n\ndef helper(x):\n    return x * SCALE\n\n"
        "def slow(xs):\n    return [x * SCALE for x in xs]\n"
    )
    merged, kind, _ = merge(BASE, block)
    assert kind == "module"
    assert merged == block


def test_a_whole_module_that_uses_a_base_constant_is_merged_instead():
    block = "def helper(x):\n    return x * SCALE\n\n" + (
        "def slow(xs):\n    return [x * SCALE for x in xs]\n"
    )
    merged, kind, _ = merge(BASE, block)
    assert kind == "functions", "SCALE would be lost if the block replaced the module"
    assert "SCALE = 3" in merged


def test_extract_reports_why_blocks_were_skipped():
    reply = (
        "Two ideas.\n```python\ndef slow(xs):\n    return [x * 3 for x in xs]\n```\n"
        "```python\ndef slow(xs:\n```\n"
        "```bash\npip install numpy\n```\n"
        "```python\nslow([1])\n```\n"
        "```python\ndef slow(xs):\n    return [x * 3 for x in xs]\n```\n"
    )
    ex = extract_code(reply, BASE, "slow")
    assert len(ex.proposals) == 1
    assert ex.proposals[0].index == 0
    assert any("block 2 is not valid Python" in p for p in ex.problems)
    assert any("defines no function" in p for p in ex.problems)
    assert any("same as a version already proposed" in p for p in ex.problems)


def test_a_reply_without_code_has_a_clear_notice():
    ex = extract_code("I would use a set here.", BASE, "slow")
    assert ex.proposals == []
    assert ex.notice() == "The reply proposed no new code version: it contains no ```python block."


def test_a_block_cut_off_by_the_token_limit_still_counts():
    reply = "Here:\n```python\ndef slow(xs):\n    return [x * 3 for x in xs]\n"
    assert len(fenced_blocks(reply)) == 1
    assert len(extract_code(reply, BASE, "slow").proposals) == 1


def test_a_version_without_the_entry_point_is_refused():
    ex = extract_code(
        "```python\ndef helper(x):\n    return x\n```", "def helper(x):\n    return x * 2\n", "slow"
    )
    assert ex.proposals == []
    assert "leaves no `slow`" in ex.problems[0]


def test_a_block_that_repeats_the_current_version_is_named_as_such():
    ex = extract_code(f"Already optimal:\n```python\n{BASE}```", BASE, "slow")
    assert ex.proposals == []
    assert ex.problems == ["block 1 repeats the current version unchanged"]
