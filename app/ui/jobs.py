"""Background jobs in the page: start one, then poll its snapshot from a fragment that reruns
every half second on its own, so the page (and every other browser session) stays responsive.
When the job ends the whole page reruns once to show what it stored."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from app import services
from app.services import JobSnapshot
from app.ui.errors import message_for_job, show_message
from app.ui.identity import actor

#: Seconds between two looks at a running job (each redraws the streamed text and heatmap).
POLL_S = 1.0
#: The sandbox's steps, in order, as the person should see them.
EVAL_STEPS = ("tests", "equivalence", "timing", "profile")
_LABELS = {
    "prompt": "building the prompt",
    "llm": "the model is writing",
    "extract": "extracting code",
    "validate": "checking the inputs",
    "start": "starting the sandbox",
    "tests": "running the tests",
    "equivalence": "comparing outputs with the baseline",
    "timing": "timing",
    "profile": "line profiling",
    "done": "done",
}
_MINE = "jobs:mine"  # job ids this browser session started, newest last
_SEEN = "jobs:seen"  # finished job ids whose outcome was dismissed
#: How long a finished job's outcome is shown to browsers other than the one that started it.
RECENT_S = 600.0


def progress_steps(
    progress: list[tuple[str, dict[str, Any]]],
    *,
    finished: bool,
    evaluation: bool = True,
    failed: bool = False,
) -> list[tuple[str, str]]:
    """(label, state) per step, state in done / running / todo / skipped / failed; pure, unit
    tested.

    Steps are the distinct (stage, candidate) pairs reported so far, in order; the latest one is
    ``running`` until the job finishes. While a candidate is in the sandbox its remaining
    sandbox steps are listed as ``todo`` so the person sees what comes next. A stage the
    sandbox skipped says so (never a tick), and when the job ``failed`` its last step is the
    failed one, so no green tick stands beside a failure.
    """
    seen: list[tuple[str, Any]] = []
    infos: dict[tuple[str, Any], dict[str, Any]] = {}
    for stage, info in progress:
        ident = (stage, info.get("candidate_id"))
        if ident not in seen:
            seen.append(ident)
        infos[ident] = info
    steps: list[tuple[str, str]] = []
    for i, (stage, cid) in enumerate(seen):
        info = infos[(stage, cid)]
        label = _LABELS.get(stage, stage.replace("_", " "))
        if cid is not None:
            label = f"candidate #{cid}: {label}"
        last = i == len(seen) - 1
        state = "running" if last and not finished else "done"
        if info.get("skipped"):
            state, label = "skipped", f"{label} (skipped: {info['skipped']})"
        elif stage == "done" and info.get("status") not in (None, "ok"):
            state, label = "failed", label.replace("done", f"stopped: {info['status']}")
        steps.append((label, state))
    if failed and steps and not any(state == "failed" for _, state in steps):
        ran = [i for i, (_, state) in enumerate(steps) if state == "done"]
        if ran:
            steps[ran[-1]] = (steps[ran[-1]][0], "failed")
    if not finished and evaluation and seen and seen[-1][0] in EVAL_STEPS:
        stage, cid = seen[-1]
        prefix = "" if cid is None else f"candidate #{cid}: "
        for later in EVAL_STEPS[EVAL_STEPS.index(stage) + 1 :]:
            steps.append((prefix + _LABELS[later], "todo"))
    return steps


def remember(job: JobSnapshot) -> None:
    st.session_state.setdefault(_MINE, []).append(job.id)


def start(kind: str, *, session_id: int | None = None, **params: Any) -> JobSnapshot:
    """Submit a job (``services.submit_job``) as the person at this browser and remember it
    here; the outcomes of this browser's earlier jobs stop being shown."""
    _dismiss_finished()
    job = services.submit_job(kind, session_id=session_id, params=params, actor=actor())
    remember(job)
    return job


def _dismiss_finished(job_id: int | None = None) -> None:
    """Stop showing the outcome of ``job_id`` (default: of every finished job)."""
    seen = st.session_state.setdefault(_SEEN, [])
    for job in services.list_jobs(reap=False, actor=actor()):
        if job.id not in seen and (job_id is None or job.id == job_id) and job.finished:
            seen.append(job.id)


def _run_again(job_id: int) -> None:
    _dismiss_finished(job_id)
    remember(services.rerun_job(job_id, actor=actor()))


