"""A session as a readable report: Markdown, and self-contained HTML whose charts work offline
(plotly.js is inlined once; no network, no CDN)."""

from __future__ import annotations

import html as _html
from collections.abc import Iterable

from app.services.views import CandidateView, EvaluationView, SessionView

HOT_LINES = 5


def _speedup(ev: EvaluationView | None) -> str:
    if ev is None:
        return "not evaluated"
    if ev.status not in ("ok", "failed"):
        return f"{ev.status}" + (f" — {ev.error}" if ev.error else "")
    if not ev.correct:
        return "wrong" + (f" ({ev.tests_failed} test(s) failed)" if ev.tests_failed else "")
    if ev.speedup is None:
        return "correct"
    ci = f" [95% CI {ev.ci_low:.2f}–{ev.ci_high:.2f}]" if ev.ci_low is not None else ""
    return f"×{ev.speedup:.2f}{ci} {ev.verdict or ''}".rstrip()


def _fmt(value: float | None, spec: str = ".2f", empty: str = "—") -> str:
    return empty if value is None else format(value, spec)


def figures_rows(view: SessionView) -> list[tuple[str, str]]:
    f = view.figures
    ci = f" [{f.best_ci[0]:.2f}–{f.best_ci[1]:.2f}]" if f.best_ci else ""
    rows = [
        ("best speedup", f"×{_fmt(f.best_speedup)}{ci}" if f.best_speedup else "—"),
        ("best candidate", f"#{f.best_candidate_id}" if f.best_candidate_id else "—"),
        (
            "candidates tried / correct / faster",
            f"{f.candidates_tried} / {f.candidates_correct} / {f.candidates_faster}",
        ),
        ("LLM calls", str(f.llm_calls)),
        ("tokens (prompt + completion)", f"{f.prompt_tokens} + {f.completion_tokens}"),
        ("cost", "unknown" if f.cost is None else f"${f.cost:.4f}"),
        ("LLM time / evaluation time", f"{f.llm_time_s:.1f} s / {f.eval_time_s:.1f} s"),
    ]
    rows += [(f"eff@{k}", f"{v:.3f}") for k, v in sorted(f.eff_at_k.items())]
    return rows


def _fence(code: str, lang: str = "python") -> str:
    fence = "````" if "```" in code else "```"
    return f"{fence}{lang}\n{code.rstrip()}\n{fence}"


def _candidate_md(c: CandidateView) -> list[str]:
    parent = f", parent #{c.parent_id}" if c.parent_id else ""
    best = " — **best**" if c.is_best else ""
    out = [
        f"### Candidate #{c.id} (iteration {c.iteration}, {c.origin}{parent}){best}",
        "",
        f"Verdict: {_speedup(c.evaluation)}",
        "",
        _fence(c.source),
    ]
    ev = c.evaluation
    if ev is not None and ev.line_profile:
        out += ["", "| line | share | hits | code |", "|---:|---:|---:|---|"]
        for h in ev.hottest(HOT_LINES):
            code = h.source.strip().replace("|", "\\|")
            out.append(f"| {h.line} | {h.share:.1%} | {h.hits} | `{code}` |")
    if ev is not None and ev.peak_memory_bytes:
        out += ["", f"Peak memory: {ev.peak_memory_bytes / 2**20:.1f} MiB"]
    return out + [""]


