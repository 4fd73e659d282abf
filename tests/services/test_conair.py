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
    # The questions are the two tests that split the candidates.
    asked = {q.test.name for q in state.questions}
    assert asked == {"test_duplicates_in_a", "test_duplicates_once"}
    assert state.effort == 2

    answers = [
        services.TestAnswer(by_name["test_duplicates_in_a"], "accept"),
        services.TestAnswer(by_name["test_duplicates_once"], "reject"),
    ]
    state = services.answer_tests(sid, answers, validated_by="ada", ctx=ctx)

    assert state.finished and state.round == 2
    assert "passes every validated test" in state.reason
    assert state.ranking[0].candidate_id != wrong and state.ranking[0].trusted_failed == 0
    wrong_rank = next(r for r in state.ranking if r.candidate_id == wrong)
    assert wrong_rank.trusted_failed == 1 and wrong_rank.rank == len(state.ranking)
    repaired = [c for c in state.candidates if c.parent_id == wrong]
    assert len(repaired) == 1 and repaired[0].origin == "conair"
    assert repaired[0].evaluation.correct is not False
    new_tests = [t for t in state.tests if t.round == 2]
    assert [t.name for t in new_tests] == ["test_duplicates_once_r2"]
    assert all(state.matrix[c][new_tests[0].id] == "pass" for c in (fast, loop))
    # Rounds, answers and effort are recorded.
    assert [r.number for r in state.rounds] == [1, 2]
    assert [a["answer"] for a in state.rounds[0].answers] == ["accept", "reject"]
    assert state.effort == 2
    assert services.conair_state(sid, ctx=ctx) == state
    tests = {t.id: t for t in services.get_session(sid, ctx=ctx).tests}
    assert tests[by_name["test_duplicates_once"]].validation == "rejected"
    assert tests[by_name["test_duplicates_in_a"]].validation == "accepted"
    # The repair prompts carried the person's verdicts.
    assert "test_duplicates_once" in transcript.calls[1][-1]["content"]
    assert "test_duplicates_in_a" in transcript.calls[2][-1]["content"]
    # The chosen version was re-evaluated on trusted tests only: correct and faster.
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