def _snapshots(session_id: int | None) -> list[JobSnapshot]:
    """What the panel shows: the running jobs (of this session, or all on the Routing page) and
    the newest finished one not yet dismissed here.

    A finished job is found through the registry, not only through this browser's memory, so
    its outcome survives a reconnect (which starts a new browser session) and teammates see it;
    after ``RECENT_S`` only the browser that started it still shows it.
    """
    seen = set(st.session_state.get(_SEEN, []))
    mine = set(st.session_state.get(_MINE, []))
    now = datetime.now(UTC)
    running: list[JobSnapshot] = []
    finished: list[JobSnapshot] = []
    for snap in services.list_jobs(session_id, actor=actor()):
        if not snap.finished:
            running.append(snap)
        elif snap.id not in seen and (
            snap.id in mine
            or (
                session_id is not None
                and snap.finished_at is not None
                and (now - snap.finished_at).total_seconds() < RECENT_S
            )
        ):
            finished.append(snap)
    newest = sorted(finished, key=lambda s: s.finished_at or now)[-1:]
    return sorted(running + newest, key=lambda s: s.id)


def shown_errors(session_id: int | None) -> list[str]:
    """The error texts of the failed jobs the panel shows now (a page shows them only once)."""
    return [s.error or "" for s in _snapshots(session_id) if s.state == "failed"]


def state_of(job_id: int) -> str | None:
    """A job's state (running / done / failed / cancelled), None when it is unknown."""
    try:
        return services.get_job(job_id, actor=actor()).state
    except Exception:  # noqa: BLE001 - a forgotten job has no state to show
        return None


def any_running(session_id: int | None) -> bool:
    return any(not s.finished for s in _snapshots(session_id))


def show_snapshot(snap: JobSnapshot, *, routing: bool = True) -> None:
    """Steps, streamed text and live routing; once the job is done they fold away (what it
    produced is now in the transcript and on the Routing page)."""
    box = st.expander("Steps and reply", expanded=False) if snap.finished else st.container()
    with box:
        steps = progress_steps(snap.progress, finished=snap.finished, failed=snap.state == "failed")
        icon = {"done": "✅", "running": "⏳", "todo": "▫️", "skipped": "⏭️", "failed": "❌"}
        if steps:
            st.markdown("  \n".join(f"{icon[state]} {label}" for label, state in steps))
        if snap.text:
            with st.chat_message("assistant"):
                st.markdown(snap.text + ("" if snap.finished else " ▌"))
        if routing and snap.routing_tail:
            from app.ui.routing import live_heatmap

            live_heatmap(snap.routing_tail, key=f"job{snap.id}_routing")


def job_panel(
    session_id: int | None,
    *,
    kinds: tuple[str, ...] | None = None,
    on_result: Callable[[JobSnapshot], None] | None = None,
    routing: bool = True,
) -> None:
    """Show running jobs live; when one of this browser's jobs ends, show its error (or hand
    the result to ``on_result``) once, then forget it."""
    snaps = [s for s in _snapshots(session_id) if kinds is None or s.kind in kinds]
    if not snaps:
        return
    running = any(not s.finished for s in snaps)
    who = actor()
    may_stop = {
        sid: services.permissions(sid, actor=who).change if sid is not None else who.signed_in
        for sid in {s.session_id for s in snaps}
    }

    @st.fragment(run_every=POLL_S if running else None)
    def panel() -> None:
        current = [s for s in _snapshots(session_id) if kinds is None or s.kind in kinds]
        still = any(not s.finished for s in current)
        for snap in current:
            with st.container(border=True):
                st.caption(f"{snap.kind} · job {snap.id} · {snap.state}")
                if snap.finished:
                    _finish(snap, on_result, may_stop.get(snap.session_id, False))
                elif may_stop.get(snap.session_id, False):
                    st.button(
                        "Stop",
                        key=f"stop_job_{snap.id}",
                        on_click=lambda i=snap.id: services.cancel_job(i, actor=actor()),
                    )
                show_snapshot(snap, routing=routing)
        if running != still:
            # a job ended (it stored new rows), or one started here ("Run again"): redraw the
            # whole page once, which also starts or stops this panel's polling
            st.rerun(scope="app")

    panel()


def _finish(
    snap: JobSnapshot, on_result: Callable[[JobSnapshot], None] | None, may_rerun: bool
) -> None:
    """A finished job's outcome stays until the person dismisses it or starts another job."""
    st.button("Dismiss", key=f"dismiss_job_{snap.id}", on_click=_dismiss_finished, args=(snap.id,))
    if snap.state == "failed":
        show_message(message_for_job(snap.error, snap.error_type, doing=snap.kind))
    elif snap.state == "cancelled":
        st.info("Stopped. What was produced so far is saved.")
    elif snap.state == "interrupted":
        st.warning(snap.error or "Interrupted.")
    elif on_result is not None:
        on_result(snap)
    if may_rerun and snap.state in ("interrupted", "failed", "cancelled"):
        st.button("Run again", key=f"rerun_job_{snap.id}", on_click=_run_again, args=(snap.id,))
