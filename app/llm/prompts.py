"""What perfloop says to the model: the system prompt for performance work, profiling-guided
feedback (last verdicts, speedup with CI, hottest lines, peak memory), and the prompts of the
ConAIR and summary-mediated modes. Pure functions of plain data: easy to test, easy to read."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

SYSTEM_PROMPT = """\
You are a performance engineer. You make Python code faster without changing what it does.

Rules:
- Keep the behaviour identical for every input: same return values, same exceptions, same \
effects on the arguments. The new version is checked against the original on a realistic \
workload and by tests; a faster but different version is rejected.
- Keep the entry point's name and signature. Use only the standard library and what the code \
already imports.
- Look at the profile you are given: spend your effort on the hottest lines.
- Answer with a short explanation of the idea, then the code in ONE fenced ```python block. \
The block may hold the whole module, or only the functions you changed (they replace the \
functions of the same name).
- If a previous attempt was wrong or slower, say why and try a different idea."""

HOT_LINES = 5


@dataclass(frozen=True)
class ProfileLine:
    line: int
    hits: int
    time: float
    share: float
    source: str


@dataclass(frozen=True)
class Feedback:
    """What the sandbox said about one version, reduced to what the model needs."""

    label: str  # e.g. "candidate 7 (iteration 2)"
    status: str
    correct: bool | None
    speedup: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    verdict: str | None = None
    tests_failed: int | None = None
    failures: Sequence[tuple[str, str]] = ()
    mismatches: Sequence[str] = ()
    hot_lines: Sequence[ProfileLine] = ()
    peak_memory_bytes: int | None = None
    error: str | None = None
    is_current: bool = False  # the version the model is asked to improve
    extra: dict = field(default_factory=dict)


def _mib(n: int) -> str:
    if n < 2**20:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 2**20:.1f} MiB"


def format_feedback(item: Feedback, *, hot_lines: int = HOT_LINES) -> str:
    """One version's verdict as a few lines of text, with the hottest lines of its profile."""
    head = f"{item.label}: "
    if item.status in ("ok", "failed") and item.correct:
        if item.speedup is not None:
            ci = ""
            if item.ci_low is not None and item.ci_high is not None:
                ci = f" (95% CI {item.ci_low:.2f}–{item.ci_high:.2f})"
            head += f"correct, speedup ×{item.speedup:.2f}{ci}, {item.verdict or 'n/a'}"
        else:
            head += "correct"
    elif item.status in ("ok", "failed"):
        head += "WRONG"
        if item.tests_failed:
            head += f" — {item.tests_failed} test(s) failed"
    else:
        head += f"evaluation {item.status}"
    lines = [head]
    if item.error:
        lines.append(f"  error: {item.error[:400]}")
    for name, msg in list(item.failures)[:3]:
        lines.append(f"  failed {name}: {msg[:200]}")
    for m in list(item.mismatches)[:2]:
        lines.append(f"  output differs: {m[:200]}")
    if item.peak_memory_bytes:
        lines.append(f"  peak memory: {_mib(item.peak_memory_bytes)}")
    hot = sorted(item.hot_lines, key=lambda h: h.time, reverse=True)[:hot_lines]
    if hot:
        lines.append("  hottest lines (line: share of time, hits | code):")
        for h in hot:
            lines.append(f"    {h.line:>4}: {h.share:6.1%} {h.hits:>9} | {h.source.strip()}")
    return "\n".join(lines)


def feedback_section(items: Sequence[Feedback]) -> str:
    if not items:
        return ""
    return "Measurements so far (sandbox, against the original):\n" + "\n".join(
        format_feedback(i) for i in items
    )


def number_lines(code: str) -> str:
    return "\n".join(f"{i:>4}| {line}" for i, line in enumerate(code.splitlines(), 1))


def turn_message(instruction: str, *, code: str, entry: str, feedback: Sequence[Feedback]) -> str:
    """The user message of a chat turn: the request, the current version, the feedback."""
    parts = [instruction.strip(), "", f"Current version (entry point `{entry}`):"]
    parts += ["```python", code.rstrip(), "```"]
    section = feedback_section(feedback)
    if section:
        parts += ["", section]
    return "\n".join(parts)


def module_turn_message(
    instruction: str,
    *,
    target: str,
    code: str,
    imports: str,
    callees: Sequence[tuple[str, str]],
    feedback: Sequence[Feedback],
    hints: Sequence[str] = (),
    coverage: str | None = None,
    compact: bool = False,
) -> str:
    """The turn message for a function or method inside a real module (``target`` is
    MODULE:QUALNAME): the request, the target's source, the module's imports, the project code
    it calls (one hop), the feedback with its profile, the static hints on hot lines and the
    tests' coverage of the target."""
    module, _, qualname = target.partition(":")
    parts = [
        instruction.strip(),
        "",
        f"The code to make faster is `{qualname}` in module `{module}` (the rest of the module "
        "and the project stay as they are):",
        "```python",
        code.rstrip(),
        "```",
    ]
    if imports.strip() and not compact:
        parts += ["", "The module's imports:", "```python", imports.rstrip(), "```"]
    for name, src in [] if compact else callees:
        parts += ["", f"It calls `{name}`:", "```python", src.rstrip(), "```"]
    if compact:
        current = [f for f in feedback if f.is_current]
        hot = (
            sorted(current[0].hot_lines, key=lambda h: h.time, reverse=True)[:3] if current else []
        )
        if hot:
            parts.append("Profile (share of time per line):")
            parts += [f"{h.line:>4}: {h.share:6.1%} | {h.source.rstrip()}" for h in hot]
    else:
        section = feedback_section(feedback)
        if section:
            parts += ["", section]
    if hints:
        parts += ["", "Static performance hints (ruff) on hot lines:"]
        parts += [f"  {h}" for h in hints]
    if coverage:
        parts += ["", f"Coverage: {coverage}."]
    parts += [
        "",
        f"Answer with the new `{qualname.rsplit('.', 1)[-1]}` in one ```python block "
        + (
            f"(a `def` with the same signature, or `class {qualname.split('.')[0]}:` holding "
            "only the methods you change); "
            if "." in qualname
            else "(the `def` with the same signature); "
        )
        + "new helper functions may go in the same block.",
    ]
    return "\n".join(parts)


