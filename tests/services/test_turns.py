"""Chat turns end to end: prompt with profiling feedback, streamed reply, candidates merged and
evaluated by the real sandbox, verdicts fed back. Remote providers are replaced by recorded
transcripts (tests/llm/recorded.py), as the test names say."""

from __future__ import annotations

import time

import pytest

from app import services
from tests.llm import recorded
from tests.services.conftest import BASELINE, FASTER, TESTS, WORKLOAD, WRONG, reply_with

MODEL = "recorded/transcript"


@pytest.fixture
def session(ctx):
    view = services.create_session(
        baseline_source=BASELINE,
        entry_point="count_common",
        workload_source=WORKLOAD,
        tests_source=TESTS,
        model=MODEL,
        ctx=ctx,
    )
    assert view.ready
    return view


def rows(ctx, sid):
    view = services.get_session(sid, ctx=ctx)
    return [(m.id, m.role, m.kind, m.content) for m in view.messages], [
        (c.id, c.source) for c in view.candidates
    ]


@pytest.mark.slow
def test_multi_turn_session_finds_a_faster_version_recorded_transcript(ctx, session):
    transcript = recorded.install(
        [
            reply_with(WRONG, "Intersect the two sets: O(n) instead of O(n·m)."),
            reply_with(
                FASTER, "Right, duplicates in a count. Keep the loop, but look up in a set."
            ),
        ]
    )
    sid = session.info.id
    tokens: list[str] = []
    first = services.run_turn(sid, on_token=tokens.append, ctx=ctx)
    assert "".join(tokens) == first.reply
    [wrong] = first.candidates
    assert wrong.parent_id == session.baseline.id and wrong.origin == "llm"
    assert wrong.evaluation.status == "failed" and wrong.evaluation.correct is False
    assert wrong.evaluation.tests_failed == 1

    # Profiling-guided prompting: the first prompt carried the baseline's hottest line.
    first_prompt = transcript.calls[0][-1]["content"]
    assert "if x in b:" in first_prompt.split("hottest lines")[1]

    second = services.run_turn(sid, "Duplicates must count every time. Try again.", ctx=ctx)
    [fast] = second.candidates
    ev = fast.evaluation
    assert ev.status == "ok" and ev.correct is True
    assert ev.verdict == "faster" and ev.speedup > 2 and ev.ci_low > 1
    # The second prompt held the verdict on the wrong version and the conversation so far.
    second_prompt = transcript.calls[1]
    assert any("WRONG — 1 test(s) failed" in m["content"] for m in second_prompt)
    assert second_prompt[0]["role"] == "system"
    assert "Intersect the two sets" in " ".join(m["content"] for m in second_prompt)

    view = services.get_session(sid, ctx=ctx)
    assert view.best.id == fast.id
    f = view.figures
    assert (f.candidates_tried, f.candidates_correct, f.candidates_faster) == (2, 1, 1)
    assert f.best_speedup == ev.speedup and f.llm_calls == 2 and f.tokens > 0
    assert f.eff_at_k[1] == pytest.approx(ev.speedup / 2)
    kinds = [(m.role, m.kind) for m in view.messages]
    assert kinds == [("user", "chat"), ("assistant", "chat"), ("user", "verdict")] * 2
    assert [c.iteration for c in view.candidates] == [0, 1, 2]


@pytest.mark.slow
def test_branching_and_human_edits(ctx, session):
    recorded.install([reply_with(FASTER)])
    sid = session.info.id
    turn = services.run_turn(sid, ctx=ctx)
    fast = turn.candidates[0]
    human = services.add_human_candidate(
        sid, FASTER.replace("seen = set(b)", "seen = frozenset(b)"), parent_id=fast.id, ctx=ctx
    )
    assert human.origin == "human" and human.parent_id == fast.id
    assert human.evaluation.correct
    marked = services.mark_best(human.id, ctx=ctx)
    assert marked.is_best and services.best_candidate(sid, ctx=ctx).id == human.id
    services.clear_best(sid, ctx=ctx)
    best = services.best_candidate(sid, ctx=ctx)
    faster = [c for c in (fast, human) if c.evaluation.verdict == "faster"]
    assert best.id == max(faster, key=lambda c: c.evaluation.speedup).id
    assert "frozenset" in services.candidate_diff(fast.id, human.id, ctx=ctx)
    with pytest.raises(services.CodeDoesNotParse):
        services.add_human_candidate(sid, "def count_common(a, b)\n", ctx=ctx)
    assert len(services.get_session(sid, ctx=ctx).candidates) == 3, "nothing stored"


def test_reply_without_code_says_so_and_loses_nothing_recorded_transcript(ctx, session):
    recorded.install(["I would use a set for `b`, but I need to see the data first."])
    sid = session.info.id
    before_msgs, before_cands = rows(ctx, sid)
    result = services.run_turn(sid, ctx=ctx)
    assert result.candidates == []
    assert result.notice == (
        "The reply proposed no new code version: it contains no ```python block."
    )
    after_msgs, after_cands = rows(ctx, sid)
    assert after_msgs[: len(before_msgs)] == before_msgs and after_cands == before_cands
    assert [m[1:3] for m in after_msgs[len(before_msgs) :]] == [
        ("user", "chat"),
        ("assistant", "chat"),
        ("system", "notice"),
    ]
    assert after_msgs[-1][3] == result.notice


