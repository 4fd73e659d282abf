"""ConAIR end to end with the real sandbox: candidates × tests, behaviour clusters, consistency
ranking, the questions that split the top candidates, the person's answers, LLM repairs, rounds
and effort recorded. The LLM is a recorded transcript (remote providers are unreachable)."""

from __future__ import annotations

import pytest

from app import services
from app.services.consistency import choose_questions, rank
from tests.llm import recorded
from tests.services.conftest import BASELINE, FASTER, TESTS, WORKLOAD, WRONG

LOOP_WITH_SET = """\
def count_common(a, b):
    seen = set(b)
    n = 0
    for x in a:
        n += x in seen
    return n
"""

COUNTER = """\
from collections import Counter


def count_common(a, b):
    seen = set(b)
    counts = Counter(a)
    return sum(k for v, k in counts.items() if v in seen)
"""

ROUND_1 = f"""Three versions and six tests.

```python
# candidate 1
{FASTER}```

```python
# candidate 2
{WRONG}```

```python
# candidate 3
{LOOP_WITH_SET}```

```python
# tests
from target import count_common


def test_basic():
    assert count_common([1, 2, 3], [2, 3]) == 2


def test_duplicates_in_a():
    assert count_common([1, 1], [1]) == 2


def test_duplicates_once():
    assert count_common([1, 1], [1]) == 1


def test_empty():
    assert count_common([], []) == 0
```
"""

REPAIRED_TEST = """You are right, duplicates count every time.

```python
from target import count_common


def test_duplicates_once():
    assert count_common([1, 1, 5], [1, 5]) == 3
```
"""

REPAIRED_CANDIDATE = f"""Set intersection loses duplicates; count them instead.

```python
{COUNTER}```
"""


@pytest.mark.slow
def test_conair_rounds_until_the_top_candidate_passes_every_validated_test_recorded_transcript(
    ctx,
):
    transcript = recorded.install([ROUND_1, REPAIRED_TEST, REPAIRED_CANDIDATE])
    view = services.create_session(
        baseline_source=BASELINE,
        entry_point="count_common",
        workload_source=WORKLOAD,
        tests_source=TESTS,
        model="recorded/transcript",
        mode="conair",
        ctx=ctx,
    )
    sid = view.info.id
    state = services.start_conair(sid, n_candidates=4, n_tests=6, ctx=ctx)

    assert state.round == 1 and not state.finished
    assert len(state.candidates) == 3 and {c.origin for c in state.candidates} == {"conair"}
    fast, wrong, loop = (c.id for c in state.candidates)
    names = {t.id: t.name for t in state.tests}
    assert sorted(names.values()) == [
        "test_basic",
        "test_duplicates_in_a",
        "test_duplicates_once",
        "test_empty_r1",
    ], "the LLM's test_empty is renamed: the person's tests already have one"
    by_name = {v: k for k, v in names.items()}
    # The matrix: the wrong version fails the right test and passes the wrong one.
    assert state.matrix[wrong][by_name["test_duplicates_in_a"]] == "fail"
    assert state.matrix[wrong][by_name["test_duplicates_once"]] == "pass"
    assert state.matrix[fast][by_name["test_duplicates_once"]] == "fail"
    # Behaviour on the workload: the two correct versions behave like each other.
    assert any({fast, loop} <= set(cl) for cl in state.clusters)
    assert not any(wrong in cl and fast in cl for cl in state.clusters)
    assert state.ranking[-1].candidate_id == wrong
    # The wrong version fails the session's own duplicates test: incorrect on trusted
    # evidence already, so nothing needs asking to tell it apart. The one question is the
    # test the original code fails: it contradicts the baseline.
    assert state.ranking[-1].correct is False
    assert [q.test.name for q in state.questions] == ["test_duplicates_once"]
    assert state.questions[0].contradicts_baseline
    assert state.baseline_outcomes[by_name["test_duplicates_once"]] == "fail"
    assert state.effort == 1

    answers = [services.TestAnswer(by_name["test_duplicates_once"], "reject")]
    ada = services.Actor(name="ada", role="admin")
    state = services.answer_tests(sid, answers, actor=ada, ctx=ctx)

    assert state.finished and state.round == 2
    assert "passes every validated test" in state.reason
    assert state.ranking[0].candidate_id != wrong and state.ranking[0].trusted_failed == 0
    wrong_rank = next(r for r in state.ranking if r.candidate_id == wrong)
    # It fails the session's own duplicates test and its outputs differ from the baseline's
    # on the workload (the workload has duplicates).
    assert wrong_rank.trusted_failed == 2 and wrong_rank.rank == len(state.ranking)
    assert wrong_rank.correct is False
    repaired = [c for c in state.candidates if c.parent_id == wrong]
    assert len(repaired) == 1 and repaired[0].origin == "conair"
    assert repaired[0].evaluation.correct is not False
    new_tests = [t for t in state.tests if t.round == 2]
    assert [t.name for t in new_tests] == ["test_duplicates_once_r2"]
    assert all(state.matrix[c][new_tests[0].id] == "pass" for c in (fast, loop))
    # Rounds, answers and effort are recorded.
    assert [r.number for r in state.rounds] == [1, 2]
    assert [a["answer"] for a in state.rounds[0].answers] == ["reject"]
    assert state.effort == 1
    assert services.conair_state(sid, ctx=ctx) == state
    tests = {t.id: t for t in services.get_session(sid, ctx=ctx).tests}
    assert tests[by_name["test_duplicates_once"]].validation == "rejected"
    assert tests[by_name["test_duplicates_in_a"]].validation == "unvalidated"
    # The repair prompts carried the person's verdict and the trusted test that failed.
    assert "test_duplicates_once" in transcript.calls[1][-1]["content"]
    assert "test_duplicates_count_each_time" in transcript.calls[2][-1]["content"]
    # The chosen version was judged on trusted tests only: correct and faster.
    top = next(
        c
        for c in services.get_session(sid, ctx=ctx).candidates
        if c.id == state.ranking[0].candidate_id
    )
    assert top.evaluation.correct and top.evaluation.verdict == "faster"
    with pytest.raises(services.InvalidInput):
        services.answer_tests(sid, answers, ctx=ctx)


