"""Static performance hints: ruff's ``PERF`` rules and the ``FURB`` rules that concern speed,
run on a version's source text (ruff only reads it, so this runs outside the sandbox), and
the findings that fall on the lines the profile says are hot."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: FURB rules about speed (the others are about style): repeated appends/adds instead of one
#: extend/update, operator functions instead of lambdas, starmap, a copy by slice, needless
#: enumerate, int.bit_count, single-item membership, reversing a copy, sorted() for min/max.
SPEED_FURB = (
    "FURB113",
    "FURB118",
    "FURB122",
    "FURB129",
    "FURB131",
    "FURB132",
    "FURB136",
    "FURB140",
    "FURB142",
    "FURB145",
    "FURB148",
    "FURB161",
    "FURB171",
    "FURB187",
    "FURB192",
)
RULES = ("PERF", *SPEED_FURB)
TIMEOUT_S = 30


@dataclass(frozen=True)
class Hint:
    line: int
    code: str
    message: str
    end_line: int | None = None

    def text(self) -> str:
        return f"line {self.line}: {self.code} {self.message}"


@dataclass(frozen=True)
class HotHint:
    hint: Hint
    share: float  # share of the profiled time spent on its line(s)

    def text(self) -> str:
        return (
            f"line {self.hint.line} ({self.share * 100:.0f} % of time): "
            f"{self.hint.code} {self.hint.message}"
        )


def performance_hints(source: str, *, filename: str = "module.py") -> list[Hint]:
    """ruff's findings for ``RULES`` on ``source`` (the project's ruff config is ignored, so
    the same rules apply everywhere); [] when ruff cannot read the text (a syntax error)."""
    cmd = [
        sys.executable,
        "-m",
        "ruff",
        "check",
        "--isolated",
        "--no-cache",
        "--preview",  # several speed FURB rules are preview rules in ruff 0.x
        "--select",
        ",".join(RULES),
        "--output-format",
        "json",
        "--exit-zero",
        "--stdin-filename",
        filename,
        "-",
    ]
    try:
        done = subprocess.run(
            cmd, input=source, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    try:
        found = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        return []
    hints = []
    for item in found:
        code = item.get("code")
        if not code:  # a syntax error is reported without a code
            continue
        loc = item.get("location") or {}
        end = item.get("end_location") or {}
        hints.append(
            Hint(
                line=int(loc.get("row") or 0),
                code=str(code),
                message=str(item.get("message") or ""),
                end_line=end.get("row"),
            )
        )
    return sorted(hints, key=lambda h: (h.line, h.code))


def hot_hints(
    hints: Sequence[Hint],
    profile: Iterable[dict | object],
    *,
    min_share: float = 0.05,
    lines: tuple[int, int] | None = None,
) -> list[HotHint]:
    """The hints whose lines took at least ``min_share`` of the profiled time, hottest first.
    ``profile`` holds line-profile entries (dicts or objects with ``line`` and ``share``);
    ``lines`` limits hints to a span (the target's)."""
    share: dict[int, float] = {}
    for entry in profile:
        get = entry.get if isinstance(entry, dict) else lambda k, e=entry: getattr(e, k, None)
        line, s = get("line"), get("share")
        if line is not None and s is not None:
            share[int(line)] = share.get(int(line), 0.0) + float(s)
    out = []
    for h in hints:
        if lines is not None and not (lines[0] <= h.line <= lines[1]):
            continue
        span = range(h.line, (h.end_line or h.line) + 1)
        s = max((share.get(i, 0.0) for i in span), default=0.0)
        if s >= min_share:
            out.append(HotHint(h, s))
    return sorted(out, key=lambda x: -x.share)
