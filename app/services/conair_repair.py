"""ConAIR's repairs by the LLM: a test the person rejected is rewritten; a candidate failing
trusted tests is sent back with those tests (at most a few per round). The new tests and
candidates join the run's next round."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.llm import prompts
from app.services._llm import call_model
from app.services.code import PYTHON_TAGS, extract_code, fenced_blocks, parse_error
from app.services.conair_store import Matrix
from app.services.consistency import (
    failure_name,
    rename_function,
    split_tests,
    unique_name,
    used_test_names,
)
from app.services.context import Context
from app.services.iterations import store_proposals
from app.services.sessions import load_view
from app.services.views import CandidateView, TestCaseView
from db import queries
from db.engine import unit_of_work


def repair(
    c: Context,
    session_id: int,
    rejected: Sequence[TestCaseView],
    m: Matrix,
    *,
    entry: str,
    number: int,
    model: str,
    limit: int,
    **cb: Any,
) -> tuple[list[int], list[int]]:
    """Repair the rejected tests, then up to ``limit`` of the run's candidates that fail
    trusted tests (as judged now); (new test ids, new candidate ids)."""
    new_tests = []
    for test in rejected:
        new_id = _repair_test(c, session_id, test, entry, number, model, **cb)
        if new_id is not None:
            new_tests.append(new_id)
    with unit_of_work(c.engine) as s:
        view = load_view(s, session_id)
    trusted = _trusted_functions(view.tests, entry)
    failing = []
    for cid in m.candidate_ids:
        cand = view.candidate(cid)
        ev = cand.evaluation
        if ev is None or ev.correct is not False:
            continue
        names = {failure_name(f) for f in ev.test_failures}
        fails = [(n, src) for n, src in trusted.items() if n in names]
        if fails:
            failing.append((cand, fails))
    new_candidates: list[int] = []
    for cand, fails in failing[:limit]:
        new_candidates += _repair_candidate(
            c, session_id, cand, fails, entry, m.run, number, model, **cb
        )
    return new_tests, new_candidates


def _repair_test(
    c: Context, session_id: int, test: TestCaseView, entry: str, number: int, model: str, **cb: Any
) -> int | None:
    """Ask the LLM to fix a rejected test; the new test's id (None if the reply had none)."""
    msgs = [
        {"role": "system", "content": prompts.SYSTEM_PROMPT},
        {
            "role": "user",
            "content": prompts.conair_repair_test(
                test_source=test.source, entry=entry, reason="its expected result is wrong"
            ),
        },
    ]
    result, _ = call_model(
        c, session_id, msgs, model=model, kind="conair", meta={"repair_test_id": test.id}, **cb
    )
    fixed = [
        (n, src)
        for body in (b for tag, b in fenced_blocks(result.text) if tag in PYTHON_TAGS)
        if parse_error(body) is None
        for n, src in split_tests(body, entry)
    ]
    if not fixed:
        return None
    name, src = fixed[0]
    with unit_of_work(c.engine) as s:
        used = used_test_names(queries.list_test_cases(session_id, session=s))
        unique = unique_name(name, used, number + 1)
        row = queries.add_test_case(
            session=s,
            session_id=session_id,
            source=rename_function(src, name, unique),
            name=unique,
            origin="llm",
            round=number + 1,
        )
        return row.id


def _repair_candidate(
    c: Context,
    session_id: int,
    cand: CandidateView,
    fails: list[tuple[str, str]],
    entry: str,
    run: int,
    number: int,
    model: str,
    **cb: Any,
) -> list[int]:
    """Send a candidate back with the trusted tests it fails; the repaired candidate's id."""
    msgs = [
        {"role": "system", "content": prompts.SYSTEM_PROMPT},
        {
            "role": "user",
            "content": prompts.conair_repair_candidate(
                code=cand.source,
                entry=entry,
                failures=fails,
            ),
        },
    ]
    result, reply_id = call_model(
        c, session_id, msgs, model=model, kind="conair", meta={"repair_candidate_id": cand.id}, **cb
    )
    props = extract_code(result.text, cand.source, entry).proposals[:1]
    if not props:
        return []
    return store_proposals(
        c,
        session_id,
        props,
        cand.id,
        reply_id,
        origin="conair",
        extra_meta={"conair_round": number + 1, "conair_run": run},
    )


def _trusted_functions(tests: Sequence[TestCaseView], entry: str) -> dict[str, str]:
    """Each test function a candidate is judged by (the rule of ``evaluation.trusted_tests``),
    by name, as standalone source (the session's own tests are one module of several)."""
    out: dict[str, str] = {}
    for t in tests:
        if t.validation == "rejected" or (t.origin == "llm" and t.validation == "unvalidated"):
            continue
        try:
            functions = split_tests(t.effective_source, entry)
        except SyntaxError:
            continue
        for name, src in functions:
            out.setdefault(name, src)
    return out