def test_provider_error_mid_stream_keeps_everything_recorded_transcript(ctx, session):
    recorded.install(
        [recorded.Broken("Use a set for b:\n```python\ndef count_", recorded.connection_error())]
    )
    sid = session.info.id
    before_msgs, before_cands = rows(ctx, sid)
    with pytest.raises(services.ModelError) as info:
        services.run_turn(sid, "Make it fast", ctx=ctx)
    err = info.value
    assert "the reply broke off" in str(err) and "could not reach the model server" in str(err)
    assert err.retryable is False
    after_msgs, after_cands = rows(ctx, sid)
    assert after_msgs[: len(before_msgs)] == before_msgs and after_cands == before_cands
    user, partial = after_msgs[len(before_msgs) :]
    assert user[1:] == ("user", "chat", "Make it fast")
    assert partial[1:3] == ("assistant", "error")
    assert partial[3] == "Use a set for b:\n```python\ndef count_", "the partial reply is kept"
    assert err.stored["message_id"] == partial[0] and err.stored["user_message_id"] == user[0]


def test_a_missing_key_fails_before_the_call_and_keeps_the_request_mock_provider(ctx, session):
    with pytest.raises(services.ModelError) as info:
        services.run_turn(session.info.id, "faster please", model="openai/gpt-4o-mini", ctx=ctx)
    assert str(info.value) == (
        "no API key for openai — set OPENAI_API_KEY or choose the local model"
    )
    msgs, _ = rows(ctx, session.info.id)
    assert msgs[-2][1:] == ("user", "chat", "faster please")


def test_a_turn_runs_in_the_background_and_can_be_polled_mock_provider(ctx, session):
    ctx.llm_options = {"mock_response": "No code this time, sorry."}
    job = services.submit_job("turn", session_id=session.info.id, params={"text": "hello"}, ctx=ctx)
    snap = services.wait_job(job.id, 60, ctx=ctx)
    assert snap.state == "done", snap.error
    assert snap.text == "No code this time, sorry." and snap.tokens > 1
    assert isinstance(snap.result, services.TurnResult) and snap.result.notice
    assert [s for s, _ in snap.progress][:2] == ["prompt", "llm"]
    assert job.id in [j.id for j in services.list_jobs(session.info.id, ctx=ctx)]


def test_a_background_turn_can_be_cancelled_recorded_transcript(ctx, session):
    recorded.install(["word " * 400], delay_s=0.01)
    job = services.submit_job("turn", session_id=session.info.id, params={"text": "go"}, ctx=ctx)
    deadline = time.monotonic() + 30
    while services.get_job(job.id, ctx=ctx).tokens == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    services.cancel_job(job.id, ctx=ctx)
    snap = services.wait_job(job.id, 60, ctx=ctx)
    assert snap.state == "cancelled"
    assert 0 < len(snap.text) < len("word " * 400), "the row keeps the partial reply"
    msgs, _ = rows(ctx, session.info.id)
    assert msgs[-1][1:3] == ("assistant", "error")
    assert 0 < len(msgs[-1][3]) < len("word " * 400), "the partial reply is kept"


def test_a_session_that_is_not_ready_refuses_turns(ctx):
    view = services.create_session(
        baseline_source=BASELINE,
        entry_point="nope",
        workload_source=WORKLOAD,
        validate=False,
        ctx=ctx,
    )
    with pytest.raises(services.InvalidInput) as info:
        services.run_turn(view.info.id, ctx=ctx)
    assert "not ready" in str(info.value)


@pytest.mark.slow
def test_several_versions_in_a_reply_are_judged_in_one_sandbox_task_recorded_transcript(
    sqlite_engine, make_ctx
):
    ctx = make_ctx(sqlite_engine, eval_workers=1)
    view = services.create_session(
        baseline_source=BASELINE,
        entry_point="count_common",
        workload_source=WORKLOAD,
        tests_source=TESTS,
        model=MODEL,
        ctx=ctx,
    )
    recorded.install([reply_with(FASTER) + "\nOr:\n" + reply_with(WRONG)])
    events: list[tuple[str, dict]] = []
    result = services.run_turn(
        view.info.id, ctx=ctx, on_progress=lambda stage, info: events.append((stage, info))
    )
    fast, wrong = result.candidates
    ids = [fast.id, wrong.id]
    sandbox_events = [(s, i) for s, i in events if i.get("candidate_ids") == ids]
    # One task for both (the baseline timed once), on the one-worker pool.
    assert [s for s, _ in sandbox_events].count("start") == 1
    assert [s for s, _ in sandbox_events].count("done") == 1
    per_candidate = {(s, i["candidate_id"]) for s, i in sandbox_events if "candidate_id" in i}
    assert {("tests", fast.id), ("tests", wrong.id), ("timing", fast.id)} <= per_candidate
    assert fast.evaluation.status == "ok" and fast.evaluation.verdict == "faster"
    assert fast.evaluation.speedup > 1 and fast.evaluation.ci_low > 1
    assert wrong.evaluation.status == "failed" and wrong.evaluation.tests_failed == 1
    assert wrong.evaluation.speedup is None
