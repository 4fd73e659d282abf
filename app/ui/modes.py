"""The Optimize page's two other modes. ConAIR: the tests to validate (accept / reject /
correct), the candidate ranking per round and the effort spent. Summary: editable summary items;
choosing an item highlights its lines; after the edit, the changed items and the diff."""

from __future__ import annotations

import html

import pandas as pd
import streamlit as st

from app import services
from app.services import SessionView, SummaryItem
from app.ui import jobs
from app.ui.errors import guard
from app.ui.identity import actor
from app.ui.models import chosen as chosen_model
from app.ui.state import KEEP, default

_HL = "#FFF3B0"  # highlighted lines (pale yellow: readable for every colour vision)


def highlighted_html(source: str, spans: list[tuple[int, int]]) -> str:
    """The code with line numbers, the lines inside ``spans`` (1-based, inclusive) tinted."""
    marked = {n for a, b in spans for n in range(a, b + 1)}
    rows = []
    for n, line in enumerate(source.splitlines(), start=1):
        bg = f"background:{_HL};" if n in marked else ""
        rows.append(
            f'<div style="{bg}white-space:pre"><span style="color:#888;display:inline-block;'
            f'width:3em;text-align:right;margin-right:1em">{n}</span>{html.escape(line)}</div>'
        )
    return (
        '<div style="font-family:monospace;font-size:0.85em;overflow-x:auto;'
        f'border:1px solid #ddd;border-radius:4px;padding:4px">{"".join(rows)}</div>'
    )


# --- ConAIR -------------------------------------------------------------------------------


def _ids(ids: list[int]) -> str:
    return ", ".join(f"#{c}" for c in ids)


def question_reason(q: services.TestQuestion) -> str:
    """Why a test is asked, in words (pure: unit tested)."""
    if q.contradicts_baseline:
        return (
            "⚠️ **This test contradicts the baseline**: the original code fails it, and an "
            "optimisation must behave exactly like the original. Its expected value is most "
            "likely wrong — reject it (or correct it) unless the original itself is wrong."
        )
    n = len(q.passing) + len(q.failing)
    if q.passing and q.failing:
        passes = "passes" if len(q.passing) == 1 else "pass"
        fails = "fails" if len(q.failing) == 1 else "fail"
        return (
            f"It separates the top {n} candidates: {_ids(q.passing)} {passes} it, "
            f"{_ids(q.failing)} {fails} it. Your answer decides which of them behave right."
        )
    if q.failing:
        return (
            f"All of the top {n} candidates ({_ids(q.failing)}) fail it: if it is right, "
            "none of them is."
        )
    return f"All of the top {n} candidates ({_ids(q.passing)}) pass it."


def speedup_words(r: services.RankedCandidate) -> str:
    if r.speedup is None:
        return "—"
    ci = "" if r.ci_low is None or r.ci_high is None else f" [{r.ci_low:.2f}–{r.ci_high:.2f}]"
    return f"{r.speedup:.2f}×{ci}" + (f" {r.verdict}" if r.verdict else "")


def unvalidated_words(r: services.RankedCandidate) -> str:
    if not r.unvalidated_total:
        return "—"
    if not r.unvalidated_failed:
        return f"passes all {r.unvalidated_total}"
    return f"fails {r.unvalidated_failed} of {r.unvalidated_total}"


def _correct_words(correct: bool | None) -> str:
    return {True: "✅ correct", False: "❌ incorrect"}.get(correct, "⏳ not judged")  # type: ignore[arg-type]


