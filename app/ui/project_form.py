"""Real code on the Optimize page: where the code comes from (pasted, a project directory, an
uploaded archive, an installed module), the target MODULE:QUALNAME, the environment, the
project tests to run; the Pillow example; and, on a candidate card of such a session, the
static hints, the tests' coverage of the target and the patch download."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from app import services
from app.services import examples, projects
from app.services.access import Actor
from app.ui import jobs, nav
from app.ui.code import code_input, set_code
from app.ui.errors import guard
from app.ui.identity import actor
from app.ui.models import chosen as chosen_model
from app.ui.models import model_picker
from app.ui.state import KEEP, default

SOURCES = {
    "paste": "Paste a module",
    "project": "Project directory",
    "archive": "Upload an archive",
    "installed": "Installed module",
}
K = f"{KEEP}proj:"

WORKLOAD_HELP = (
    "A module that imports the project by its own names and defines `cases()` (for a method, "
    "args[0] is the instance) or `run()` (one end-to-end use, timed as a whole and compared "
    "by its return value)."
)


PENDING = "proj:pending"  # values to put in the form's widgets before they are drawn


def source_choice() -> str:
    """The radio that picks where a new session's code comes from; "paste" is today's form."""
    for key, value in st.session_state.pop(PENDING, {}).items():
        if key == f"{K}workload":
            set_code(key, value)
        else:
            st.session_state[key] = value
    default(f"{K}source", "paste")
    cols = st.columns([3, 2], vertical_alignment="bottom")
    source = cols[0].radio(
        "Code from",
        list(SOURCES),
        key=f"{K}source",
        format_func=SOURCES.get,
        horizontal=True,
    )
    if cols[1].button(
        f"Load the Pillow {examples.PILLOW_VERSION} example",
        key="proj:example",
        help="The paper's case: ImageStat.Stat._getextrema of Pillow 10.1.0, installed on "
        "first use into the data directory.",
    ):
        _load_pillow_example()
        if PENDING in st.session_state:
            st.rerun()
    return source


def _load_pillow_example() -> None:
    with st.status(f"Preparing Pillow {examples.PILLOW_VERSION}…", expanded=True) as box:

        def progress(_stage: str, info: dict) -> None:
            box.write(info.get("message", ""))

        with guard("installing the example's environment"):
            ex = examples.pillow_example(on_progress=progress)
            st.session_state[PENDING] = {
                f"{K}source": "installed",
                f"{K}target": ex.target,
                f"{K}env": str(ex.environment),
                f"{K}title": ex.title,
                f"{K}workload": ex.workload_source,
            }
            box.update(label=f"Pillow {examples.PILLOW_VERSION} example loaded", state="complete")


def project_session_form(source: str) -> None:
    """The new-session form for a target in a project, an archive or an installed package."""
    for name in ("title", "target", "env", "dir", "tests"):
        default(f"{K}{name}", "")
    default(f"{K}workload", "")
    upload = None
    if source == "project":
        st.text_input("Project directory (on this machine)", key=f"{K}dir")
    elif source == "archive":
        upload = st.file_uploader(
            "Project archive (.zip, .tar.gz)", type=["zip", "gz", "tgz"], key="proj:upload"
        )
    top = st.columns([3, 3])
    top[0].text_input(
        "Target (MODULE:QUALNAME)",
        key=f"{K}target",
        placeholder="mypkg.stats:Stat._getextrema",
        help="A function, method, static or class method of a module with .py source.",
    )
    top[1].text_input(
        "Environment (optional)",
        key=f"{K}env",
        help="A venv root or site-packages directory the code under test imports from, ahead "
        "of the app's own packages (same Python version).",
    )
    picked: list[str] = []
    if source == "project" and st.session_state[f"{K}dir"].strip():
        with guard("listing the project's tests"):
            found = projects.discover_tests(st.session_state[f"{K}dir"].strip())
            picked = st.multiselect("Project test files", found, key=f"{K}files")
    if source != "installed":
        st.text_area(
            "Project tests (paths or pytest node ids, one per line)",
            key=f"{K}tests",
            height=80,
            placeholder="tests/test_stats.py::test_extrema",
        )
    cols = st.columns([3, 2, 2])
    cols[0].text_input("Title", key=f"{K}title")
    cols[1].selectbox("Mode", ["chat", "summary"], key=f"{K}mode")
    cols[2].selectbox("Visibility", ["team", "public", "private"], key=f"{K}visibility")
    model_picker("project")
    code_input("Workload", f"{K}workload", height=12, help=WORKLOAD_HELP)
    if st.button("Create session and run the baseline", type="primary", key="proj:create"):
        s = st.session_state
        typed = [t.strip() for t in s[f"{K}tests"].splitlines() if t.strip()]
        with guard("creating the session"):
            archive = (upload.getvalue(), upload.name) if upload is not None else None
            if source == "archive" and archive is None:
                raise services.InvalidInput("Choose an archive to upload first.", field="project")
            view = projects.create_project_session(
                target=s[f"{K}target"],
                project=s[f"{K}dir"].strip() or None if source == "project" else None,
                archive=archive,
                environment=s[f"{K}env"].strip() or None,
                project_tests=[*picked, *typed] or None,
                workload_source=s[f"{K}workload"],
                title=s[f"{K}title"].strip() or None,
                actor=actor(),
                visibility=s[f"{K}visibility"],
                mode=s[f"{K}mode"],
                model=chosen_model("project"),
                validate=False,  # stored now; validated in the background below
            )
            jobs.start("validation", session_id=view.info.id)
            nav.open_session(view.info.id)
            st.rerun()


# --- on a candidate card -------------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=256)
def _details(session_id: int, candidate_id: int, updated: str, who: Actor) -> projects.CardDetails:
    del updated  # part of the cache key only: a new evaluation gives new details
    return projects.card_details(services.get_session(session_id, actor=who), candidate_id)


def card_extras(view: services.SessionView) -> Callable[[services.CandidateView, str], None]:
    """What the card of a module session's candidate shows under its line profile: the tests'
    coverage of the target (with the baseline), the ruff hints (hot ones first) and the patch."""

    def show(c: services.CandidateView, key: str) -> None:
        if not view.info.is_module:
            return
        ev = c.evaluation
        d = _details(view.info.id, c.id, str(ev.finished_at if ev else None), actor())
        if c.origin == "baseline" and d.coverage is not None:
            st.caption("Coverage: " + d.coverage.text(view.info.entry_point))
            if d.coverage.warning():
                st.warning(d.coverage.warning())
        if d.hot:
            st.markdown("**Static hints on hot lines**")
            for h in d.hot:
                st.caption(h.text())
        others = [h for h in d.hints if h not in {x.hint for x in d.hot}]
        if others:
            with st.popover(f"{len(others)} other static hint(s)"):
                for h in others:
                    st.caption(h.text())
        if d.patch:
            st.download_button(
                "Download patch",
                d.patch,
                file_name=d.patch_name,
                mime="text/x-diff",
                key=f"{key}_patch",
                on_click="ignore",
                help=f"A unified diff of {projects.patch_path(view.info)}: `git apply` or "
                "`patch -p1` in the project's root.",
            )

    return show
