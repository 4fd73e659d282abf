"""ConAIR mode: the LLM proposes n candidates and m tests; the sandbox runs the candidate x test
matrix and compares the candidates' outputs on the workload (behaviour clusters); candidates
are ranked by consistency; the person validates the few tests that split the top candidates
most; validated tests dominate the ranking, rejected ones are repaired by the LLM, candidates
failing trusted tests are sent back with those failures. Every round is a ``conair_round`` row.

The ranking and the choice of questions (and the choices made where the paper leaves
things open) are in ``app.services.consistency``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from app.llm import prompts
from app.services._llm import call_model
from app.services.candidates import base_candidate_id
from app.services.code import PYTHON_TAGS, extract_code, fenced_blocks, parse_error
from app.services.consistency import (
    Cells,
    behaviour_key,
    choose_questions,
    outcomes,
    parse_reply,
    rank,
    rename_function,
    split_tests,
    unique_name,
    used_test_names,
)
from app.services.context import Context, get_context
from app.services.errors import CodeDoesNotParse, InvalidInput, NoCodeInReply, NotFound
from app.services.evaluation import evaluate_on_pool, run_tests_only
from app.services.iterations import require_ready, store_proposals
from app.services.sessions import load_view
from app.services.views import (
    ConairState,
    RankedCandidate,
    TestAnswer,
    TestCaseView,
    TestQuestion,
)
from db import queries
from db.engine import unit_of_work
from db.models import ConairRound, TestCase, utcnow

DEFAULT_CANDIDATES = 4
DEFAULT_TESTS = 6
QUESTIONS_PER_ROUND = 2
MAX_ROUNDS = 5
REPAIR_CANDIDATES = 2  # at most this many failing candidates are sent back per round

DEFAULT_CONAIR_INSTRUCTION = (
    "Make the current version faster. Keep its behaviour exactly the same for every input."
)

TokenFn = Callable[[str], None]
RoutingFn = Callable[[Any], None]
ProgressFn = Callable[[str, dict[str, Any]], None]


# --- persistence of rounds ------------------------------------------------------------------------


def _matrix_json(
    candidate_ids: list[int],
    test_ids: list[int],
    cells: Cells,
    baseline_cells: dict[int, str],
    clusters: list[list[int]],
    baseline_cluster: int | None,
    questions: list[TestQuestion],
    reason: str | None,
) -> dict[str, Any]:
    return {
        "candidate_ids": candidate_ids,
        "test_case_ids": test_ids,
        "cells": [
            {"candidate_id": c, "test_case_id": t, "outcome": o}
            for (c, t), o in sorted(cells.items())
        ],
        "baseline_cells": [
            {"test_case_id": t, "outcome": o} for t, o in sorted(baseline_cells.items())
        ],
        "clusters": [{"candidate_ids": m} for m in clusters],
        "baseline_cluster": baseline_cluster,
        "questions": [
            {
                "test_case_id": q.test.id,
                "split": q.split,
                "passing_candidate_ids": q.passing,
                "failing_candidate_ids": q.failing,
            }
            for q in questions
        ],
        "reason": reason,
    }


def _ranking_json(ranking: Sequence[RankedCandidate]) -> list[dict[str, Any]]:
    return [
        {
            "candidate_id": r.candidate_id,
            "rank": r.rank,
            "score": r.score,
            "tests_passed": r.tests_passed,
            "trusted_failed": r.trusted_failed,
            "cluster": r.cluster,
        }
        for r in ranking
    ]


def _read_matrix(m: dict[str, Any]) -> tuple[Cells, dict[int, str], list[list[int]], int | None]:
    cells = {
        (int(x["candidate_id"]), int(x["test_case_id"])): x["outcome"] for x in m.get("cells", [])
    }
    base = {int(x["test_case_id"]): x["outcome"] for x in m.get("baseline_cells", [])}
    clusters = [list(x["candidate_ids"]) for x in m.get("clusters", [])]
    return cells, base, clusters, m.get("baseline_cluster")


def _latest_round(s: Session, session_id: int) -> ConairRound:
    sess = queries.get_session(session_id, session=s)
    if not sess.conair_rounds:
        raise NotFound("ConAIR round of session", session_id)
    return sess.conair_rounds[-1]


def _state(s: Session, session_id: int) -> ConairState:
    from app.services import _convert as cv

    view = load_view(s, session_id)
    sess = queries.get_session(session_id, session=s)
    rounds = list(sess.conair_rounds)
    if not rounds:
        raise NotFound("ConAIR round of session", session_id)
    last = rounds[-1]
    m = last.matrix or {}
    cells, _, clusters, _ = _read_matrix(m)
    cand_ids = list(m.get("candidate_ids", []))
    test_ids = set(m.get("test_case_ids", []))
    tests = [t for t in view.tests if t.id in test_ids]
    by_id = {t.id: t for t in view.tests}
    questions = [
        TestQuestion(
            test=by_id[q["test_case_id"]],
            split=q["split"],
            passing=list(q["passing_candidate_ids"]),
            failing=list(q["failing_candidate_ids"]),
        )
        for q in m.get("questions", [])
        if q["test_case_id"] in by_id
    ]
    matrix: dict[int, dict[int, str]] = {}
    for (c, t), o in cells.items():
        matrix.setdefault(c, {})[t] = o
    return ConairState(
        session_id=session_id,
        round=last.number,
        candidates=[view.candidate(c) for c in cand_ids],
        tests=tests,
        matrix=matrix,
        clusters=clusters,
        ranking=[
            RankedCandidate(
                candidate_id=r["candidate_id"],
                rank=r["rank"],
                score=r["score"],
                tests_passed=r["tests_passed"],
                trusted_failed=r["trusted_failed"],
                cluster=r["cluster"],
            )
            for r in last.ranking or []
        ],
        questions=[] if last.finished else questions,
        effort=sum(r.validations_asked for r in rounds),
        rounds=[cv.conair_round_view(r) for r in rounds],
        finished=last.finished,
        reason=m.get("reason"),
    )


def conair_state(session_id: int, *, ctx: Context | None = None) -> ConairState:
    """The current ConAIR state of a session (raises ``NotFound`` if ConAIR never started)."""
    c = get_context(ctx)
    with unit_of_work(c.engine) as s:
        return _state(s, session_id)


# --- running the matrix ---------------------------------------------------------------------


def _test_sources(tests: Sequence[TestCaseView]) -> str:
    return "\n\n\n".join(t.effective_source.strip() for t in tests) + "\n"


def _run_matrix(
    c: Context,
    session_id: int,
    *,
    new_candidates: list[int],
    old_candidates: list[int],
    tests: Sequence[TestCaseView],
    changed_tests: Sequence[TestCaseView],
    cells: Cells,
    baseline_cells: dict[int, str],
    verdicts: dict[int, dict[str, Any] | None],
    on_progress: ProgressFn | None,
) -> None:
    """Fill ``cells``: new candidates against every live test (a stored evaluation, timed),
    old candidates and the baseline against the changed tests only (tests-only runs)."""
    names = {t.id: t.name for t in tests}
    if new_candidates:
        src = _test_sources(tests) if tests else None
        results = evaluate_on_pool(
            new_candidates, c, on_progress=on_progress, tests_override=src or ""
        )
        for cid, (_, verdict, _) in results.items():
            verdicts[cid] = verdict
            for tid, o in outcomes(verdict, names).items():
                cells[(cid, tid)] = o
    with unit_of_work(c.engine) as s:
        sess = queries.get_session(session_id, session=s)
        baseline, entry, workload = sess.baseline_source, sess.entry_point, sess.workload_source
        sources = {x.id: x.source for x in queries.list_candidates(session_id, session=s)}
    targets: list[int | None] = [None]  # the baseline
    if changed_tests:
        targets += old_candidates
    elif any(t.id not in baseline_cells for t in tests):
        changed_tests = [t for t in tests if t.id not in baseline_cells]
    else:
        return
    changed_names = {t.id: t.name for t in changed_tests}
    src = _test_sources(changed_tests)
    futures = {
        target: c.pool.submit(
            run_tests_only,
            c,
            None if target is None else sources[target],
            src,
            baseline=baseline,
            entry=entry,
            workload=workload,
            on_progress=on_progress,
            progress_info={"candidate_id": target, "tests_only": True},
        )
        for target in targets
    }
    for target, fut in futures.items():
        try:
            verdict = fut.result()
        except Exception:  # noqa: BLE001 - a failed tests-only run counts as errors
            verdict = None
        for tid, o in outcomes(verdict, changed_names).items():
            if target is None:
                baseline_cells[tid] = o
            else:
                cells[(target, tid)] = o


def _clusters(
    verdicts: dict[int, dict[str, Any] | None], candidate_ids: list[int]
) -> tuple[list[list[int]], int | None]:
    groups: dict[str, list[int]] = {}
    for cid in candidate_ids:
        groups.setdefault(behaviour_key(verdicts.get(cid)), []).append(cid)
    keys = list(groups)
    baseline_cluster = keys.index("baseline") if "baseline" in keys else None
    return [groups[k] for k in keys], baseline_cluster


def _close_round(
    c: Context,
    session_id: int,
    number: int,
    candidate_ids: list[int],
    cells: Cells,
    baseline_cells: dict[int, str],
    verdicts: dict[int, dict[str, Any] | None],
    questions_per_round: int,
    previous_top: int | None,
    max_rounds: int,
) -> ConairState:
    with unit_of_work(c.engine) as s:
        view = load_view(s, session_id)
        sess_tests = [t for t in view.tests if t.origin == "llm" and t.validation != "rejected"]
        cands = [view.candidate(i) for i in candidate_ids]
        # Cluster keys of older candidates come from their stored verdicts.
        for cand in cands:
            if cand.id not in verdicts:
                row = queries.latest_evaluation(cand.id, session=s)
                verdicts[cand.id] = row.result if row is not None else None
    clusters, base_cluster = _clusters(verdicts, candidate_ids)
    ranking = rank(cands, sess_tests, cells, clusters, baseline_cells, base_cluster)
    questions = choose_questions(ranking, sess_tests, cells, questions_per_round)
    top = ranking[0] if ranking else None
    reason = None
    if top is not None and top.trusted_failed == 0:
        if previous_top == top.candidate_id and number > 1:
            reason = "the top candidate passes every validated test and the ranking is stable"
        elif not questions:
            reason = "the top candidate passes every validated test; nothing left to ask"
    if reason is None and number >= max_rounds:
        reason = f"round limit ({max_rounds}) reached"
    if reason is None and not questions and top is not None:
        reason = "no test is left to validate"
    finished = reason is not None
    if finished:
        questions = []
    matrix = _matrix_json(
        candidate_ids,
        [t.id for t in sess_tests],
        cells,
        baseline_cells,
        clusters,
        base_cluster,
        questions,
        reason,
    )
    with unit_of_work(c.engine) as s:
        queries.add_conair_round(
            session=s,
            session_id=session_id,
            number=number,
            ranking=_ranking_json(ranking),
            matrix=matrix,
            tests_shown=[q.test.id for q in questions],
            answers=[],
            validations_asked=len(questions),
            finished=finished,
        )
    if finished and top is not None:
        # The final verdict of the chosen version, judged by trusted tests only.
        evaluate_on_pool([top.candidate_id], c)
    with unit_of_work(c.engine) as s:
        return _state(s, session_id)


# --- the use-cases ------------------------------------------------------------------------------


def start_conair(
    session_id: int,
    *,
    instruction: str | None = None,
    n_candidates: int = DEFAULT_CANDIDATES,
    n_tests: int = DEFAULT_TESTS,
    questions_per_round: int = QUESTIONS_PER_ROUND,
    model: str | None = None,
    on_token: TokenFn | None = None,
    on_routing: RoutingFn | None = None,
    on_progress: ProgressFn | None = None,
    ctx: Context | None = None,
) -> ConairState:
    """Round 1: ask the LLM for candidates and tests, run the matrix, rank, pick questions."""
    c = get_context(ctx)
    text = (instruction or "").strip() or DEFAULT_CONAIR_INSTRUCTION
    with unit_of_work(c.engine) as s:
        view = load_view(s, session_id)
        require_ready(view, session_id)
        model = model or view.info.model or c.model
        base = view.candidate(base_candidate_id(s, session_id, None))
        user = queries.add_message(
            session=s,
            session_id=session_id,
            role="user",
            content=text,
            kind="conair",
            meta={"parent_id": base.id, "n_candidates": n_candidates, "n_tests": n_tests},
        )
        stored = {"session_id": session_id, "user_message_id": user.id}
    messages = [
        {"role": "system", "content": prompts.SYSTEM_PROMPT},
        {
            "role": "user",
            "content": prompts.conair_generate(
                text, code=base.source, entry=view.info.entry_point, n=n_candidates, m=n_tests
            ),
        },
    ]
    result, reply_id = call_model(
        c,
        session_id,
        messages,
        model=model,
        kind="conair",
        on_token=on_token,
        on_routing=on_routing,
        on_progress=on_progress,
        stored=stored,
        max_tokens=None,
    )
    proposals, tests = parse_reply(result.text, base.source, view.info.entry_point, n_candidates)
    if not proposals:
        raise NoCodeInReply(
            "The reply proposed no usable candidate (each needs a ```python block defining "
            f"`{view.info.entry_point}`); the reply is stored — ask again.",
            stored={**stored, "message_id": reply_id},
        )
    cand_ids = store_proposals(
        c, session_id, proposals, base.id, reply_id, origin="conair", extra_meta={"conair_round": 1}
    )
    with unit_of_work(c.engine) as s:
        used = used_test_names(queries.list_test_cases(session_id, session=s))
        for name, src in tests[:n_tests]:
            unique = unique_name(name, used, 1)
            used.add(unique)
            queries.add_test_case(
                session=s,
                session_id=session_id,
                source=rename_function(src, name, unique),
                name=unique,
                origin="llm",
                round=1,
            )
    with unit_of_work(c.engine) as s:
        live = [
            cv_test
            for cv_test in load_view(s, session_id).tests
            if cv_test.origin == "llm" and cv_test.validation != "rejected"
        ]
    cells: Cells = {}
    baseline_cells: dict[int, str] = {}
    verdicts: dict[int, dict[str, Any] | None] = {}
    _run_matrix(
        c,
        session_id,
        new_candidates=cand_ids,
        old_candidates=[],
        tests=live,
        changed_tests=[],
        cells=cells,
        baseline_cells=baseline_cells,
        verdicts=verdicts,
        on_progress=on_progress,
    )
    return _close_round(
        c,
        session_id,
        1,
        cand_ids,
        cells,
        baseline_cells,
        verdicts,
        questions_per_round,
        None,
        MAX_ROUNDS,
    )


def answer_tests(
    session_id: int,
    answers: list[TestAnswer],
    *,
    validated_by: str | None = None,
    repair: bool = True,
    max_rounds: int = MAX_ROUNDS,
    questions_per_round: int = QUESTIONS_PER_ROUND,
    model: str | None = None,
    on_token: TokenFn | None = None,
    on_routing: RoutingFn | None = None,
    on_progress: ProgressFn | None = None,
    ctx: Context | None = None,
) -> ConairState:
    """Record the person's answers (accept / reject / correct), re-rank, and unless the top
    candidate passes every trusted test with a stable ranking (or the round limit is hit) let
    the LLM repair rejected tests and failing candidates, re-run the matrix and open the next
    round with new questions."""
    c = get_context(ctx)
    who = validated_by or c.settings.author
    with unit_of_work(c.engine) as s:
        last = _latest_round(s, session_id)
        if last.finished:
            raise InvalidInput("This ConAIR run is finished; start a new one to continue.")
        shown = set(last.tests_shown or [])
        for a in answers:
            if a.test_case_id not in shown:
                raise InvalidInput(f"Test {a.test_case_id} was not asked in round {last.number}.")
            if a.answer not in ("accept", "reject", "correct"):
                raise InvalidInput(f"An answer is accept, reject or correct; got {a.answer!r}.")
            if a.answer == "correct":
                if not a.corrected_source or parse_error(a.corrected_source) is not None:
                    err = parse_error(a.corrected_source or "") or ("it is empty", None)
                    raise CodeDoesNotParse(
                        f"The corrected test does not parse: {err[0]}", field="test", line=err[1]
                    )
        changed: list[int] = []
        rejected: list[int] = []
        for a in answers:
            t = s.get(TestCase, a.test_case_id)
            assert t is not None and t.session_id == session_id
            t.validation = {"accept": "accepted", "reject": "rejected", "correct": "corrected"}[
                a.answer
            ]
            t.validated_by = who
            t.validated_at = utcnow()
            if a.answer == "correct":
                t.corrected_source = a.corrected_source
                changed.append(t.id)
            if a.answer == "reject":
                rejected.append(t.id)
        last.answers = [
            {
                "test_case_id": a.test_case_id,
                "answer": a.answer,
                "corrected_source": a.corrected_source,
                "by": who,
            }
            for a in answers
        ]
        number = last.number
        m = last.matrix or {}
        cells, baseline_cells, _, _ = _read_matrix(m)
        candidate_ids = list(m.get("candidate_ids", []))
        previous_top = (last.ranking or [{}])[0].get("candidate_id")
        model = model or queries.get_session(session_id, session=s).model or c.model
        entry = queries.get_session(session_id, session=s).entry_point
    # Re-rank with the answers to decide what to repair.
    with unit_of_work(c.engine) as s:
        view = load_view(s, session_id)
    live = [t for t in view.tests if t.origin == "llm" and t.validation != "rejected"]
    verdicts: dict[int, dict[str, Any] | None] = {}
    new_candidates: list[int] = []
    new_tests: list[int] = []
    if repair and number < max_rounds:
        by_id = {t.id: t for t in view.tests}
        for tid in rejected:
            t = by_id[tid]
            msgs = [
                {"role": "system", "content": prompts.SYSTEM_PROMPT},
                {
                    "role": "user",
                    "content": prompts.conair_repair_test(
                        test_source=t.source, entry=entry, reason="its expected result is wrong"
                    ),
                },
            ]
            result, reply_id = call_model(
                c,
                session_id,
                msgs,
                model=model,
                kind="conair",
                on_token=on_token,
                on_routing=on_routing,
                on_progress=on_progress,
                meta={"repair_test_id": tid},
            )
            fixed = [
                (n, src)
                for body in (b for tag, b in fenced_blocks(result.text) if tag in PYTHON_TAGS)
                if parse_error(body) is None
                for n, src in split_tests(body, entry)
            ]
            if fixed:
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
                    new_tests.append(row.id)
        trusted = [t for t in live if t.validation in ("accepted", "corrected")]
        failing = []
        for cid in candidate_ids:
            fails = [t for t in trusted if cells.get((cid, t.id)) == "fail" and t.id not in changed]
            if fails:
                failing.append((cid, fails))
        for cid, fails in failing[:REPAIR_CANDIDATES]:
            cand = view.candidate(cid)
            msgs = [
                {"role": "system", "content": prompts.SYSTEM_PROMPT},
                {
                    "role": "user",
                    "content": prompts.conair_repair_candidate(
                        code=cand.source,
                        entry=entry,
                        failures=[(t.name, t.effective_source) for t in fails],
                    ),
                },
            ]
            result, reply_id = call_model(
                c,
                session_id,
                msgs,
                model=model,
                kind="conair",
                on_token=on_token,
                on_routing=on_routing,
                on_progress=on_progress,
                meta={"repair_candidate_id": cid},
            )
            props = extract_code(result.text, cand.source, entry).proposals[:1]
            if props:
                new_candidates += store_proposals(
                    c,
                    session_id,
                    props,
                    cid,
                    reply_id,
                    origin="conair",
                    extra_meta={"conair_round": number + 1},
                )
    with unit_of_work(c.engine) as s:
        view = load_view(s, session_id)
    live = [t for t in view.tests if t.origin == "llm" and t.validation != "rejected"]
    changed_tests = [t for t in live if t.id in set(changed) | set(new_tests)]
    _run_matrix(
        c,
        session_id,
        new_candidates=new_candidates,
        old_candidates=candidate_ids,
        tests=live,
        changed_tests=changed_tests,
        cells=cells,
        baseline_cells=baseline_cells,
        verdicts=verdicts,
        on_progress=on_progress,
    )
    return _close_round(
        c,
        session_id,
        number + 1,
        candidate_ids + new_candidates,
        cells,
        baseline_cells,
        verdicts,
        questions_per_round,
        previous_top,
        max_rounds,
    )
