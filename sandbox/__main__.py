"""Command line: ``python -m sandbox evaluate TASK.json [--backend …] [--json]``.

Exit status: 0 whenever the evaluation ran (whatever the code under test did; read ``status``),
2 for usage errors (bad task, unavailable backend), with the reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .backends import NAMES
from .errors import SandboxError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="evaluate TASK.json and print the verdict")
    ev.add_argument("task", help="path to TASK.json, or - for stdin")
    ev.add_argument("--backend", choices=NAMES, help="default: the settings' sandbox_backend")
    ev.add_argument(
        "--allow-process",
        action="store_true",
        help="allow the unisolated 'process' backend (development only)",
    )
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    sub.add_parser("backends", help="list the backends and whether they can run here")
    img = sub.add_parser("build-image", help="build the Docker sandbox image (debootstrap)")
    img.add_argument("--force", action="store_true", help="rebuild even if present")
    return parser


def _human(verdict: dict) -> str:
    if verdict.get("candidates"):
        head = f"status: {verdict['status']}" + (
            f" — {verdict['message']}" if verdict.get("message") else ""
        )
        parts = [head]
        for i, each in enumerate(verdict["candidates"]):
            body = _human(each).replace("\n", "\n  ")
            parts.append(f"candidate #{i + 1}:\n  {body}")
        return "\n".join(parts)
    lines = [
        f"status: {verdict['status']}"
        + (f" — {verdict['message']}" if verdict.get("message") else "")
    ]
    tests = verdict["tests"]
    if tests["ran"]:
        lines.append(f"tests: {tests['passed']} passed, {tests['failed']} failed")
        lines += [f"  FAIL {f['name']}: {f['message']}" for f in tests["failures"]]
    if verdict["equivalent"] is not None:
        lines.append(f"equivalent: {verdict['equivalent']}")
        lines += [
            f"  case {m['case']}: {m['reason']} (expected {m['expected']}, got {m['got']})"
            for m in verdict["mismatches"]
        ]
    for side in ("baseline", "candidate"):
        if verdict.get(side):
            s = verdict[side]
            lines.append(
                f"{side}: {s['per_call_s'] * 1e6:.2f} µs/call ({s['statistic']}, "
                f"{s['clock']} clock, {s['samples']} samples)"
            )
    if verdict["speedup"] is not None:
        low, high = verdict["ci95"]
        lines.append(
            f"speedup: ×{verdict['speedup']:.3f} [95% CI {low:.3f}–{high:.3f}]: "
            f"{verdict['verdict']}"
        )
    coverage = verdict.get("coverage")
    if coverage:
        share = coverage["covered"] / coverage["lines"] if coverage["lines"] else 1.0
        missing = ", ".join(map(str, coverage["missing"][:20]))
        note = f"; not run: {missing}" if missing else ""
        lines.append(
            f"coverage of the target by the tests: {coverage['covered']} of "
            f"{coverage['lines']} lines ({share:.0%}){note}"
        )
    if verdict.get("rounds"):
        lines.append(
            f"timing: {verdict['rounds']} rounds, stopped: {verdict['stopped']}, "
            f"{verdict['timing_s']:.2f} s"
        )
    if verdict["peak_memory_bytes"] is not None:
        lines.append(f"peak memory: {verdict['peak_memory_bytes']:,} bytes")
    hottest = sorted(verdict.get("line_profile") or [], key=lambda x: -x["time_s"])[:8]
    if hottest:
        lines.append("hottest lines (share of the entry point's time, hits):")
    for line in hottest:
        lines.append(
            f"  {line['function']}:{line['line']:<4} {line['share'] * 100:5.1f}% "
            f"{line['hits']:>8}  {line['source'].strip()}"
        )
    lines.append(f"backend: {verdict['backend']}, {verdict['duration_s']:.2f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "backends":
            from .api import available_backends

            for name, reason in available_backends().items():
                print(f"{name:8} {'available' if reason is None else reason}")
            return 0
        if args.command == "build-image":
            from .image import build_image

            print(build_image(force=args.force, log=lambda m: print(m, file=sys.stderr)))
            return 0
        from .api import evaluate

        try:
            text = sys.stdin.read() if args.task == "-" else Path(args.task).read_text()
            task = json.loads(text)
        except (OSError, ValueError) as exc:
            print(f"error: cannot read task {args.task}: {exc}", file=sys.stderr)
            return 2
        if args.task != "-" and isinstance(task, dict):
            # A project or environment named relative to TASK.json lies next to it.
            for key in ("project", "environment"):
                if isinstance(task.get(key), str) and not Path(task[key]).is_absolute():
                    task[key] = str(Path(args.task).resolve().parent / task[key])

        def progress(stage: str, info: dict) -> None:
            if not args.quiet and not args.json:
                note = f" (skipped: {info['skipped']})" if info.get("skipped") else ""
                if "candidate" in info:
                    note = f" candidate #{info['candidate'] + 1}{note}"
                print(f"[{stage}]{note}", file=sys.stderr)

        verdict = evaluate(
            task, backend=args.backend, allow_process=args.allow_process, progress=progress
        )
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(verdict, indent=None if args.json else 2) if args.json else _human(verdict))
    return 0


if __name__ == "__main__":
    sys.exit(main())