def _ranking_table(state: services.ConairState) -> None:
    by_id = {c.id: c for c in state.candidates}
    rows = []
    for r in state.ranking:
        ev = by_id[r.candidate_id].evaluation if r.candidate_id in by_id else None
        same = None if ev is None else ev.equivalent
        rows.append(
            {
                "rank": r.rank,
                "candidate": f"#{r.candidate_id}",
                "trusted verdict": _correct_words(r.correct),
                "speedup [95% CI]": speedup_words(r),
                "unvalidated tests": unvalidated_words(r),
                "trusted failures": r.trusted_failed,
                "outputs on the workload": {True: "same as the original", False: "differ"}.get(
                    same,
                    "—",  # type: ignore[arg-type]
                ),
                "score": round(r.score, 3),
            }
        )
    st.markdown("**Ranking this round**")
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption(
        "Correct = passes the session's own tests and the tests you accepted or corrected, and "
        "gives the original's outputs on the workload. Unvalidated generated tests only order "
        "the candidates; they never make one incorrect."
    )


def _matrix_table(state: services.ConairState) -> None:
    if not state.tests:
        return
    mark = {"pass": "✅", "fail": "❌", "error": "⚠️"}
    validation = {"unvalidated": "unvalidated", "accepted": "accepted", "corrected": "corrected"}

    def column(t: services.TestCaseView) -> str:
        against = t.validation == "unvalidated" and state.baseline_outcomes.get(t.id) == "fail"
        status = "contradicts the original" if against else validation.get(t.validation, "")
        return f"{t.name} ({status or t.validation})"

    rows = [
        {"version": "original (baseline)"}
        | {column(t): mark.get(state.baseline_outcomes.get(t.id, ""), "") for t in state.tests}
    ]
    for c in state.candidates:
        outs = state.matrix.get(c.id, {})
        rows.append(
            {"version": f"#{c.id}"}
            | {column(t): mark.get(outs.get(t.id, ""), "") for t in state.tests}
        )
    with st.expander(f"Every version on every generated test ({len(state.tests)} tests)"):
        st.dataframe(pd.DataFrame(rows), hide_index=True)


def _start_form(view: SessionView, *, again: bool, busy: bool, model: str | None) -> None:
    sid = view.info.id
    default(f"{KEEP}conair:{sid}:instruction", services.DEFAULT_INSTRUCTION)
    st.text_area("Instruction", key=f"{KEEP}conair:{sid}:instruction", height=80)
    cols = st.columns(2)
    default(f"{KEEP}conair:{sid}:n", 4)
    default(f"{KEEP}conair:{sid}:m", 6)
    cols[0].number_input("Candidates", 2, 8, key=f"{KEEP}conair:{sid}:n")
    cols[1].number_input("Tests", 2, 12, key=f"{KEEP}conair:{sid}:m")
    label = "Start a new ConAIR run" if again else "Start ConAIR"
    if st.button(label, key=f"conair_start_{sid}", disabled=busy or not view.ready):
        with guard("starting ConAIR"):
            s = st.session_state
            jobs.start(
                "conair",
                session_id=sid,
                instruction=s[f"{KEEP}conair:{sid}:instruction"],
                n_candidates=int(s[f"{KEEP}conair:{sid}:n"]),
                n_tests=int(s[f"{KEEP}conair:{sid}:m"]),
                model=model,
            )
            st.rerun()


def _questions(state: services.ConairState, *, busy: bool, model: str | None) -> None:
    sid = state.session_id
    st.markdown("**Validate these tests** — is each one right about how the code must behave?")
    for q in state.questions:
        tid = q.test.id
        with st.container(border=True):
            st.markdown(f"Test `{q.test.name}`")
            st.markdown(question_reason(q))
            st.code(q.test.effective_source, language="python")
            default(
                f"{KEEP}conair:{sid}:answer:{tid}", "reject" if q.contradicts_baseline else "accept"
            )
            st.radio(
                "This test is",
                ["accept", "reject", "correct"],
                key=f"{KEEP}conair:{sid}:answer:{tid}",
                horizontal=True,
                format_func={
                    "accept": "right (accept)",
                    "reject": "wrong (reject)",
                    "correct": "wrong, here is the fix",
                }.get,
            )
            if st.session_state[f"{KEEP}conair:{sid}:answer:{tid}"] == "correct":
                default(f"{KEEP}conair:{sid}:fix:{tid}", q.test.effective_source)
                st.text_area("Corrected test", key=f"{KEEP}conair:{sid}:fix:{tid}")
    if st.button("Submit answers", key=f"conair_answer_{sid}", disabled=busy):
        s = st.session_state
        answers = [
            services.TestAnswer(
                test_case_id=q.test.id,
                answer=s[f"{KEEP}conair:{sid}:answer:{q.test.id}"],
                corrected_source=s.get(f"{KEEP}conair:{sid}:fix:{q.test.id}")
                if s[f"{KEEP}conair:{sid}:answer:{q.test.id}"] == "correct"
                else None,
            )
            for q in state.questions
        ]
        with guard("sending your answers"):
            jobs.start(
                "conair answer",
                session_id=sid,
                answers=answers,
                model=model,
            )
            st.rerun()


