"""The pure part of ConAIR: reading the LLM's tests, the candidate × test matrix, behaviour
clusters, the consistency ranking and the choice of tests to ask about. No database, no LLM.

Choices the paper leaves open, made here:

- Trust of a test: accepted/corrected → ``VALIDATED_WEIGHT`` (more than all unvalidated tests
  together, so validated tests dominate); rejected → 0; unvalidated → the share of candidates
  passing it (inter-consistency: a test nearly everyone fails is more likely wrong), halved
  when the original code fails it (the baseline defines the behaviour an optimisation keeps).
- Score of a candidate: trusted-weighted share of tests passed, plus ``CLUSTER_WEIGHT`` × the
  share of other versions (the baseline counts as one) that behave the same on the workload
  (intra-consistency). Behaviour clusters come from the sandbox's comparison with the
  baseline: equivalent candidates form one cluster; others are grouped by identical mismatches.
- Ranking: fewest failures on validated tests first, then score, then speedup.
- Questions: the unvalidated tests whose outcomes split the top candidates most evenly
  (split = 1 − |2p − 1| for the passing share p); when none splits them, the tests the top
  candidate fails (validating those decides whether it is wrong).
- Stop when the top candidate passes every validated test and was already on top in the
  previous round, when nothing is left to ask and it passes, or at the round limit.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

from app.services.code import PYTHON_TAGS, extract_code, fenced_blocks, parse_error
from app.services.views import CandidateView, RankedCandidate, TestCaseView, TestQuestion

VALIDATED_WEIGHT = 10.0
CLUSTER_WEIGHT = 0.5
TOP = 3  # how many top candidates the questions must split

Cells = dict[tuple[int, int], str]  # (candidate id, test id) -> pass | fail | error


# --- parsing the LLM's tests --------------------------------------------------------------------


def split_tests(source: str, entry: str) -> list[tuple[str, str]]:
    """(name, source) per ``test_*`` function of a block; each source stands alone (the
    block's imports and ``from target import <entry>`` on top)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    imports = [
        "\n".join(lines[n.lineno - 1 : n.end_lineno])
        for n in tree.body
        if isinstance(n, ast.Import | ast.ImportFrom)
    ]
    if not any(f"import {entry}" in i or "import *" in i for i in imports):
        imports.insert(0, f"from target import {entry}")
    out = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            body = "\n".join(lines[start - 1 : node.end_lineno])
            out.append((node.name, "\n".join(imports) + "\n\n\n" + body + "\n"))
    return out


def used_test_names(rows: Sequence[Any]) -> set[str]:
    """Every test function name already in the session (they share one module when run)."""
    names = {r.name for r in rows}
    for r in rows:
        names |= defined_functions(r.corrected_source or r.source)
    return names


def unique_name(name: str, used: set[str], round_number: int) -> str:
    """``name``, or ``name_r<round>`` (then ``_2``, ``_3``…) when the session has it already."""
    if name not in used:
        return name
    candidate, k = f"{name}_r{round_number}", 2
    while candidate in used:
        candidate, k = f"{name}_r{round_number}_{k}", k + 1
    return candidate


def rename_function(source: str, old: str, new: str) -> str:
    return source.replace(f"def {old}(", f"def {new}(", 1)


def parse_reply(
    reply: str, base_source: str, entry: str, n: int
) -> tuple[list[Any], list[tuple[str, str]]]:
    """(candidate proposals, tests) from a ConAIR reply."""
    blocks = [(tag, body) for tag, body in fenced_blocks(reply) if tag in PYTHON_TAGS]
    test_blocks = [
        body
        for _, body in blocks
        if body.lstrip().lower().startswith("# tests")
        or (
            "def test" in body
            and parse_error(body) is None
            and entry not in defined_functions(body)
        )
    ]
    code_blocks = [body for _, body in blocks if body not in test_blocks]
    fake_reply = "\n".join(f"```python\n{b}\n```" for b in code_blocks)
    proposals = extract_code(fake_reply, base_source, entry).proposals[:n]
    tests: list[tuple[str, str]] = []
    for body in test_blocks:
        if parse_error(body) is None:
            tests += split_tests(body, entry)
    return proposals, tests


def defined_functions(source: str) -> set[str]:
    try:
        return {n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}
    except SyntaxError:
        return set()


# --- the matrix, clusters, ranking, questions -------------------------------------------------


