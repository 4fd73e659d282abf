"""The Optimize page's two other modes. ConAIR: the tests to validate (accept / reject /
correct), the candidate ranking per round and the effort spent. Summary: editable summary items;
choosing an item highlights its lines; after the edit, the changed items and the diff."""

from __future__ import annotations

import html

import pandas as pd
import streamlit as st

from app import services
from app.services import SessionView, SummaryItem, ui_support
from app.ui import jobs
from app.ui.errors import guard
from app.ui.models import chosen as chosen_model
from app.ui.state import KEEP, author, default

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


def conair_panel(view: SessionView) -> None:
    sid = view.info.id
    state = None
    try:
        state = services.conair_state(sid)
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
            "runs every version against every test; you validate the few tests that split "
            "the best versions, and the ranking follows."
        )
        default(f"{KEEP}conair:{sid}:instruction", services.DEFAULT_INSTRUCTION)
        st.text_area("Instruction", key=f"{KEEP}conair:{sid}:instruction", height=80)
        cols = st.columns(2)
        default(f"{KEEP}conair:{sid}:n", 4)
        default(f"{KEEP}conair:{sid}:m", 6)
        cols[0].number_input("Candidates", 2, 8, key=f"{KEEP}conair:{sid}:n")
        cols[1].number_input("Tests", 2, 12, key=f"{KEEP}conair:{sid}:m")
        if st.button("Start ConAIR", key=f"conair_start_{sid}", disabled=busy or not view.ready):
            with guard("starting ConAIR"):
                s = st.session_state
                jobs.start(
                    ui_support.start_background,
                    "conair",
                    services.start_conair,
                    sid,
                    instruction=s[f"{KEEP}conair:{sid}:instruction"],
                    n_candidates=int(s[f"{KEEP}conair:{sid}:n"]),
                    n_tests=int(s[f"{KEEP}conair:{sid}:m"]),
                    model=chosen_model(sid),
                    session_id=sid,
                )
                st.rerun()
        return

    cols = st.columns(3)
    cols[0].metric("Round", state.round)
    cols[1].metric("Validations asked", state.effort)
    cols[2].metric("State", "finished" if state.finished else "waiting for you")
    if state.finished and state.reason:
        st.success(f"Finished: {state.reason}.")
    if state.ranking:
        st.markdown("**Ranking this round**")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "rank": r.rank,
                        "candidate": f"#{r.candidate_id}",
                        "score": round(r.score, 3),
                        "tests passed": r.tests_passed,
                        "fails trusted tests": r.trusted_failed,
                        "behaviour cluster": r.cluster,
                    }
                    for r in state.ranking
                ]
            ),
            hide_index=True,
        )
    if state.questions:
        st.markdown("**Validate these tests** (they split the top candidates most)")
        for q in state.questions:
            tid = q.test.id
            with st.container(border=True):
                st.markdown(f"Test `{q.test.name}` · splits {q.split:.0%}")
                st.code(q.test.effective_source, language="python")
                st.caption(
                    f"passes: {', '.join(f'#{c}' for c in q.passing) or 'none'} · "
                    f"fails: {', '.join(f'#{c}' for c in q.failing) or 'none'}"
                )
                default(f"{KEEP}conair:{sid}:answer:{tid}", "accept")
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
                    ui_support.start_background,
                    "conair",
                    services.answer_tests,
                    sid,
                    answers,
                    validated_by=author(),
                    model=chosen_model(sid),
                    session_id=sid,
                )
                st.rerun()
    if state.rounds:
        with st.expander(f"Rounds so far ({len(state.rounds)})"):
            for r in state.rounds:
                top = r.ranking[0].get("candidate_id") if r.ranking else None
                st.markdown(
                    f"Round {r.number}: {r.validations_asked} validation(s) asked, "
                    f"top candidate {('#' + str(top)) if top else '—'}"
                    + (" · finished" if r.finished else "")
                )


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
        summaries = services.list_summaries(cid)
    if st.button("Summarize", key=f"summarize_{sid}", disabled=busy or not view.ready):
        with guard("starting the summary"):
            jobs.start(
                ui_support.start_background,
                "summary",
                services.summarize,
                cid,
                granularity=st.session_state[f"{KEEP}summary:{sid}:granularity"],
                model=chosen_model(sid),
                session_id=sid,
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
                ui_support.start_background,
                "summary edit",
                services.apply_summary_edit,
                summary.id,
                edited,
                model=chosen_model(sid),
                session_id=sid,
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