def test_a_validated_test_outweighs_any_number_of_unvalidated_ones():
    from tests.services.test_figures import candidate

    a, b = candidate(2), candidate(3)
    tests = [
        services.TestCaseView(
            id=t,
            name=f"t{t}",
            source="",
            origin="llm",
            validation="accepted" if t == 1 else "unvalidated",
            corrected_source=None,
            round=1,
        )
        for t in range(1, 7)
    ]
    cells = {(2, 1): "pass"} | {(3, t): "pass" for t in range(2, 7)} | {(3, 1): "fail"}
    ranking = rank([a, b], tests, cells, [[2], [3]], {}, None)
    assert [r.candidate_id for r in ranking] == [2, 3]
    # Nothing splits when every open test is passed by the same side only for candidate 3.
    questions = choose_questions(ranking, tests, cells, 2)
    assert all(q.split == 1.0 for q in questions)


# --- trusted evidence: four candidates, one generated test with a wrong expected value -------

FROZEN = """\
def count_common(a, b):
    seen = frozenset(b)
    return sum(map(seen.__contains__, a))
"""

# Subtly wrong: it skips negative numbers. The session's own tests and the workload have none,
# so only a generated test can tell.
SKIPS_NEGATIVES = """\
def count_common(a, b):
    seen = set(b)
    return sum(1 for x in a if x >= 0 and x in seen)
"""

FOUR_AND_A_WRONG_TEST = f"""Four versions and six tests.

```python
# candidate 1
{FASTER}```

```python
# candidate 2
{LOOP_WITH_SET}```

```python
# candidate 3
{FROZEN}```

```python
# candidate 4
{SKIPS_NEGATIVES}```

```python
# tests
from target import count_common


def test_basic():
    assert count_common([1, 2, 3], [2, 3]) == 2


def test_negative_numbers():
    assert count_common([-1, -2, 3], [-1, 3]) == 2


def test_duplicates_once():
    assert count_common([1, 1], [1]) == 1


def test_no_overlap():
    assert count_common([1, 2], [3]) == 0


def test_empty_b():
    assert count_common([1, 2], []) == 0


def test_single():
    assert count_common([7], [7, 7]) == 1
```
"""

