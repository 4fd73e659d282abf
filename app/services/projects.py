"""Sessions on real code: a function or method where it lives, in a project directory, an
uploaded archive or an installed package. The session stores the module's whole source as
its baseline and ``MODULE:QUALNAME`` as its target; the sandbox gets the project (mounted
read-only), the module to replace, the session's environment and the selected project tests.
"""

from __future__ import annotations

import ast
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.services import sessions
from app.services.access import Actor, acting, require_create
from app.services.archives import is_archive, unpack_archive
from app.services.code import parse_error, top_level_names
from app.services.context import Context, get_context
from app.services.errors import CodeDoesNotParse, InvalidInput, WorkloadError
from app.services.targets import Target, TargetError, locate, resolve
from app.services.views import SessionInfo, SessionView

#: Below this share of the target's lines executed by the tests, the UI says that correctness
#: rests mostly on the comparison of outputs with the original's.
LOW_COVERAGE = 0.6
SOURCE_KINDS = ("project", "archive", "installed")


@dataclass(frozen=True)
class Coverage:
    """The selected tests' coverage of the target's lines (from the sandbox's verdict)."""

    lines: int
    covered: int
    missing: list[int]

    @classmethod
    def of(cls, data: dict[str, Any] | None) -> Coverage | None:
        if not isinstance(data, dict) or data.get("lines") is None:
            return None
        return cls(
            int(data["lines"]), int(data.get("covered") or 0), list(data.get("missing") or [])
        )

    @property
    def share(self) -> float:
        return self.covered / self.lines if self.lines else 0.0

    @property
    def low(self) -> bool:
        return self.share < LOW_COVERAGE

    def text(self, qualname: str) -> str:
        """ "the tests execute 11 of 14 lines of `Stat._getextrema`" (+ what is missed)."""
        out = f"the tests execute {self.covered} of {self.lines} lines of `{qualname}`"
        if self.missing:
            shown = ", ".join(str(n) for n in self.missing[:12])
            more = ", …" if len(self.missing) > 12 else ""
            out += f" (not executed: line{'s' if len(self.missing) > 1 else ''} {shown}{more})"
        return out

    def warning(self) -> str | None:
        if not self.low:
            return None
        return (
            f"The tests execute only {self.share:.0%} of the target's lines: correctness rests "
            "mostly on the comparison of every output with the original's."
        )


def sessions_dir(ctx: Context) -> Path:
    return Path(ctx.settings.data_dir) / "sessions"


def unpack_upload(data: bytes, filename: str, *, ctx: Context | None = None) -> Path:
    """Unpack an uploaded archive into a fresh folder of its own under the data directory
    (``data/sessions/<key>/project``); returns the project root. ``ArchiveRefused`` (with the
    reason; the folder removed) for an unsafe or oversized archive."""
    c = get_context(ctx)
    folder = sessions_dir(c).resolve() / uuid.uuid4().hex
    try:
        return unpack_archive(data, filename, folder / "project")
    except BaseException:
        if folder.exists() and not any(folder.iterdir()):
            folder.rmdir()
        raise


def resolve_source(
    target: str,
    *,
    project: str | Path | None = None,
    environment: str | Path | None = None,
    archive: tuple[bytes, str] | None = None,
    ctx: Context | None = None,
) -> tuple[Target, str]:
    """(the resolved target, the source kind). ``project`` may be a directory or an archive
    file (unpacked with the upload checks); without it the module is an installed one, found
    in ``environment`` or the app's own packages."""
    kind = "installed"
    root: Path | None = None
    if archive is not None:
        root, kind = unpack_upload(archive[0], archive[1], ctx=ctx), "archive"
    elif project is not None and str(project).strip():
        path = Path(project).expanduser()
        if path.is_file() and is_archive(path):
            root = unpack_upload(path.read_bytes(), path.name, ctx=ctx)
            kind = "archive"
        elif path.is_dir():
            root = path.resolve()
            kind = "project"
        elif path.exists():
            raise InvalidInput(
                f"{path} is neither a project directory nor a .zip / .tar.gz archive",
                field="project",
            )
        else:
            raise InvalidInput(f"The project {path} does not exist", field="project")
    env = Path(environment).expanduser().resolve() if environment else None
    return resolve(target, project=root, environment=env), kind


def source_columns(
    t: Target, kind: str, environment: str | Path | None, tests: list[str] | None
) -> dict[str, Any]:
    return {
        "source_kind": kind,
        "project_path": str(t.root) if kind != "installed" else None,
        "module": t.module,
        "module_file": t.relpath,
        "target": t.spec,
        "environment": str(Path(environment).expanduser().resolve()) if environment else None,
        "project_tests": [s.strip() for s in (tests or []) if s and s.strip()],
    }