# Small local models (the offline default has 135M parameters) lose the thread in a long
# prompt and repeat themselves; they do follow a short one. Same information, fewer words.
COMPACT_SYSTEM_PROMPT = (
    "You are a Python performance expert. Keep the behaviour identical. "
    "Always answer with the code in a ```python block."
)


def compact_turn_message(instruction: str, *, code: str, feedback: Sequence[Feedback]) -> str:
    """The turn message for small models: request, code, then the profile's top lines and a
    one-line verdict per recent attempt."""
    parts = [f"{instruction.strip()}\n```python\n{code.rstrip()}\n```"]
    current = [f for f in feedback if f.is_current]
    hot = sorted(current[0].hot_lines, key=lambda h: h.time, reverse=True)[:3] if current else []
    if hot:
        parts.append("Profile (share of time per line):")
        parts += [f"{h.line:>4}: {h.share:6.1%} | {h.source.rstrip()}" for h in hot]
    for f in [f for f in feedback if not f.is_current][-2:]:
        parts.append("Last attempt: " + format_feedback(f, hot_lines=0).split("\n")[0])
    return "\n".join(parts)


def verdict_message(items: Sequence[Feedback]) -> str:
    """The short message added to the conversation after a turn's candidates are evaluated."""
    return "Sandbox verdict:\n" + "\n".join(format_feedback(i, hot_lines=3) for i in items)


# --- ConAIR ---------------------------------------------------------------------------------

CONAIR_SYSTEM = SYSTEM_PROMPT


def conair_generate(instruction: str, *, code: str, entry: str, n: int, m: int) -> str:
    return "\n".join(
        [
            instruction.strip(),
            "",
            f"Current version (entry point `{entry}`):",
            "```python",
            code.rstrip(),
            "```",
            "",
            f"Propose {n} different faster versions, each in its own ```python block whose "
            f"first line is `# candidate <number>`. Then write {m} tests in ONE ```python block "
            f"whose first line is `# tests`: pytest functions `def test_...():` that do "
            f"`from target import {entry}` and assert the exact expected result for small, "
            "tricky inputs (edge cases where a wrong optimisation would differ).",
        ]
    )


def conair_repair_candidate(*, code: str, entry: str, failures: Sequence[tuple[str, str]]) -> str:
    listed = "\n".join(f"- {name}:\n```python\n{src.rstrip()}\n```" for name, src in failures)
    return (
        f"This version of `{entry}` fails tests that a person confirmed are right:\n{listed}\n\n"
        f"```python\n{code.rstrip()}\n```\n\nFind the fault and return the corrected, still "
        "fast version in one ```python block."
    )


def conair_repair_test(*, test_source: str, entry: str, reason: str) -> str:
    return (
        f"A person says this test of `{entry}` is wrong ({reason}):\n```python\n"
        f"{test_source.rstrip()}\n```\nReturn a corrected test (same name, `from target import "
        f"{entry}`) in one ```python block."
    )


# --- summary-mediated mode ----------------------------------------------------------------------

GRANULARITY_HELP = {
    "overview": "3 to 5 items, each about a block of several lines",
    "step-by-step": "one item per step of the procedure, in order",
    "line-by-line": "one item per statement line that does real work",
}


def summarize(code: str, *, granularity: str) -> str:
    return (
        f"Summarise this code ({GRANULARITY_HELP[granularity]}). Answer with a JSON list only, "
        'in a ```json block: [{"text": "<what the lines do>", "lines": [[first, last], ...]}] '
        "where the line numbers are those shown on the left.\n\n"
        f"```\n{number_lines(code)}\n```"
    )


def summary_edit(
    *, code: str, entry: str, original: Sequence[dict], edited: Sequence[dict], changes: str
) -> str:
    return (
        "Here is code, the summary of it that you wrote, and the summary as a person edited "
        "it. Change the code so that it does what the edited summary says. Pay attention to "
        "the differences listed; keep everything else as it is.\n\n"
        f"Code (entry point `{entry}`):\n```python\n{code.rstrip()}\n```\n\n"
        f"Original summary:\n```json\n{json.dumps(list(original), indent=1)}\n```\n\n"
        f"Edited summary:\n```json\n{json.dumps(list(edited), indent=1)}\n```\n\n"
        f"Differences:\n{changes}\n\nReturn the whole changed module in one ```python block."
    )
