"""A candidate's verdict in words and as a card: tests, equivalence, speedup with its 95% CI,
the verdict word; the diff against its parent, its line profile, copy and download."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from app import charts
from app.services.views import CandidateView, EvaluationView
from app.ui.diff import show_diff

STATUS_WORDS = {
    "pending": "waiting for the sandbox",
    "running": "being evaluated",
    "timeout": "ran out of time",
    "memory": "ran out of memory",
    "output_limit": "printed too much",
    "crashed": "crashed",
    "tampered": "tampered with the harness",
    "error": "could not be evaluated",
    "interrupted": "interrupted (the process evaluating it stopped)",
    "failed": "failed",
}


def is_stopped(ev: EvaluationView | None) -> bool:
    """The person stopped this evaluation (it is not a verdict on the code)."""
    return bool(
        ev is not None
        and ev.status == "error"
        and ev.error
        and ("stopped by the person" in ev.error or "Cancelled" in ev.error)
    )


def memory_text(n_bytes: int) -> str:
    """Bytes in the unit that reads: 512 B, 340.0 KiB, 12.5 MiB, 1.20 GiB."""
    if n_bytes < 1024:
        return f"{n_bytes} B"
    if n_bytes < 1024**2:
        return f"{n_bytes / 1024:.1f} KiB"
    if n_bytes < 1024**3:
        return f"{n_bytes / 1024**2:.1f} MiB"
    return f"{n_bytes / 1024**3:.2f} GiB"


def verdict_parts(ev: EvaluationView | None) -> list[str]:
    """The verdict as short phrases, e.g. ["tests 3/3 ✅", "equivalent ✅", "2.10× [1.9–2.3]",
    "faster"]; pure, so both the card and the transcript export read the same."""
    if ev is None:
        return ["not evaluated yet"]
    if not ev.finished:
        return [STATUS_WORDS.get(ev.status, ev.status) + " …"]
    if is_stopped(ev):
        return ["stopped by you ⏹ (not evaluated)"]
    parts: list[str] = []
    if ev.status != "ok":
        parts.append(f"{STATUS_WORDS.get(ev.status, ev.status)} ❌")
    if ev.tests_passed is not None:
        total = ev.tests_passed + (ev.tests_failed or 0)
        if total:  # "tests 0/0 ✅" beside a failure would tick nothing
            parts.append(f"tests {ev.tests_passed}/{total} {'✅' if not ev.tests_failed else '❌'}")
    if ev.equivalent is not None:
        parts.append("equivalent ✅" if ev.equivalent else "different outputs ❌")
    if ev.speedup is not None:
        ci = "" if ev.ci_low is None else f" [{ev.ci_low:.2f}–{ev.ci_high:.2f}]"
        parts.append(f"{ev.speedup:.2f}×{ci}")
    if ev.verdict:
        parts.append(ev.verdict if ev.correct is not False else f"{ev.verdict} (but incorrect)")
    elif ev.correct is False and ev.status in ("ok", "failed"):
        parts.append("incorrect")
    return parts


def verdict_badge(ev: EvaluationView | None) -> str:
    if ev is None or not ev.finished:
        return "⏳"
    if is_stopped(ev):
        return "⏹"
    if ev.correct is False or ev.status != "ok":
        return "❌"
    return {"faster": "🚀", "slower": "🐢"}.get(ev.verdict or "", "➖")


def show_evaluation(ev: EvaluationView | None, *, error_shown: bool = False) -> None:
    """The verdict line, then the error, failing tests and mismatches. ``error_shown``: the
    page already shows this evaluation's error (e.g. why the baseline is not ready), so the
    card only points at it instead of repeating it."""
    st.markdown(" · ".join(verdict_parts(ev)))
    if ev is None:
        return
    if is_stopped(ev):
        return
    if ev.error and error_shown:
        st.caption("Why: see the message above.")
    elif ev.error:
        st.warning(ev.error)
    for failure in ev.test_failures[:5]:
        st.caption(f"❌ {failure.get('name', 'test')}: {str(failure.get('message', ''))[:300]}")
    if ev.mismatches:
        st.caption(f"Outputs differ from the baseline on {len(ev.mismatches)} workload call(s).")


def unvalidated_note(c: CandidateView) -> str | None:
    """ConAIR's generated tests nobody validated yet: shown beside the verdict, never as it."""
    info = c.meta.get("conair_unvalidated") or {}
    total, failed = int(info.get("total") or 0), int(info.get("failed") or 0)
    if not total:
        return None
    if not failed:
        return f"unvalidated: passes all {total} generated tests"
    return f"unvalidated: fails {failed} of {total} generated tests (not counted as incorrect)"


def candidate_card(
    c: CandidateView,
    *,
    parent: CandidateView | None,
    key: str,
    actions: dict[str, Callable[[CandidateView], None]] | None = None,
    expanded: bool = True,
    run_again: Callable[[CandidateView], None] | None = None,
    extras: Callable[[CandidateView, str], None] | None = None,
    error_shown: bool = False,
    wide: bool = False,
) -> None:
    """One proposed version: verdict, diff vs parent, line profile, code (copy), download and
    the page's actions (``{"Mark best": fn, ...}`` — each becomes a button). ``run_again``
    becomes a "Run again" button on a version whose evaluation was interrupted. ``extras(c,
    key)`` draws more next to the line profile (a module session's hints, coverage and patch).
    ``wide``: the card spans the page, so its diff is side by side (else unified, to fit a
    column)."""
    ev = c.evaluation
    best = " ⭐ best" if c.is_best else ""
    title = f"{verdict_badge(ev)} Candidate #{c.id} · {c.origin} · iteration {c.iteration}{best}"
    with st.expander(title, expanded=expanded):
        show_evaluation(ev, error_shown=error_shown)
        if note := unvalidated_note(c):
            st.caption(note)
        tabs = st.tabs(["Diff vs parent", "Line profile", "Code"])
        with tabs[0]:
            if parent is None:
                st.caption("The baseline has no parent.")
            else:
                show_diff(
                    parent.source,
                    c.source,
                    old_label=f"#{parent.id} ({parent.origin})",
                    new_label=f"#{c.id} ({c.origin})",
                    side_by_side=wide,  # a card in a narrow column: one unified column
                )
        with tabs[1]:
            if ev and ev.line_profile:
                st.plotly_chart(
                    charts.line_profile_chart(ev.line_profile, title=""),
                    key=f"{key}_profile",
                    config={"displayModeBar": False},
                )
                if ev.peak_memory_bytes:
                    st.caption(f"Peak memory {memory_text(ev.peak_memory_bytes)}")
            else:
                st.caption("No line profile for this version.")
            if extras is not None:
                extras(c, key)
        with tabs[2]:
            st.code(c.source, language="python", line_numbers=True)
        row = st.container(horizontal=True)  # buttons wrap instead of being cut off
        row.download_button(
            "Download",
            c.source,
            file_name=f"candidate_{c.id}.py",
            mime="text/x-python",
            key=f"{key}_dl",
            on_click="ignore",
        )
        if run_again is not None and ev is not None and ev.status == "interrupted":
            row.button("Run again", key=f"{key}_run_again", on_click=run_again, args=(c,))
        for label, fn in (actions or {}).items():
            row.button(label, key=f"{key}_{label}", on_click=fn, args=(c,))