def create_project_session(
    *,
    target: str,
    workload_source: str,
    project: str | Path | None = None,
    archive: tuple[bytes, str] | None = None,
    environment: str | Path | None = None,
    project_tests: list[str] | None = None,
    tests_source: str | None = None,
    title: str | None = None,
    mode: str = "chat",
    model: str | None = None,
    tags: list[str] | None = None,
    notes: str = "",
    visibility: str = "team",
    validate: bool = True,
    on_progress: sessions.ProgressFn | None = None,
    actor: Actor | None = None,
    ctx: Context | None = None,
) -> SessionView:
    """A session on ``target`` (MODULE:QUALNAME) in a project directory or archive file
    (``project``), an uploaded archive (``archive``: its bytes and file name), or an installed
    package (neither; ``environment`` names the packages' directory, default the app's).

    The target is resolved first (``TargetError``, ``ArchiveRefused``, ``InvalidInput``: nothing
    is stored, nothing ran); then the session is stored with the module's whole source as
    its baseline and validated like any other (see ``sessions.validate_session``)."""
    c = get_context(ctx)
    who = acting(actor, c)
    require_create(who)
    t, kind = resolve_source(
        target, project=project, environment=environment, archive=archive, ctx=c
    )
    columns = source_columns(t, kind, environment, project_tests)
    if columns["project_tests"] and columns["project_path"] is None:
        raise InvalidInput(
            "Project tests need a project directory (they are paths in it)", field="tests"
        )
    session_id = sessions.store_new(
        c,
        who,
        title=(title or "").strip() or f"Optimise {t.spec}",
        baseline_source=t.source,
        entry_point=t.qualname,
        workload_source=workload_source,
        tests_source=tests_source,
        visibility=visibility,
        mode=mode,
        model=model,
        tags=tags,
        notes=notes,
        source=columns,
    )
    if validate:
        sessions.validate_session(session_id, on_progress=on_progress, actor=who, ctx=c)
    return sessions.get_session(session_id, actor=who, ctx=c)


def static_checks(info: SessionInfo, tests: str | None) -> None:
    """What can be said about a module session without running it."""
    err = parse_error(info.baseline_source)
    if err is not None:
        raise CodeDoesNotParse(
            f"The module `{info.module}` does not parse: {err[0]}", field="baseline", line=err[1]
        )
    try:
        locate(ast.parse(info.baseline_source), info.entry_point, spec=info.target)
    except TargetError:
        raise
    err = parse_error(info.workload_source)
    if err is not None:
        raise CodeDoesNotParse(
            f"The workload does not parse: {err[0]}", field="workload", line=err[1]
        )
    names = top_level_names(ast.parse(info.workload_source))
    if "cases" not in names and "run" not in names:
        raise WorkloadError(
            "The workload must define `cases()` (the calls to time; for a method, args[0] is "
            "the instance) or `run()` (one end-to-end use of the project, timed as a whole and "
            "compared by its return value). It imports the project by its own names."
        )
    if tests:
        err = parse_error(tests)
        if err is not None:
            raise CodeDoesNotParse(f"The tests do not parse: {err[0]}", field="tests", line=err[1])
    if info.project_path and not Path(info.project_path).is_dir():
        raise InvalidInput(f"The project directory {info.project_path} is gone", field="project")
    for node in info.project_tests:
        path = node.split("::", 1)[0]
        if info.project_path and not (Path(info.project_path) / path).exists():
            raise InvalidInput(
                f"The project test {node!r} names {path}, which is not in the project",
                field="tests",
            )


def candidate_patch(
    session_id: int,
    candidate_id: int | None = None,
    *,
    actor: Actor | None = None,
    ctx: Context | None = None,
) -> str:
    """A candidate (default: the session's best) as a unified diff against the original file,
    its path relative to the project root (``target.py`` for a pasted module); "" when the
    candidate is the original. ``NotFound`` when the session has no best candidate yet."""
    from app.services.errors import NotFound, ServiceError
    from app.services.patches import unified_patch

    view = sessions.get_session(session_id, actor=actor, ctx=ctx)
    if candidate_id is None:
        cand = view.best
        if cand is None:
            raise ServiceError(
                f"Session {session_id} has no best candidate yet (none is correct and measured "
                "faster); choose a candidate to export its patch."
            )
    else:
        cand = next((x for x in view.candidates if x.id == candidate_id), None)
    if cand is None:
        raise NotFound("candidate", candidate_id)
    return unified_patch(view.info.baseline_source, cand.source, patch_path(view.info))


def patch_path(info: SessionInfo) -> str:
    return info.module_file or "target.py"


def discover_tests(root: str | Path, *, limit: int = 300) -> list[str]:
    """The project's test files (``test_*.py``, ``*_test.py``), relative to its root, for the
    person to pick from; hidden folders, virtualenvs and ``node_modules`` are skipped."""
    root = Path(root)
    skip = {"node_modules", "site-packages", "__pycache__", "build", "dist"}
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(p.startswith(".") or p in skip or p.endswith("venv") for p in rel.parts[:-1]):
            continue
        if path.name.startswith("test_") or path.name.endswith("_test.py"):
            found.append(rel.as_posix())
            if len(found) >= limit:
                break
    return found


@dataclass(frozen=True)
class CardDetails:
    """What a candidate card of a module session shows besides the verdict."""

    hints: list[Any]  # hints.Hint, on the whole module
    hot: list[Any]  # hints.HotHint: those on lines the profile says are hot
    coverage: Coverage | None  # the tests' coverage of the target (the baseline's verdict)
    patch: str  # unified diff against the original file ("" for the original)
    patch_name: str  # a file name for the download


def card_details(view: SessionView, candidate_id: int) -> CardDetails:
    """Static hints (ruff PERF + speed FURB) on this version, the ones on its hot lines, the
    tests' coverage of the target and the version's patch."""
    from app.services.hints import hot_hints, performance_hints
    from app.services.patches import unified_patch

    c = view.candidate(candidate_id)
    info = view.info
    hints = performance_hints(c.source, filename=Path(patch_path(info)).name)
    profile = c.evaluation.line_profile if c.evaluation else []
    base_ev = view.baseline.evaluation if view.baseline else None
    return CardDetails(
        hints=hints,
        hot=hot_hints(hints, profile),
        coverage=Coverage.of(base_ev.coverage if base_ev else None),
        patch=unified_patch(info.baseline_source, c.source, patch_path(info)),
        patch_name=f"session{info.id}-candidate{c.id}.patch",
    )
