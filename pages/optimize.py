"""Optimize: the workspace. Write a session's inputs and run the baseline; then chat with the
optimizer and work the candidates (branch, edit by hand, mark best), or switch to ConAIR or
summary mode. Long work runs as background jobs; this page only starts and watches them."""

from __future__ import annotations

import streamlit as st

from app import charts, services
from app.ui import (
    candidate_card,
    code_input,
    examples,
    guard,
    jobs,
    modes,
    nav,
    project_form,
    set_code,
)
from app.ui.code import PLAIN_KEY
from app.ui.identity import actor
from app.ui.models import chosen as chosen_model
from app.ui.models import model_picker
from app.ui.session import header, transcript
from app.ui.state import KEEP, default
from app.ui.verdict import is_stopped, verdict_parts

st.title("Optimize")

with st.sidebar:
    st.toggle("Plain text editors", key=PLAIN_KEY, help="Text boxes instead of the code editor.")

session_id: int | None = None
with guard("listing the sessions"):
    session_id = nav.session_picker("pick:optimize", allow_new=True)


# --- a new session ------------------------------------------------------------------------


def new_session_form() -> None:
    st.subheader("New session")
    source = project_form.source_choice()
    if source != "paste":
        project_form.project_session_form(source)
        return
    default(f"{KEEP}new:title", examples.TITLE)
    default(f"{KEEP}new:entry", examples.ENTRY)
    for name, text in (
        ("baseline", examples.BASELINE),
        ("workload", examples.WORKLOAD),
        ("tests", examples.TESTS),
    ):
        default(f"{KEEP}new:{name}", text)
    top = st.columns(2)
    top[0].text_input("Title", key=f"{KEEP}new:title")
    top[1].text_input("Entry point (function name)", key=f"{KEEP}new:entry")
    model_picker("new")
    upload = st.file_uploader("…or upload a .py file", type=["py"], key="new:upload")
    if upload is not None and st.session_state.get("new:uploaded") != upload.file_id:
        st.session_state["new:uploaded"] = upload.file_id  # load each upload once
        set_code(f"{KEEP}new:baseline", upload.getvalue().decode("utf-8", errors="replace"))
    code_input("Code to optimize", f"{KEEP}new:baseline", height=14)
    left, right = st.columns(2)
    with left:
        code_input(
            "Workload",
            f"{KEEP}new:workload",
            height=12,
            help="A module with cases() yielding the arguments of realistic calls.",
        )
    with right:
        code_input(
            "Tests",
            f"{KEEP}new:tests",
            height=12,
            help="pytest tests; import the code with `from target import ...`.",
        )
    more = st.columns([2, 2, 3])
    more[0].selectbox("Mode", ["chat", "conair", "summary"], key=f"{KEEP}new:mode")
    more[1].selectbox("Visibility", ["team", "public", "private"], key=f"{KEEP}new:visibility")
    more[2].text_input("Tags (comma separated)", key=f"{KEEP}new:tags")
    if st.button("Create session and run the baseline", type="primary"):
        with guard("creating the session"):
            s = st.session_state
            view = services.create_session(
                baseline_source=s[f"{KEEP}new:baseline"],
                entry_point=s[f"{KEEP}new:entry"].strip(),
                workload_source=s[f"{KEEP}new:workload"],
                tests_source=s[f"{KEEP}new:tests"] or None,
                title=s[f"{KEEP}new:title"].strip() or None,
                actor=actor(),
                mode=s[f"{KEEP}new:mode"],
                model=chosen_model("new"),
                tags=[t.strip() for t in s[f"{KEEP}new:tags"].split(",") if t.strip()],
                visibility=s[f"{KEEP}new:visibility"],
                validate=False,  # stored now; validated in the background below
            )
            jobs.start("validation", session_id=view.info.id)
            nav.open_session(view.info.id)
            st.rerun()


# --- the workspace of one session -----------------------------------------------------------


