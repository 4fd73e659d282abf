"""perfloop without a browser.

    python -m app run --code FILE --entry NAME --workload FILE [--tests FILE] [--model M]
                      [--turns N] [--json] [--as USER] [--visibility private|team|public]
    python -m app run --project DIR|ARCHIVE --target MODULE:QUALNAME --workload FILE
                      [--tests PATH_OR_NODEID ...] [--env DIR] [--model M] [--turns N] [--json]
    python -m app run --target PIL.ImageStat:Stat._getextrema --env DIR --workload FILE ...
    python -m app export SESSION_ID --format md|html|json|patch [--output FILE] [--as USER]
    python -m app jobs [--session ID] [--json] [--cancel JOB_ID] [--rerun JOB_ID] [--as USER]
    python -m app worker [--concurrency N]

``run`` creates a session, validates it and evaluates the baseline, then runs N chat turns that
each ask the model to improve the best version so far; everything is stored in the configured
database, and each step is recorded as a job like the app's. With ``--json`` it prints one JSON
object and nothing else on stdout. ``jobs`` lists the jobs with their state (marking those whose
worker died ``interrupted``). ``worker`` runs queued jobs (``PERFLOOP_JOBS=queue``, PostgreSQL).

``--as USER`` acts as that person with their role (a name not seen before is registered as a
first sign-in would: the instance's first person becomes admin, later ones
``PERFLOOP_NEW_USER_ROLE``): ``run`` authors the session as USER, ``export`` refuses (exit 1,
the reason on stderr) what USER may not read, ``jobs`` lists what USER may see. Without it the
CLI acts as the local user (``PERFLOOP_AUTHOR``), who may do everything.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SystemExit(f"perfloop: cannot read the {what} file {path!r}: {exc.strerror}") from exc


def _add_as(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as",
        dest="as_user",
        metavar="USER",
        help="act as this person (their role and what they may read); default: the local user",
    )


def _actor(args: argparse.Namespace) -> Any:
    """The person ``--as`` names (registered on first use), else None: the local user."""
    name = (getattr(args, "as_user", None) or "").strip()
    if not name:
        return None
    from app.services.access import find_user, sign_in

    known = find_user(name)
    if known is not None:
        return known
    who = sign_in(name=name)
    print(f"perfloop: {name} was not known here; registered as {who.role}", file=sys.stderr)
    return who


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run an automated chat-mode optimisation session")
    run.add_argument("--code", help="the baseline module (a .py file)")
    run.add_argument("--entry", help="the function of --code to make faster")
    run.add_argument(
        "--project", help="a project directory or a .zip / .tar.gz archive of one (with --target)"
    )
    run.add_argument(
        "--target",
        help="MODULE:QUALNAME to make faster, in --project or an installed package (--env)",
    )
    run.add_argument(
        "--env",
        help="the environment the code under test imports from: a venv root or site-packages",
    )
    run.add_argument("--workload", help="a .py file defining cases() (or run() for a target)")
    run.add_argument(
        "--example",
        choices=("pillow",),
        help="the built-in example: Pillow 10.1.0's ImageStat.Stat._getextrema (installed on "
        "first use into the data directory); sets --target, --env and --workload",
    )
    run.add_argument(
        "--tests",
        nargs="+",
        metavar="PATH_OR_NODEID",
        help="with --project: test files or pytest node ids of the project; otherwise .py "
        "files with pytest-style tests",
    )
    run.add_argument("--model", help="litellm model string (default: the local model)")
    run.add_argument("--turns", type=int, default=3, help="chat turns (default 3)")
    run.add_argument("--title", help="session title")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.add_argument(
        "--visibility",
        choices=("private", "team", "public"),
        default="team",
        help="who may read the session: its author and admins, signed-in people, or also "
        "anonymous readers (default: team)",
    )
    _add_as(run)
    exp = sub.add_parser("export", help="export a stored session")
    exp.add_argument("session_id", type=int)
    exp.add_argument("--format", choices=("md", "html", "json", "patch"), default="md")
    exp.add_argument("--output", "-o", help="write to this file instead of stdout")
    exp.add_argument(
        "--candidate", type=int, help="with --format patch: this candidate instead of the best"
    )
    _add_as(exp)
    jobs = sub.add_parser("jobs", help="list the jobs and their state")
    jobs.add_argument("--session", type=int, help="only the jobs of this session")
    jobs.add_argument("--json", action="store_true", help="print a JSON list")
    jobs.add_argument("--limit", type=int, default=100, help="the newest N jobs (default 100)")
    jobs.add_argument("--cancel", type=int, metavar="JOB_ID", help="ask this job to stop")
    jobs.add_argument("--rerun", type=int, metavar="JOB_ID", help="run this finished job again")
    _add_as(jobs)
    wrk = sub.add_parser("worker", help="run queued jobs (PERFLOOP_JOBS=queue, PostgreSQL)")
    wrk.add_argument("--concurrency", type=int, help="jobs at once (default: PERFLOOP_JOB_WORKERS)")
    return p


def summary_of(view: Any, turns: int, notices: list[str]) -> dict[str, Any]:
    f = view.figures
    return {
        "session_id": view.info.id,
        "model": view.info.model,
        "turns": turns,
        "best_candidate_id": f.best_candidate_id,
        "best_speedup": f.best_speedup,
        "best_ci95": list(f.best_ci) if f.best_ci else None,
        "candidates_tried": f.candidates_tried,
        "candidates_correct": f.candidates_correct,
        "candidates_faster": f.candidates_faster,
        "llm_calls": f.llm_calls,
        "prompt_tokens": f.prompt_tokens,
        "completion_tokens": f.completion_tokens,
        "tokens": f.tokens,
        "cost": f.cost,
        "eff_at_k": {str(k): v for k, v in f.eff_at_k.items()},
        "wall_time_s": round(f.wall_time_s, 3),
        "notices": notices,
        "target": view.info.target or f"target:{view.info.entry_point}",
        "coverage": baseline_coverage(view),
    }


def baseline_coverage(view: Any) -> dict[str, Any] | None:
    """The selected tests' coverage of the target on the baseline, with the sentence shown to
    the person and the model; None where the sandbox did not measure it."""
    from app.services.projects import Coverage

    ev = view.baseline.evaluation if view.baseline else None
    cov = Coverage.of(ev.coverage if ev else None)
    if cov is None:
        return None
    return {
        "lines": cov.lines,
        "covered": cov.covered,
        "missing": cov.missing,
        "percent": round(100 * cov.share, 1),
        "text": cov.text(view.info.entry_point),
        "warning": cov.warning(),
    }


def _create(args: argparse.Namespace, progress: Any, who: Any) -> Any:
    """The session the run's flags describe: a pasted module (--code/--entry) or a target in a
    project or an installed package (--target, with --project or --env or neither)."""
    from app import services
    from app.services.projects import create_project_session

    if args.example == "pillow":
        from app.services.examples import pillow_example

        ex = pillow_example(on_progress=progress)
        args.target, args.env = args.target or ex.target, args.env or str(ex.environment)
        args.title = args.title or ex.title
        workload = _read(args.workload, "workload") if args.workload else ex.workload_source
    elif not args.workload:
        raise SystemExit("perfloop: --workload FILE is required")
    else:
        workload = _read(args.workload, "workload")
    if args.target:
        if args.code or args.entry:
            raise SystemExit("perfloop: use either --code/--entry or --target, not both")
        tests = list(args.tests or [])
        return create_project_session(
            target=args.target,
            project=args.project,
            environment=args.env,
            project_tests=tests if args.project else None,
            tests_source=None
            if args.project or not tests
            else "\n\n\n".join(_read(t, "tests") for t in tests),
            workload_source=workload,
            title=args.title,
            model=args.model,
            visibility=args.visibility,
            actor=who,
            validate=False,  # validated as a job by the caller
        )
    if args.project or args.env:
        raise SystemExit("perfloop: --project and --env need --target MODULE:QUALNAME")
    if not args.code or not args.entry:
        raise SystemExit("perfloop: give --code FILE --entry NAME, or --target MODULE:QUALNAME")
    return services.create_session(
        baseline_source=_read(args.code, "code"),
        entry_point=args.entry,
        workload_source=workload,
        tests_source="\n\n\n".join(_read(t, "tests") for t in args.tests) if args.tests else None,
        title=args.title,
        model=args.model,
        visibility=args.visibility,
        actor=who,
        validate=False,  # validated as a job by the caller
    )


def cmd_run(args: argparse.Namespace) -> int:
    from app import services

    quiet = args.json
    err = sys.stderr

    def say(text: str) -> None:
        if not quiet:
            print(text, file=err, flush=True)

    def progress(stage: str, info: dict[str, Any]) -> None:
        if not quiet and stage == "install":
            say(f"  [install] {info.get('message', '')}")
        elif not quiet and stage in ("validate", "llm", "timing", "done"):
            target = f" candidate {info['candidate_id']}" if info.get("candidate_id") else ""
            say(f"  [{stage}]{target}")

    def token(text: str) -> None:
        if not quiet:
            err.write(text)
            err.flush()

    try:
        who = _actor(args)
        view = _create(args, progress, who)
        view = follow(
            services.submit_job("validation", session_id=view.info.id, actor=who),
            progress,
            None,
            who,
        )
    except services.InvalidInput as exc:
        sid = exc.stored.get("session_id")
        print(f"perfloop: {exc}" + (f" (session {sid} is stored)" if sid else ""), file=err)
        if quiet:
            print(json.dumps({"session_id": sid, "error": str(exc)}))
        return EXIT_USAGE
    except services.ServiceError as exc:
        print(f"perfloop: {exc}", file=err)
        return EXIT_ERROR
    sid = view.info.id
    say(f"session {sid}: baseline evaluated; {args.turns} turn(s) with {view.info.model}")
    coverage = baseline_coverage(view)
    if coverage:
        say(
            f"coverage: {coverage['text']}"
            + (f"\n  {coverage['warning']}" if coverage["warning"] else "")
        )
    notices: list[str] = []
    done = 0
    for turn in range(1, max(0, args.turns) + 1):
        say(f"\n--- turn {turn} ---")
        try:
            result = follow(
                services.submit_job("turn", session_id=sid, actor=who), progress, token, who
            )
        except services.ModelError as exc:
            notices.append(f"turn {turn}: {exc}")
            print(f"\nperfloop: {exc}", file=err)
            if not exc.retryable:
                break
            continue
        except services.ServiceError as exc:
            notices.append(f"turn {turn}: {exc}")
            print(f"\nperfloop: {exc}", file=err)
            break
        done += 1
        if result.notice and not result.candidates:
            notices.append(f"turn {turn}: {result.notice}")
        say("")
        for c in result.candidates:
            ev = c.evaluation
            verdict = (
                "not evaluated"
                if ev is None
                else (f"{ev.status}, correct={ev.correct}, speedup={ev.speedup}, {ev.verdict}")
            )
            say(f"  candidate {c.id}: {verdict}")
        if result.notice:
            say(f"  note: {result.notice}")
    out = summary_of(services.get_session(sid, actor=who), done, notices)
    if quiet:
        print(json.dumps(out))
    else:
        say("")
        for k, v in out.items():
            print(f"{k}: {v}")
    return EXIT_OK


def follow(job: Any, progress: Any, token: Any, who: Any = None) -> Any:
    """Wait for a job, echoing its progress and streamed text as the row shows them; its
    result, or the job's error raised again as the service error it was."""
    from app import services

    seen_progress, seen_text = 0, 0
    while True:
        snap = services.wait_job(job.id, timeout=0.25, actor=who)
        for stage, info in snap.progress[seen_progress:]:
            progress(stage, info)
        seen_progress = len(snap.progress)
        if token is not None and len(snap.text) > seen_text:
            token(snap.text[seen_text:])
            seen_text = len(snap.text)
        if snap.finished:
            break
    if snap.state == "done":
        return snap.result
    error = getattr(services, snap.error_type or "", None)
    message = snap.error or f"job {snap.id} {snap.state}"
    stored = {"session_id": snap.session_id, "job_id": snap.id}
    if isinstance(error, type) and issubclass(error, services.ServiceError):
        for make in (lambda: error(message, stored=stored), lambda: error(message)):
            try:
                exc = make()
            except TypeError:
                continue
            raise exc
    raise services.ServiceError(message, stored=stored)