def markdown(view: SessionView) -> str:
    i = view.info
    out = [
        f"# {i.title}",
        "",
        f"- author: {i.author}",
        f"- created: {i.created_at:%Y-%m-%d %H:%M} UTC",
        f"- mode: {i.mode}; model: {i.model or '—'}",
        f"- entry point: `{i.entry_point}`",
    ]
    if i.tags:
        out.append(f"- tags: {', '.join(i.tags)}")
    if i.notes:
        out += ["", i.notes]
    out += ["", "## Figures", "", "| figure | value |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in figures_rows(view)]
    out += ["", "## Workload", "", _fence(i.workload_source)]
    for t in view.tests:
        out += ["", f"## Test `{t.name or t.id}` ({t.origin}, {t.validation})", ""]
        out.append(_fence(t.effective_source))
    out += ["", "## Transcript", ""]
    for m in view.messages:
        who = m.role if m.kind == "chat" else f"{m.role} · {m.kind}"
        extra = []
        if m.model and m.role == "assistant":
            extra.append(m.model)
        if m.completion_tokens:
            extra.append(f"{m.prompt_tokens}+{m.completion_tokens} tokens")
        if m.latency_s:
            extra.append(f"{m.latency_s:.1f} s")
        if m.routing_trace_id:
            extra.append("routing trace stored")
        suffix = f" ({', '.join(extra)})" if extra else ""
        out += [f"### {who}{suffix}", "", m.content.rstrip() or "_(empty)_", ""]
    out += ["## Candidates", ""]
    for c in view.candidates:
        out += _candidate_md(c)
    if view.comments:
        out += ["## Review comments", ""]
        for cm in view.comments:
            anchor = f" on candidate #{cm.candidate_id}" if cm.candidate_id else ""
            out.append(f"- **{cm.author}**{anchor} ({cm.created_at:%Y-%m-%d %H:%M}): {cm.text}")
    return "\n".join(out).rstrip() + "\n"


def _charts_html(view: SessionView) -> Iterable[str]:
    import plotly.io as pio

    from app import charts

    figs = [charts.speedup_chart(view.figures.series)]
    if any(c.evaluation and c.evaluation.peak_memory_bytes for c in view.candidates):
        figs.append(charts.memory_chart(view.candidates))
    best = view.best or view.baseline
    if best is not None and best.evaluation is not None and best.evaluation.line_profile:
        figs.append(
            charts.line_profile_chart(
                best.evaluation.line_profile, title=f"Line profile of candidate #{best.id}"
            )
        )
    for n, fig in enumerate(figs):
        # plotly.js (≈4 MB) inlined once, in the first chart: the file works offline.
        yield pio.to_html(fig, include_plotlyjs=(n == 0), full_html=False)


def _md_to_html(md: str) -> str:
    """A small Markdown renderer for what ``markdown`` writes (headings, lists, tables,
    fenced code, paragraphs) — enough for an offline report, no dependency."""
    e = _html.escape
    out: list[str] = []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(("```", "````")):
            fence = line[: len(line) - len(line.lstrip("`"))]
            body = []
            i += 1
            while i < len(lines) and lines[i] != fence:
                body.append(lines[i])
                i += 1
            out.append(f"<pre><code>{e(chr(10).join(body))}</code></pre>")
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{e(line[level:].strip())}</h{level}>")
        elif line.startswith("| "):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip("|").split(" | ")]
                if not set("".join(cells)) <= set("-:| "):
                    rows.append("".join(f"<td>{e(c)}</td>" for c in cells))
                i += 1
            out.append("<table>" + "".join(f"<tr>{r}</tr>" for r in rows) + "</table>")
            continue
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{e(lines[i][2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        elif line.strip():
            out.append(f"<p>{e(line)}</p>")
        i += 1
    return "\n".join(out)


STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#222;line-height:1.45}
pre{background:#f6f8fa;padding:.8rem;overflow-x:auto;border-radius:4px}
table{border-collapse:collapse;margin:.5rem 0}td{border:1px solid #ddd;padding:.25rem .6rem}
h3{margin-top:1.6rem}.charts>div{margin:1rem 0}
"""


def html(view: SessionView) -> str:
    """A self-contained HTML page: the Markdown report rendered, and the charts with plotly.js
    inlined (opens offline, sends nothing anywhere)."""
    charts = "\n".join(_charts_html(view))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_html.escape(view.info.title)} — perfloop</title>"
        f"<style>{STYLE}</style></head><body>\n"
        f'<div class="charts">{charts}</div>\n{_md_to_html(markdown(view))}\n'
        "</body></html>\n"
    )