def fix_inputs(view: services.SessionView) -> None:
    """The baseline did not validate: show why, and let the person fix the inputs in place."""
    sid = view.info.id
    if jobs.any_running(sid):
        return  # being validated: the job panel shows the steps
    if view.validation_error and view.validation_error not in jobs.shown_errors(sid):
        st.error(f"The baseline is not ready: {view.validation_error}")
    if view.candidates and len(view.candidates) > 1:
        return
    with st.expander("Fix the inputs and run the baseline again", expanded=True):
        base = view.baseline
        default(f"{KEEP}fix:{sid}:entry", view.info.entry_point)
        default(f"{KEEP}fix:{sid}:baseline", base.source if base else view.info.baseline_source)
        default(f"{KEEP}fix:{sid}:workload", view.info.workload_source)
        user_tests = "\n\n".join(t.source for t in view.tests if t.origin == "user")
        default(f"{KEEP}fix:{sid}:tests", user_tests)
        st.text_input("Entry point", key=f"{KEEP}fix:{sid}:entry")
        code_input("Code", f"{KEEP}fix:{sid}:baseline")
        code_input("Workload", f"{KEEP}fix:{sid}:workload", height=8)
        code_input("Tests", f"{KEEP}fix:{sid}:tests", height=8)
        if st.button("Save and run the baseline", key=f"fix_{sid}"):
            with guard("saving the inputs"):
                s = st.session_state
                services.update_session_inputs(
                    sid,
                    baseline_source=s[f"{KEEP}fix:{sid}:baseline"],
                    entry_point=s[f"{KEEP}fix:{sid}:entry"].strip(),
                    workload_source=s[f"{KEEP}fix:{sid}:workload"],
                    tests_source=s[f"{KEEP}fix:{sid}:tests"] or None,
                    validate=False,
                    actor=actor(),
                )
                jobs.start("validation", session_id=sid)
                st.rerun()


def pick_parent(sid: int) -> None:
    """The person chose the version to improve: keep it for the next turn."""
    st.session_state[f"parent_picked:{sid}"] = True


def follow_parent_default(sid: int, view: services.SessionView) -> None:
    """ "Improve version" follows the current best (else the baseline) every time the best
    changes, unless the person picked another version for the coming turn."""
    parent_key = f"{KEEP}parent:{sid}"
    ids = [c.id for c in view.candidates]
    best = view.best or view.baseline
    best_id = best.id if best else None
    picked = (
        st.session_state.get(f"parent_picked:{sid}") and st.session_state.get(parent_key) in ids
    )
    if not picked:
        st.session_state[parent_key] = best_id
        st.session_state.pop(f"parent_picked:{sid}", None)


def chat_controls(view: services.SessionView) -> None:
    sid = view.info.id
    ids = [c.id for c in view.candidates]
    parent_key = f"{KEEP}parent:{sid}"
    follow_parent_default(sid, view)
    cols = st.columns(2)
    best_id = (view.best or view.baseline).id if (view.best or view.baseline) else None
    cols[0].selectbox(
        "Improve version",
        ids,
        key=parent_key,
        format_func=lambda i: (
            f"#{i} ({view.candidate(i).origin})" + (" ⭐ best" if i == best_id else "")
        ),
        on_change=pick_parent,
        args=(sid,),
        help="The next turn improves this version: the current best unless you pick another "
        "(for this turn only).",
    )
    model = chosen_model(sid)
    cols[1].caption(f"Model: `{model}` (chosen above)")
    busy = jobs.any_running(sid)
    sent = st.session_state.get(f"chat_sent:{sid}")
    if sent and jobs.state_of(sent[0]) in ("failed", None):
        st.session_state[f"chat:{sid}"] = sent[1]  # the turn failed: the request is back
        st.session_state.pop(f"chat_sent:{sid}")
    elif sent and jobs.state_of(sent[0]) in ("done", "cancelled"):
        st.session_state.pop(f"chat_sent:{sid}")
    text = st.chat_input(
        "Ask the optimizer (empty: make it faster)…", key=f"chat:{sid}", disabled=busy
    )
    if st.button("Suggest a faster version", key=f"suggest_{sid}", disabled=busy):
        text = services.DEFAULT_INSTRUCTION
    if text:
        with guard("starting the chat turn"):
            job = jobs.start(
                "turn",
                session_id=sid,
                text=text,
                parent_id=st.session_state[parent_key],
                model=model,
            )
            st.session_state[f"chat_sent:{sid}"] = (job.id, text)
            st.session_state.pop(f"parent_picked:{sid}", None)  # the pick was for this turn
            st.rerun()


def candidates_column(view: services.SessionView) -> None:
    sid = view.info.id
    st.plotly_chart(
        charts.speedup_chart(view.figures.series),
        key=f"speedup_{sid}",
        config={"displayModeBar": False},
    )

    def mark(c: services.CandidateView) -> None:
        with guard("marking the best version"):
            services.mark_best(c.id, actor=actor())

    def branch(c: services.CandidateView) -> None:
        st.session_state[f"{KEEP}parent:{sid}"] = c.id
        pick_parent(sid)

    def edit(c: services.CandidateView) -> None:
        set_code(f"{KEEP}hand:{sid}", c.source)
        st.session_state[f"hand_parent:{sid}"] = c.id

    def run_again(c: services.CandidateView) -> None:
        with guard("evaluating the version again"):
            jobs.start("evaluation", session_id=sid, candidate_id=c.id)

    actions = {"Mark best": mark, "Branch from here": branch, "Edit by hand": edit}
    extras = project_form.card_extras(view) if view.info.is_module else None
    newest = list(reversed(view.candidates))
    for i, c in enumerate(newest[:8]):
        parent = view.candidate(c.parent_id) if c.parent_id else None
        candidate_card(
            c,
            parent=parent,
            key=f"card_{c.id}",
            actions=actions,
            expanded=i < 2,
            run_again=run_again,
            extras=extras,
            error_shown=c.origin == "baseline" and not view.ready,
        )
    if len(newest) > 8:
        st.caption(f"{len(newest) - 8} older candidates: see the Review page.")
    hand_editor(view)