def outcomes(verdict: dict[str, Any] | None, test_names: dict[int, str]) -> dict[int, str]:
    """Per test id: pass, fail or error, from one sandbox verdict over those tests."""
    if not verdict:
        return {t: "error" for t in test_names}
    tests = verdict.get("tests") or {}
    if not tests.get("ran", True) or verdict.get("status") not in ("ok", "failed"):
        return {t: "error" for t in test_names}
    failed = [str(f.get("name", "")) for f in tests.get("failures") or []]
    out = {}
    for tid, name in test_names.items():
        hit = any(f == name or f.endswith(f"::{name}") or f.endswith(f".{name}") for f in failed)
        out[tid] = "fail" if hit else "pass"
    return out


def behaviour_key(verdict: dict[str, Any] | None) -> str:
    if not verdict or verdict.get("status") not in ("ok", "failed"):
        return f"broken:{(verdict or {}).get('status')}"
    if verdict.get("equivalent"):
        return "baseline"
    return "differs:" + repr([str(m)[:200] for m in verdict.get("mismatches") or []][:5])


def trust(
    test: TestCaseView, cells: Cells, candidates: Sequence[int], baseline: dict[int, str]
) -> float:
    if test.validation in ("accepted", "corrected"):
        return VALIDATED_WEIGHT
    if test.validation == "rejected":
        return 0.0
    outs = [cells.get((c, test.id)) for c in candidates]
    share = sum(o == "pass" for o in outs) / len(outs) if outs else 0.0
    if baseline.get(test.id) == "fail":
        share *= 0.5
    return share


def rank(
    candidates: Sequence[CandidateView],
    tests: Sequence[TestCaseView],
    cells: Cells,
    clusters: list[list[int]],
    baseline_cells: dict[int, str],
    baseline_cluster: int | None,
) -> list[RankedCandidate]:
    ids = [c.id for c in candidates]
    weights = {t.id: trust(t, cells, ids, baseline_cells) for t in tests}
    total = sum(weights.values()) or 1.0
    cluster_of = {cid: i for i, members in enumerate(clusters) for cid in members}
    others = max(1, len(ids))  # other candidates + the baseline
    rows = []
    for c in candidates:
        passed = sum(1 for t in tests if cells.get((c.id, t.id)) == "pass")
        inter = sum(w for tid, w in weights.items() if cells.get((c.id, tid)) == "pass") / total
        k = cluster_of.get(c.id, -1)
        same = len(clusters[k]) - 1 if k >= 0 else 0
        if k >= 0 and k == baseline_cluster:
            same += 1
        score = inter + CLUSTER_WEIGHT * same / others
        trusted_failed = sum(
            1
            for t in tests
            if t.validation in ("accepted", "corrected") and cells.get((c.id, t.id)) != "pass"
        )
        speed = c.evaluation.speedup if c.evaluation and c.evaluation.speedup else 0.0
        rows.append((trusted_failed, -score, -speed, c.id, passed, k, score))
    rows.sort()
    return [
        RankedCandidate(
            candidate_id=cid,
            rank=i + 1,
            score=round(score, 6),
            tests_passed=passed,
            trusted_failed=tf,
            cluster=k,
        )
        for i, (tf, _, _, cid, passed, k, score) in enumerate(rows)
    ]


def choose_questions(
    ranking: Sequence[RankedCandidate], tests: Sequence[TestCaseView], cells: Cells, q: int
) -> list[TestQuestion]:
    open_tests = [t for t in tests if t.validation == "unvalidated"]
    if not open_tests or not ranking or q <= 0:
        return []
    top = [r.candidate_id for r in ranking[:TOP]]
    scored = []
    for t in open_tests:
        passing = [c for c in top if cells.get((c, t.id)) == "pass"]
        failing = [c for c in top if c not in passing]
        p = len(passing) / len(top)
        split = 1 - abs(2 * p - 1)
        top_fails = cells.get((top[0], t.id)) != "pass"
        scored.append((split, top_fails, t, passing, failing))
    splitting = [s for s in scored if s[0] > 0]
    pool = splitting or [s for s in scored if s[1]]
    pool.sort(key=lambda s: (-s[0], not s[1], s[2].id))
    return [
        TestQuestion(test=t, split=round(split, 6), passing=passing, failing=failing)
        for split, _, t, passing, failing in pool[:q]
    ]
