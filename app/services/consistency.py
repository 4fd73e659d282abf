"""The pure part of ConAIR: reading the LLM's tests, the candidate × test matrix, behaviour
clusters, the consistency ranking and the choice of tests to ask about. No database, no LLM.

Choices the paper leaves open, made here (in an optimisation session the baseline defines the
behaviour an optimisation must keep):

- Evidence: a candidate is *correct* on trusted evidence only: the session's own tests, the
  generated tests a person accepted or corrected, and equal outputs to the baseline on the
  workload (its latest evaluation judges exactly that). Unvalidated generated tests are
  evidence for the ranking, never a reason to call a candidate incorrect.
- Trust of a test: accepted/corrected → ``VALIDATED_WEIGHT`` (more than all unvalidated tests
  together, so validated tests dominate); rejected → 0; unvalidated → the share of candidates
  passing it (inter-consistency: a test nearly everyone fails is more likely wrong), and 0
  when the original code fails it (it contradicts the baseline).
- Score of a candidate: trusted-weighted share of tests passed, plus ``CLUSTER_WEIGHT`` × the
  share of other versions (the baseline counts as one) that behave the same on the workload
  (intra-consistency). Behaviour clusters come from the sandbox's comparison with the
  baseline: equivalent candidates form one cluster; others are grouped by identical mismatches.
- Ranking: correct on trusted evidence first, then fewest trusted failures, then score, then
  speedup.
- Questions: first the unvalidated tests the baseline fails (they contradict it: most likely
  their expectation is wrong, and asking settles it at once); then the tests whose outcomes
  split the contenders most evenly (split = 1 − |2p − 1| for the passing share p); when none
  splits them, the tests the top candidate fails (validating those decides whether it is
  wrong). Contenders: every candidate correct on trusted evidence (each such claim also rests
  on the open tests), or the top ``TOP`` when fewer than two are correct.
- Stop when the top candidate is correct on trusted evidence and was already on top in the
  previous round, when nothing is left to ask and it is correct, or at the round limit.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from typing import Any

from app.services.code import PYTHON_TAGS, extract_code, fenced_blocks, parse_error
from app.services.views import CandidateView, RankedCandidate, TestCaseView, TestQuestion

VALIDATED_WEIGHT = 10.0
CLUSTER_WEIGHT = 0.5
TOP = 3  # how many top candidates the questions must split when fewer than 2 are correct

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
    failed = {failure_name(f) for f in tests.get("failures") or []}
    return {tid: "fail" if name in failed else "pass" for tid, name in test_names.items()}


def failure_name(failure: dict[str, Any]) -> str:
    """The test function's name of a reported failure (``test_target.py::test_x`` → ``test_x``)."""
    name = str(failure.get("name", ""))
    return re.split(r"::|\.", name)[-1]


def behaviour_key(verdict: dict[str, Any] | None) -> str:
    if not verdict or verdict.get("status") not in ("ok", "failed"):
        return f"broken:{(verdict or {}).get('status')}"
    if verdict.get("equivalent"):
        return "baseline"
    return "differs:" + repr([str(m)[:200] for m in verdict.get("mismatches") or []][:5])


def validated(test: TestCaseView) -> bool:
    return test.validation in ("accepted", "corrected")


def contradicts_baseline(test: TestCaseView, baseline: dict[int, str]) -> bool:
    """An unvalidated test the original code fails."""
    return test.validation == "unvalidated" and baseline.get(test.id) == "fail"


def trust(
    test: TestCaseView, cells: Cells, candidates: Sequence[int], baseline: dict[int, str]
) -> float:
    if validated(test):
        return VALIDATED_WEIGHT
    if test.validation == "rejected" or contradicts_baseline(test, baseline):
        return 0.0
    outs = [cells.get((c, test.id)) for c in candidates]
    return sum(o == "pass" for o in outs) / len(outs) if outs else 0.0


