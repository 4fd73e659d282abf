"""ConAIR mode, the two use-cases: ``start_conair`` (round 1 of a run: the LLM proposes n
candidates and m tests) and ``answer_tests`` (the person's verdicts on the asked tests, then the
next round). A candidate's correctness rests on trusted evidence only (the session's own tests,
the tests a person accepted or corrected, equal outputs to the baseline); the generated tests
nobody validated feed the consistency ranking and the questions. Every round is a
``conair_round`` row (``app.services.conair_store``); the sandbox work is in
``app.services.conair_matrix``, the LLM's repairs in ``app.services.conair_repair``, the
ranking and the choice of questions in ``app.services.consistency``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from app.llm import prompts
from app.services import conair_matrix as mx
from app.services import conair_repair as repairs
from app.services import conair_store as store
from app.services._llm import call_model
from app.services.access import Actor, acting, require_change
from app.services.candidates import base_candidate_id
from app.services.code import parse_error
from app.services.consistency import (
    choose_questions,
    parse_reply,
    rank,
    rename_function,
    unique_name,
    used_test_names,
)
from app.services.context import Context, get_context
from app.services.errors import CodeDoesNotParse, InvalidInput, NoCodeInReply
from app.services.iterations import require_ready, store_proposals
from app.services.sessions import load_view
from app.services.views import ConairState, RankedCandidate, TestAnswer, TestCaseView
from db import queries
from db.engine import unit_of_work
from db.models import TestCase, utcnow

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

__all__ = ["answer_tests", "conair_state", "start_conair"]

conair_state = store.conair_state


def _finish_reason(
    ranking: Sequence[RankedCandidate],
    asked: bool,
    previous_top: int | None,
    number: int,
    max_rounds: int,
) -> str | None:
    top = ranking[0] if ranking else None
    if top is not None and top.correct and top.trusted_failed == 0:
        if previous_top == top.candidate_id and number > 1:
            return (
                "the top candidate passes every validated test and the session's own tests, "
                "and the ranking is stable"
            )
        if not asked:
            return (
                "the top candidate passes every validated test and the session's own tests; "
                "nothing left to ask"
            )
    if number >= max_rounds:
        return f"round limit ({max_rounds}) reached"
    if not asked and top is not None:
        return "no test is left to validate"
    return None


def _close_round(
    c: Context,
    session_id: int,
    number: int,
    m: store.Matrix,
    questions_per_round: int,
    previous_top: int | None,
    max_rounds: int,
) -> ConairState:
    """Rank on the evidence as it stands, choose the next questions or finish, store the round."""
    mx.cluster(c, m)
    with unit_of_work(c.engine) as s:
        view = load_view(s, session_id)
        tests = m.tests(view.tests)
        cands = [view.candidate(i) for i in m.candidate_ids]
        ranking = rank(cands, tests, m.cells, m.clusters, m.baseline_cells, m.baseline_cluster)
        questions = choose_questions(ranking, tests, m.cells, questions_per_round, m.baseline_cells)
        reason = _finish_reason(ranking, bool(questions), previous_top, number, max_rounds)
        if reason is not None:
            questions = []
        store.note_unvalidated(s, ranking, m)
        store.add_round(
            s,
            session_id,
            number=number,
            matrix=m,
            ranking=ranking,
            questions=questions,
            reason=reason,
        )
    with unit_of_work(c.engine) as s:
        return store.state(s, session_id)


# --- round 1 -------------------------------------------------------------------------------


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
    actor: Actor | None = None,
    ctx: Context | None = None,
) -> ConairState:
    """Round 1 of a new run (a finished run can be followed by another): ask ``model`` (default:
    the session's model) for candidates and tests; the baseline and every candidate run the
    generated tests (the matrix); every candidate gets its own timed evaluation on trusted
    evidence; rank; ask first about tests that contradict the baseline, then about those
    that split the top candidates."""
    c = get_context(ctx)
    text = (instruction or "").strip() or DEFAULT_CONAIR_INSTRUCTION
    with unit_of_work(c.engine) as s:
        require_change(s, session_id, acting(actor, c), c.settings)
        view = load_view(s, session_id)
        require_ready(view, session_id)
        model = model or view.info.model or c.model
        base = view.candidate(base_candidate_id(s, session_id, None))
        run = store.next_run(s, session_id)
        user = queries.add_message(
            session=s,
            session_id=session_id,
            role="user",
            content=text,
            kind="conair",
            meta={
                "parent_id": base.id,
                "n_candidates": n_candidates,
                "n_tests": n_tests,
                "run": run,
                "model": model,
            },
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
        c,
        session_id,
        proposals,
        base.id,
        reply_id,
        origin="conair",
        extra_meta={"conair_round": 1, "conair_run": run},
    )
    with unit_of_work(c.engine) as s:
        used = used_test_names(queries.list_test_cases(session_id, session=s))
        new_tests = []
        for name, src in tests[:n_tests]:
            unique = unique_name(name, used, 1)
            used.add(unique)
            row = queries.add_test_case(
                session=s,
                session_id=session_id,
                source=rename_function(src, name, unique),
                name=unique,
                origin="llm",
                round=1,
            )
            new_tests.append(row.id)
        view = load_view(s, session_id)
    # Tests a person validated in earlier runs join this one.
    test_ids = [t.id for t in store.trusted_generated(view.tests)] + new_tests
    m = store.Matrix(run=run, candidate_ids=cand_ids, test_ids=test_ids)
    live = m.tests(view.tests)
    mx.run_matrix(
        c,
        session_id,
        m,
        {mx.BASELINE: live, **{cid: live for cid in cand_ids}},
        on_progress=on_progress,
    )
    mx.judge_new(c, cand_ids, on_progress=on_progress)
    return _close_round(c, session_id, 1, m, questions_per_round, None, MAX_ROUNDS)


# --- the person's answers and the next round -------------------------------------------------


def _record_answers(
    session_id: int, answers: list[TestAnswer], who: str, c: Context
) -> tuple[int, store.Matrix, int | None, list[int], list[int]]:
    """Validate and store the answers on the latest round; (round number, its matrix, its top
    candidate, ids of corrected tests, ids of rejected tests)."""
    with unit_of_work(c.engine) as s:
        last = store.latest_round(s, session_id)
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
        previous_top = (last.ranking or [{}])[0].get("candidate_id")
        return last.number, store.read_matrix(last.matrix), previous_top, changed, rejected


def answer_tests(
    session_id: int,
    answers: list[TestAnswer],
    *,
    repair: bool = True,
    max_rounds: int = MAX_ROUNDS,
    questions_per_round: int = QUESTIONS_PER_ROUND,
    model: str | None = None,
    on_token: TokenFn | None = None,
    on_routing: RoutingFn | None = None,
    on_progress: ProgressFn | None = None,
    actor: Actor | None = None,
    ctx: Context | None = None,
) -> ConairState:
    """Record the person's answers (accept / reject / correct); re-judge every candidate of the
    session on the tests trusted now (tests-only runs; the earlier timing is kept, a candidate
    that became correct is timed); unless the run is done let ``model`` (default: the
    session's model) repair rejected tests and candidates failing trusted tests, run the
    matrix for what is new, and open the next round with new questions."""
    c = get_context(ctx)
    person = acting(actor, c)
    with unit_of_work(c.engine) as s:
        require_change(s, session_id, person, c.settings)
    who = person.name
    number, m, previous_top, changed, rejected = _record_answers(session_id, answers, who, c)
    cb = {"on_token": on_token, "on_routing": on_routing, "on_progress": on_progress}
    with unit_of_work(c.engine) as s:
        sess = queries.get_session(session_id, session=s)
        model = model or sess.model or c.model
        entry = sess.entry_point
        view = load_view(s, session_id)
    by_id = {t.id: t for t in view.tests}
    corrected = [by_id[t] for t in changed]
    # The corrected tests' new outcomes (the baseline too), then every candidate's status.
    mx.run_matrix(
        c,
        session_id,
        m,
        {mx.BASELINE: corrected, **{cid: corrected for cid in m.candidate_ids}},
        on_progress=on_progress,
    )
    mx.rejudge_all(c, session_id, on_progress=on_progress)
    new_tests: list[int] = []
    new_candidates: list[int] = []
    if repair and number < max_rounds:
        new_tests, new_candidates = repairs.repair(
            c,
            session_id,
            [by_id[t] for t in rejected],
            m,
            entry=entry,
            number=number,
            model=model,
            limit=REPAIR_CANDIDATES,
            **cb,
        )
    with unit_of_work(c.engine) as s:
        view = load_view(s, session_id)
    m.test_ids = [t for t in m.test_ids if t not in set(rejected)] + new_tests
    m.candidate_ids = m.candidate_ids + new_candidates
    live = m.tests(view.tests)
    added = [t for t in live if t.id in set(new_tests)]
    targets: dict[int | None, Sequence[TestCaseView]] = {mx.BASELINE: added}
    targets.update({cid: added for cid in m.candidate_ids})
    targets.update({cid: live for cid in new_candidates})
    mx.run_matrix(c, session_id, m, targets, on_progress=on_progress)
    mx.judge_new(c, new_candidates, on_progress=on_progress)
    return _close_round(c, session_id, number + 1, m, questions_per_round, previous_top, max_rounds)