def conair_panel(view: SessionView, *, model: str | None = None) -> None:
    """ConAIR: start a run; per round the ranking, the tests to validate and why, the matrix;
    a finished run can be followed by a new one. ``model``: the model chosen on the page
    (None: the session's)."""
    sid = view.info.id
    state = None
    try:
        state = services.conair_state(sid, actor=actor())
    except services.NotFound:
        state = None
    except Exception as exc:  # noqa: BLE001 - shown as one message
        from app.ui.errors import show_error

        show_error(exc, doing="reading the ConAIR state")
        return
    busy = jobs.any_running(sid)
    if state is None:
        st.markdown(
            "**ConAIR**: the model proposes several versions and several tests; the sandbox "
            "runs every version and the original against every test; you validate the few "
            "tests that matter most, and the ranking follows."
        )
        _start_form(view, again=False, busy=busy, model=model)
        return

    cols = st.columns(4)
    cols[0].metric("Run", state.run)
    cols[1].metric("Round", state.round)
    cols[2].metric("Validations asked", state.effort)
    cols[3].metric("State", "finished" if state.finished else "waiting for you")
    if state.finished and state.reason:
        st.success(f"Finished: {state.reason}.")
    if state.ranking:
        _ranking_table(state)
    if state.questions:
        _questions(state, busy=busy, model=model)
    _matrix_table(state)
    if state.rounds:
        with st.expander(f"Rounds of this run ({len(state.rounds)})"):
            for r in state.rounds:
                top = r.ranking[0].get("candidate_id") if r.ranking else None
                st.markdown(
                    f"Round {r.number}: {r.validations_asked} validation(s) asked, "
                    f"top candidate {('#' + str(top)) if top else '—'}"
                    + (" · finished" if r.finished else "")
                )
    if state.finished:
        st.markdown("**Another run** — new candidates and tests from the current best version.")
        _start_form(view, again=True, busy=busy, model=model)


# --- summary --------------------------------------------------------------------------------


def _edited_items(prefix: str, count: int, originals: list[SummaryItem]) -> list[SummaryItem]:
    items = []
    for i in range(count):
        text = st.session_state.get(f"{prefix}:{i}", "").strip()
        if text:
            spans = originals[i].spans if i < len(originals) else []
            items.append(SummaryItem(text=text, spans=list(spans)))
    return items