REPAIRED_DUPLICATES_TEST = """The original counts every occurrence in a.

```python
from target import count_common


def test_duplicates_once():
    assert count_common([1, 1], [1]) == 2
```
"""

REPAIRED_NEGATIVES = f"""Negative numbers count too.

```python
{FASTER}```
"""


def _session(ctx, model: str = "recorded/transcript") -> int:  # noqa: ANN001
    view = services.create_session(
        baseline_source=BASELINE,
        entry_point="count_common",
        workload_source=WORKLOAD,
        tests_source=TESTS,
        model=model,
        mode="conair",
        ctx=ctx,
    )
    return view.info.id


def _latest(sid: int, ctx) -> dict[int, services.CandidateView]:  # noqa: ANN001
    return {c.id: c for c in services.get_session(sid, ctx=ctx).candidates}


@pytest.mark.slow
def test_conair_judges_candidates_by_trusted_tests_and_recomputes_after_answers_recorded_transcript(  # noqa: E501
    ctx,
):
    transcript = recorded.install(
        [FOUR_AND_A_WRONG_TEST, REPAIRED_DUPLICATES_TEST, REPAIRED_NEGATIVES]
    )
    sid = _session(ctx, model="recorded/session-model")
    state = services.start_conair(sid, model="recorded/chosen-on-the-page", ctx=ctx)

    # The model chosen on the page answered, not the session's.
    replies = [m for m in services.get_session(sid, ctx=ctx).messages if m.role == "assistant"]
    assert [m.model for m in replies] == ["recorded/chosen-on-the-page"]
    fast, loop, frozen, skips = (c.id for c in state.candidates)
    by_name = {t.name: t.id for t in state.tests}
    wrong_test, negatives = by_name["test_duplicates_once"], by_name["test_negative_numbers"]
    # Round 1: every candidate is judged on trusted evidence (the session's own tests and the
    # baseline's outputs), so the wrong generated test makes none of them incorrect; every
    # correct one is timed.
    cands = _latest(sid, ctx)
    for cid in (fast, loop, frozen, skips):
        ev = cands[cid].evaluation
        assert ev.status == "ok" and ev.correct, (cid, ev.status, ev.error, ev.test_failures)
        assert ev.speedup is not None and ev.verdict is not None, cid
        assert ev.tests_passed == 2 and not ev.tests_failed  # the session's two tests
    figures = services.get_session(sid, ctx=ctx).figures
    assert figures.candidates_correct == 4
    assert all(p.correct for p in figures.series)
    # The baseline ran through the matrix: it fails the wrong test, which contradicts it.
    assert state.baseline_outcomes[wrong_test] == "fail"
    assert {o for t, o in state.baseline_outcomes.items() if t != wrong_test} == {"pass"}
    assert all(state.matrix[c][wrong_test] == "fail" for c in (fast, loop, frozen, skips))
    # Unvalidated tests rank the candidates and are shown as such, never as incorrect.
    ranked = {r.candidate_id: r for r in state.ranking}
    assert all(ranked[c].correct for c in ranked)
    assert (ranked[fast].unvalidated_failed, ranked[fast].unvalidated_total) == (1, 6)
    assert (ranked[skips].unvalidated_failed, ranked[skips].unvalidated_total) == (2, 6)
    assert state.ranking[-1].candidate_id == skips
    assert ranked[fast].speedup == cands[fast].evaluation.speedup
    assert cands[fast].meta["conair_unvalidated"] == {"run": 1, "failed": 1, "total": 6}
    # Asked first: the test that contradicts the baseline; then the one that splits them.
    assert [(q.test.id, q.contradicts_baseline) for q in state.questions] == [
        (wrong_test, True),
        (negatives, False),
    ]
    assert state.questions[1].failing == [skips]

    state = services.answer_tests(
        sid,
        [services.TestAnswer(wrong_test, "reject"), services.TestAnswer(negatives, "accept")],
        actor=services.Actor(name="ada", role="admin"),
        model="recorded/chosen-on-the-page",
        ctx=ctx,
    )

    # Every candidate's status was recomputed from the tests trusted now.
    cands = _latest(sid, ctx)
    skipped = cands[skips].evaluation
    assert skipped.correct is False and skipped.speedup is None
    assert [f["name"].rsplit("::", 1)[-1] for f in skipped.test_failures] == [
        "test_negative_numbers"
    ]
    for cid in (fast, loop, frozen):
        ev = cands[cid].evaluation
        assert ev.correct and ev.tests_passed == 3, (cid, ev.test_failures)  # + the accepted one
        assert ev.speedup is not None and ev.verdict is not None  # the earlier timing, kept
    # The skipping version was sent back with the accepted test; its repair is judged and timed.
    repaired = [c for c in cands.values() if c.parent_id == skips]
    assert len(repaired) == 1 and repaired[0].evaluation.correct
    assert repaired[0].evaluation.speedup is not None
    assert "test_negative_numbers" in transcript.calls[2][-1]["content"]
    figures = services.get_session(sid, ctx=ctx).figures
    assert (figures.candidates_tried, figures.candidates_correct) == (5, 4)
    assert {p.candidate_id for p in figures.series if p.correct is False} == {skips}
    ranked = {r.candidate_id: r for r in state.ranking}
    assert ranked[skips].correct is False and ranked[skips].trusted_failed == 1
    assert state.ranking[0].correct and state.ranking[0].speedup is not None
    assert state.finished, state.questions
    assert wrong_test not in {t.id for t in state.tests}
    assert all(m.model == "recorded/chosen-on-the-page" for m in
               services.get_session(sid, ctx=ctx).messages if m.role == "assistant")  # fmt: skip

    # A finished run can be followed by a new one in the same session.
    with pytest.raises(services.InvalidInput):
        services.answer_tests(sid, [services.TestAnswer(negatives, "accept")], ctx=ctx)
    recorded.install([ROUND_1])
    again = services.start_conair(sid, n_candidates=3, n_tests=4, ctx=ctx)
    assert (again.run, again.round, again.finished) == (2, 1, False)
    assert [r.number for r in again.rounds] == [1]
    assert {c.id for c in again.candidates}.isdisjoint(cands)
    # The test accepted in run 1 is trusted in run 2 as well; rejected ones are gone.
    assert negatives in {t.id for t in again.tests}
    assert wrong_test not in {t.id for t in again.tests}
    assert services.conair_state(sid, ctx=ctx).run == 2


def test_a_test_the_baseline_fails_is_asked_first():
    from tests.services.test_figures import candidate

    cands = [candidate(2), candidate(3), candidate(4)]
    tests = [
        services.TestCaseView(
            id=t,
            name=f"t{t}",
            source="",
            origin="llm",
            validation="unvalidated",
            corrected_source=None,
            round=1,
        )
        for t in (1, 2)
    ]
    # t1 splits the candidates evenly-ish; t2 everybody fails, the baseline too.
    cells = {(2, 1): "pass", (3, 1): "fail", (4, 1): "pass"}
    cells |= {(c, 2): "fail" for c in (2, 3, 4)}
    baseline = {1: "pass", 2: "fail"}
    ranking = rank(cands, tests, cells, [[2, 3, 4]], baseline, 0)
    questions = choose_questions(ranking, tests, cells, 2, baseline)
    assert [(q.test.id, q.contradicts_baseline) for q in questions] == [(2, True), (1, False)]
    # A test contradicting the baseline carries no weight in the ranking while unvalidated.
    assert len({r.score for r in ranking if r.candidate_id in (2, 4)}) == 1
    assert next(r for r in ranking if r.candidate_id == 3).rank == 3