def cmd_jobs(args: argparse.Namespace) -> int:
    from app import services

    try:
        who = _actor(args)
        if args.cancel is not None:
            services.cancel_job(args.cancel, actor=who)
        if args.rerun is not None:
            services.rerun_job(args.rerun, actor=who)
        snaps = services.list_jobs(args.session, limit=args.limit, actor=who)
    except services.ServiceError as exc:
        print(f"perfloop: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps([s.as_json() for s in snaps]))
        return EXIT_OK
    if not snaps:
        print("no jobs")
    for s in snaps:
        where = f"session {s.session_id}" if s.session_id is not None else "no session"
        line = f"job {s.id:>5}  {s.kind:<14} {s.state:<11} {where}"
        if s.worker:
            line += f"  worker {s.worker}"
        if s.error:
            line += f"\n           {s.error.splitlines()[0]}"
        print(line)
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    from app import worker

    try:
        return worker.run_worker(concurrency=args.concurrency)
    except worker.QueueUnavailable as exc:
        print(f"perfloop: {exc}", file=sys.stderr)
        return EXIT_USAGE


def cmd_export(args: argparse.Namespace) -> int:
    from app import services

    try:
        who = _actor(args)
        text = services.export_session(
            args.session_id, args.format, candidate_id=args.candidate, actor=who
        )
    except services.ServiceError as exc:
        print(f"perfloop: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    from sqlalchemy.exc import OperationalError, ProgrammingError

    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "jobs":
            return cmd_jobs(args)
        if args.command == "worker":
            return cmd_worker(args)
        return cmd_export(args)
    except (OperationalError, ProgrammingError) as exc:
        # Most often a fresh database without tables: say how to create them.
        print(
            f"perfloop: the database is not usable ({type(exc.orig).__name__}: "
            f"{str(exc.orig).splitlines()[0]}); create or update its tables with "
            "`make migrate` (alembic upgrade head)",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