def hand_editor(view: services.SessionView) -> None:
    sid = view.info.id
    key = f"{KEEP}hand:{sid}"
    parent_id = st.session_state.get(f"hand_parent:{sid}")
    with st.expander("Edit by hand", expanded=parent_id is not None):
        if parent_id is None:
            base = view.best or view.baseline
            parent_id = base.id if base else None
            if not st.session_state.get(key) and base:
                set_code(key, base.source)
        st.caption(f"Starting from candidate #{parent_id}.")
        code_input("Your version", key, height=14)
        if st.button("Evaluate my version", key=f"hand_go_{sid}", disabled=jobs.any_running(sid)):
            with guard("storing your version"):
                jobs.start(
                    "hand edit", session_id=sid, source=st.session_state[key], parent_id=parent_id
                )
                st.session_state.pop(f"hand_parent:{sid}", None)
                st.rerun()


def show_result(snap: services.JobSnapshot) -> None:
    result = snap.result
    if isinstance(result, services.TurnResult):
        stopped = [c for c in result.candidates if is_stopped(c.evaluation)]
        if stopped:
            st.info(
                f"Stopped: {len(result.candidates)} new candidate(s) stored, "
                f"{len(stopped)} not evaluated ({', '.join(f'#{c.id}' for c in stopped)})."
            )
        elif result.candidates:
            st.success(f"{len(result.candidates)} new candidate(s) evaluated.")
        if result.notice:
            st.info(result.notice)
    elif isinstance(result, services.CandidateView):
        st.success(
            f"Your version is candidate #{result.id}: "
            + " · ".join(verdict_parts(result.evaluation))
        )
    elif isinstance(result, services.EvaluationView):
        st.success(
            f"Candidate #{result.candidate_id} evaluated: " + " · ".join(verdict_parts(result))
        )
    elif isinstance(result, services.SessionView) and result.ready:
        st.success("The baseline passed its tests and was timed: iteration 0 is on the chart.")
    elif isinstance(result, services.SummaryEditResult):
        modes.follow_summary_edit(snap.id, result)
        modes.show_summary_edit(result)


def read_only(view: services.SessionView) -> None:
    """A session the person may read but not change: its transcript and candidates."""
    st.info(
        f"You can read this session; only its author ({view.info.author}) and admins work on "
        "it. Comment on it on the Review page."
    )
    left, right = st.columns([3, 2], gap="large")
    with left:
        transcript(view)
    with right:
        st.plotly_chart(
            charts.speedup_chart(view.figures.series),
            key=f"speedup_{view.info.id}",
            config={"displayModeBar": False},
        )
        for c in reversed(view.candidates[-8:]):
            parent = view.candidate(c.parent_id) if c.parent_id else None
            candidate_card(c, parent=parent, key=f"ro{view.info.id}_{c.id}")


def workspace(sid: int) -> None:
    who = actor()
    view = services.get_session(sid, actor=who)
    header(view)
    if not services.permissions(sid, actor=who).change:
        jobs.job_panel(sid, routing=False)
        read_only(view)
        return
    jobs.job_panel(sid, on_result=show_result)
    if not view.ready:
        fix_inputs(view)
    model_picker(str(sid), view.info.model or services.get_context().model)
    default(f"{KEEP}mode:{sid}", view.info.mode)
    mode = st.segmented_control(
        "Mode",
        ["chat", "conair", "summary"],
        key=f"{KEEP}mode:{sid}",
        format_func={"chat": "💬 Chat", "conair": "🧪 ConAIR", "summary": "📝 Summary"}.get,
    )
    left, right = st.columns([3, 2], gap="large")
    with left:
        if mode == "conair":
            modes.conair_panel(view, model=chosen_model(sid))
        elif mode == "summary":
            modes.summary_panel(view)
        else:
            transcript(view)
            if view.ready:
                chat_controls(view)
    with right:
        candidates_column(view)


if session_id is None:
    if services.permissions(None, actor=actor()).change:
        new_session_form()
    else:
        st.info("Viewers read and comment on sessions; an admin can make you an editor.")
else:
    with guard("opening the session"):
        workspace(session_id)