def summary_panel(view: SessionView) -> None:
    sid = view.info.id
    busy = jobs.any_running(sid)
    if not view.candidates:
        st.info("The session has no code yet.")
        return
    ids = [c.id for c in view.candidates]
    key = f"{KEEP}summary:{sid}:candidate"
    if st.session_state.get(key) not in ids:
        st.session_state[key] = (view.best or view.candidates[-1]).id
    cols = st.columns(2)
    cols[0].selectbox(
        "Summarize candidate",
        ids,
        key=key,
        format_func=lambda i: f"#{i} ({view.candidate(i).origin})",
    )
    default(f"{KEEP}summary:{sid}:granularity", "step-by-step")
    cols[1].radio(
        "Granularity",
        ["overview", "step-by-step", "line-by-line"],
        key=f"{KEEP}summary:{sid}:granularity",
        horizontal=True,
    )
    cid = st.session_state[key]
    cand = view.candidate(cid)
    summaries: list[services.SummaryView] = []
    with guard("reading the summaries"):
        summaries = services.list_summaries(cid, actor=actor())
    if st.button("Summarize", key=f"summarize_{sid}", disabled=busy or not view.ready):
        with guard("starting the summary"):
            jobs.start(
                "summary",
                session_id=sid,
                candidate_id=cid,
                granularity=st.session_state[f"{KEEP}summary:{sid}:granularity"],
                model=chosen_model(sid),
            )
            st.rerun()
    if not summaries:
        st.caption("No summary of this candidate yet.")
        st.code(cand.source, language="python", line_numbers=True)
        return
    summary = summaries[-1]
    items = summary.items
    prefix = f"{KEEP}summary:{summary.id}:item"
    count_key = f"summary:{summary.id}:count"
    st.session_state.setdefault(count_key, len(items))
    for i, item in enumerate(items):
        default(f"{prefix}:{i}", item.text)
    if summary.repairs:
        st.caption("Line links repaired: " + "; ".join(summary.repairs))
    st.markdown("**Summary** — edit the items, then apply; choose an item to see its lines.")
    select_key = f"summary:{summary.id}:selected"
    count = st.session_state[count_key]
    for i in range(count):
        row = st.columns([1, 12])
        row[0].button(
            "👁",
            key=f"summary_sel_{summary.id}_{i}",
            help="Highlight this item's lines",
            on_click=lambda i=i: st.session_state.__setitem__(select_key, i),
        )
        row[1].text_input(f"Item {i + 1}", key=f"{prefix}:{i}", label_visibility="collapsed")
    if st.button("➕ Add an item", key=f"summary_add_{summary.id}"):
        st.session_state[count_key] = count + 1
        st.rerun()
    selected = st.session_state.get(select_key)
    spans = items[selected].spans if selected is not None and selected < len(items) else []
    st.html(highlighted_html(cand.source, spans))
    edited = _edited_items(prefix, count, items)
    changed = [it.text for it in edited] != [it.text for it in items]
    if st.button(
        "Apply the edited summary to the code",
        key=f"summary_apply_{summary.id}",
        disabled=busy or not changed,
        type="primary",
    ):
        with guard("applying the summary edit"):
            jobs.start(
                "summary edit",
                session_id=sid,
                summary_id=summary.id,
                edited_items=edited,
                model=chosen_model(sid),
            )
            st.rerun()


def follow_summary_edit(job_id: int, result: services.SummaryEditResult) -> None:
    """Once per applied edit: the summary panel moves to the new candidate and its refreshed
    summary, and forgets the edits of the old one (so no stale Apply stays enabled)."""
    seen = st.session_state.setdefault("summary:followed_jobs", [])
    if job_id in seen:
        return
    seen.append(job_id)
    c = result.candidate
    st.session_state[f"{KEEP}summary:{c.session_id}:candidate"] = c.id
    for key in list(st.session_state.keys()):
        if isinstance(key, str) and key.startswith(f"{KEEP}summary:") and ":item:" in key:
            del st.session_state[key]


def show_summary_edit(result: services.SummaryEditResult) -> None:
    st.success(f"The code now follows the edited summary: candidate #{result.candidate.id}.")
    symbol = {"added": "➕", "removed": "➖", "changed": "✏️"}
    lines = []
    for ch in result.changes:
        before = ch.before.text if ch.before else ""
        after = ch.after.text if ch.after else ""
        lines.append(f"{symbol[ch.kind]} {after or before}")
    if lines:
        st.markdown("**Changed items in the refreshed summary**  \n" + "  \n".join(lines))
    st.code(result.diff or "(no change)", language="diff")