def trusted_failures(candidate: CandidateView, tests: Sequence[TestCaseView], cells: Cells) -> int:
    """Failures on trusted evidence: validated tests of the matrix and the trusted tests its
    latest evaluation failed (the session's own tests among them), counted once each, plus 1
    when its outputs differ from the baseline's on the workload."""
    names = {t.name for t in tests if validated(t) and cells.get((candidate.id, t.id)) != "pass"}
    ev = candidate.evaluation
    if ev is not None:
        names |= {failure_name(f) for f in ev.test_failures}
    return len(names) + (1 if ev is not None and ev.equivalent is False else 0)


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
    open_tests = [t for t in tests if t.validation == "unvalidated"]
    rows = []
    for c in candidates:
        passed = sum(1 for t in tests if cells.get((c.id, t.id)) == "pass")
        inter = sum(w for tid, w in weights.items() if cells.get((c.id, tid)) == "pass") / total
        k = cluster_of.get(c.id, -1)
        same = len(clusters[k]) - 1 if k >= 0 else 0
        if k >= 0 and k == baseline_cluster:
            same += 1
        score = inter + CLUSTER_WEIGHT * same / others
        ev = c.evaluation
        correct = ev.correct if ev is not None and ev.finished else None
        rows.append(
            {
                "key": (
                    0 if correct else 1,
                    trusted_failures(c, tests, cells),
                    -score,
                    -((ev.speedup if ev and correct else None) or 0.0),
                    c.id,
                ),
                "candidate": c,
                "passed": passed,
                "cluster": k,
                "score": score,
                "correct": correct,
                "open_failed": sum(1 for t in open_tests if cells.get((c.id, t.id)) != "pass"),
            }
        )
    rows.sort(key=lambda r: r["key"])
    out = []
    for i, r in enumerate(rows):
        ev = r["candidate"].evaluation
        timed = ev is not None and r["correct"]
        out.append(
            RankedCandidate(
                candidate_id=r["candidate"].id,
                rank=i + 1,
                score=round(r["score"], 6),
                tests_passed=r["passed"],
                trusted_failed=r["key"][1],
                cluster=r["cluster"],
                correct=r["correct"],
                unvalidated_failed=r["open_failed"],
                unvalidated_total=len(open_tests),
                speedup=ev.speedup if timed else None,
                ci_low=ev.ci_low if timed else None,
                ci_high=ev.ci_high if timed else None,
                verdict=ev.verdict if timed else None,
            )
        )
    return out


def contenders(ranking: Sequence[RankedCandidate]) -> list[int]:
    """The candidates a question must tell apart: every one that is correct on trusted evidence
    (its claim rests on the open tests too), or the top ``TOP`` when fewer than two are."""
    correct = [r.candidate_id for r in ranking if r.correct]
    return correct if len(correct) >= 2 else [r.candidate_id for r in ranking[:TOP]]


def choose_questions(
    ranking: Sequence[RankedCandidate],
    tests: Sequence[TestCaseView],
    cells: Cells,
    q: int,
    baseline_cells: dict[int, str] | None = None,
) -> list[TestQuestion]:
    baseline = baseline_cells or {}
    open_tests = [t for t in tests if t.validation == "unvalidated"]
    if not open_tests or not ranking or q <= 0:
        return []
    top = contenders(ranking)
    scored = []
    for t in open_tests:
        passing = [c for c in top if cells.get((c, t.id)) == "pass"]
        failing = [c for c in top if c not in passing]
        p = len(passing) / len(top)
        split = 1 - abs(2 * p - 1)
        top_fails = cells.get((top[0], t.id)) != "pass"
        scored.append((contradicts_baseline(t, baseline), split, top_fails, t, passing, failing))
    contradicting = [x for x in scored if x[0]]
    rest = [x for x in scored if not x[0]]
    splitting = [x for x in rest if x[1] > 0]
    pool = splitting or [x for x in rest if x[2]]
    pool.sort(key=lambda x: (-x[1], not x[2], x[3].id))
    contradicting.sort(key=lambda x: x[3].id)
    return [
        TestQuestion(
            test=t,
            split=round(split, 6),
            passing=passing,
            failing=failing,
            contradicts_baseline=against,
        )
        for against, split, _, t, passing, failing in (contradicting + pool)[:q]
    ]
