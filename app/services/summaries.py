"""Summary-mediated prompting: the LLM summarises a candidate at a granularity, each item linked
to line spans (checked with ``ast``, repaired or dropped); the person edits items; the LLM
changes the code to match the edited summary; the result is a candidate of origin ``summary``,
evaluated; the summary is refreshed and the changed items are reported."""

from __future__ import annotations

import ast
import difflib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from app.llm import prompts
from app.services import _convert as cv
from app.services._llm import call_model
from app.services.access import Actor, acting, require_change, require_read, session_of_candidate
from app.services.candidates import store_numbered, unified_diff, view_of
from app.services.code import extract_code, fenced_blocks
from app.services.context import Context, get_context
from app.services.errors import InvalidInput, NoCodeInReply, NotFound
from app.services.evaluation import evaluate_on_pool
from app.services.views import (
    Granularity,
    ItemChange,
    SummaryEditResult,
    SummaryItem,
    SummaryView,
)
from db import queries
from db.engine import unit_of_work
from db.errors import NotFound as RowNotFound
from db.models import CodeSummary

TokenFn = Callable[[str], None]
RoutingFn = Callable[[Any], None]
ProgressFn = Callable[[str, dict[str, Any]], None]
GRANULARITIES = ("overview", "step-by-step", "line-by-line")
_LINES = re.compile(r"\(?\blines?\s+(\d+)(?:\s*(?:-|–|to)\s*(\d+))?\)?", re.I)


# --- parsing and checking --------------------------------------------------------------------


def parse_items(reply: str) -> list[SummaryItem]:
    """Items from a reply: the JSON list asked for, else bullets like "- text (lines 3-5)"."""
    for tag, body in fenced_blocks(reply) + [("", reply)]:
        if tag not in ("", "json"):
            continue
        try:
            data = json.loads(body)
        except ValueError:
            continue
        if isinstance(data, list):
            items = []
            for d in data:
                if not isinstance(d, dict) or not str(d.get("text", "")).strip():
                    continue
                spans = []
                for span in d.get("lines") or d.get("spans") or []:
                    if isinstance(span, int):
                        spans.append((span, span))
                    elif isinstance(span, list | tuple) and len(span) == 2:
                        try:
                            spans.append((int(span[0]), int(span[1])))
                        except (TypeError, ValueError):
                            continue
                items.append(SummaryItem(text=str(d["text"]).strip(), spans=spans))
            if items:
                return items
    items = []
    for line in reply.splitlines():
        m = re.match(r"^\s*(?:[-*•]|\d+[.)])\s+(.*\S)", line)
        if not m:
            continue
        text = m.group(1)
        spans = [(int(a), int(b or a)) for a, b in _LINES.findall(text)]
        items.append(SummaryItem(text=_LINES.sub("", text).strip(" :;,-"), spans=spans))
    return [i for i in items if i.text]


def _statements(tree: ast.AST) -> list[ast.stmt]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]


def _start(node: ast.stmt) -> int:
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])


def check_spans(source: str, items: list[SummaryItem]) -> tuple[list[SummaryItem], list[str]]:
    """Clamp/repair each item's spans against the code's real statements (via ``ast``); drop
    spans that cannot be repaired. Returns the items and what was repaired, in words.

    A span is snapped outwards to whole statements: a start inside a multi-line statement moves
    to its first line, an end inside one to its last line (an end on a compound statement's
    header stays on the header). A span that covers no statement at all (blank lines,
    comments, past the end) is dropped; reversed spans are swapped.
    """
    tree = ast.parse(source)
    n_lines = len(source.splitlines())
    stmts = _statements(tree)
    out: list[SummaryItem] = []
    notes: list[str] = []
    for k, item in enumerate(items, 1):
        spans: list[tuple[int, int]] = []
        for a, b in item.spans:
            orig = (a, b)
            if a > b:
                a, b = b, a
            a, b = max(1, a), min(n_lines, b)
            inside = [s for s in stmts if _start(s) <= b and (s.end_lineno or s.lineno) >= a]
            if a > b or not inside:
                notes.append(f"item {k}: lines {orig[0]}–{orig[1]} describe no code; dropped")
                continue
            at_a = [s for s in stmts if _start(s) <= a <= (s.end_lineno or s.lineno)]
            if at_a:
                a = _start(min(at_a, key=lambda s: (s.end_lineno or s.lineno) - _start(s)))
            else:
                a = min(_start(s) for s in inside if _start(s) >= a)
            at_b = [s for s in stmts if _start(s) <= b <= (s.end_lineno or s.lineno)]
            if at_b:
                inner = min(at_b, key=lambda s: (s.end_lineno or s.lineno) - _start(s))
                body = getattr(inner, "body", None)
                if isinstance(body, list) and body and b < body[0].lineno:
                    b = body[0].lineno - 1  # the header of a compound statement
                else:
                    b = inner.end_lineno or inner.lineno
            else:
                b = max(
                    (s.end_lineno or s.lineno) for s in inside if (s.end_lineno or s.lineno) <= b
                )
            if (a, b) != orig:
                notes.append(f"item {k}: lines {orig[0]}–{orig[1]} adjusted to {a}–{b}")
            if (a, b) not in spans:
                spans.append((a, b))
        out.append(SummaryItem(text=item.text, spans=sorted(spans)))
    return out, notes


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def diff_items(before: list[SummaryItem], after: list[SummaryItem]) -> list[ItemChange]:
    """Which items were added, removed or changed between two summaries (``ItemChange``)."""
    sm = difflib.SequenceMatcher(
        a=[_norm(i.text) for i in before], b=[_norm(i.text) for i in after], autojunk=False
    )
    out: list[ItemChange] = []
    for op, a0, a1, b0, b1 in sm.get_opcodes():
        if op == "equal":
            continue
        olds, news = before[a0:a1], after[b0:b1]
        for j in range(max(len(olds), len(news))):
            old = olds[j] if j < len(olds) else None
            new = news[j] if j < len(news) else None
            kind = "changed" if old and new else ("removed" if old else "added")
            out.append(ItemChange(kind=kind, before=old, after=new))
    return out


def describe_changes(changes: Sequence[ItemChange]) -> str:
    lines = []
    for ch in changes:
        if ch.kind == "changed":
            lines.append(f'- changed: "{ch.before.text}" → "{ch.after.text}"')  # type: ignore[union-attr]
        elif ch.kind == "added":
            lines.append(f'- added: "{ch.after.text}"')  # type: ignore[union-attr]
        else:
            lines.append(f'- removed: "{ch.before.text}"')  # type: ignore[union-attr]
    return "\n".join(lines) or "- (no differences)"


# --- use-cases -------------------------------------------------------------------------------


def _summarize_source(
    c: Context,
    session_id: int,
    candidate_id: int,
    source: str,
    granularity: str,
    model: str,
    on_token: TokenFn | None,
    on_routing: RoutingFn | None,
    on_progress: ProgressFn | None,
) -> SummaryView:
    messages = [
        {"role": "system", "content": "You explain code precisely and briefly."},
        {"role": "user", "content": prompts.summarize(source, granularity=granularity)},
    ]
    result, reply_id = call_model(
        c,
        session_id,
        messages,
        model=model,
        kind="summary",
        on_token=on_token,
        on_routing=on_routing,
        on_progress=on_progress,
        meta={"candidate_id": candidate_id, "granularity": granularity},
        stored={"session_id": session_id},
    )
    items, notes = check_spans(source, parse_items(result.text))
    if not items:
        raise NoCodeInReply(
            "The reply held no summary items (a JSON list of {text, lines}); it is stored — "
            "try again or another granularity.",
            stored={"session_id": session_id, "message_id": reply_id},
        )
    raw = cv.items_json(items)
    if notes:
        raw[0]["repairs"] = notes  # kept with the row, shown by SummaryView.repairs
    with unit_of_work(c.engine) as s:
        row = queries.add_code_summary(
            session=s, candidate_id=candidate_id, granularity=granularity, items=raw, model=model
        )
        msg = queries.get_message(reply_id, session=s)
        msg.meta = {**msg.meta, "summary_id": row.id}
        return cv.summary_view(row)


def summarize(
    candidate_id: int,
    *,
    granularity: Granularity = "step-by-step",
    model: str | None = None,
    on_token: TokenFn | None = None,
    on_routing: RoutingFn | None = None,
    on_progress: ProgressFn | None = None,
    actor: Actor | None = None,
    ctx: Context | None = None,
) -> SummaryView:
    """Ask the model for a summary of a candidate whose items point at line spans."""
    c = get_context(ctx)
    if granularity not in GRANULARITIES:
        raise InvalidInput(f"granularity is one of {', '.join(GRANULARITIES)}", field="granularity")
    with unit_of_work(c.engine) as s:
        require_change(s, session_of_candidate(s, candidate_id), acting(actor, c), c.settings)
        cand = view_of(s, candidate_id)
        sess = queries.get_session(cand.session_id, session=s)
        model = model or sess.model or c.model
    return _summarize_source(
        c,
        cand.session_id,
        candidate_id,
        cand.source,
        granularity,
        model,
        on_token,
        on_routing,
        on_progress,
    )


def get_summary(
    summary_id: int, *, actor: Actor | None = None, ctx: Context | None = None
) -> SummaryView:
    c = get_context(ctx)
    with unit_of_work(c.engine) as s:
        row = s.get(CodeSummary, summary_id)
        if row is None:
            raise NotFound("summary", summary_id)
        require_read(s, session_of_candidate(s, row.candidate_id), acting(actor, c), c.settings)
        return cv.summary_view(row)


def list_summaries(
    candidate_id: int, *, actor: Actor | None = None, ctx: Context | None = None
) -> list[SummaryView]:
    c = get_context(ctx)
    with unit_of_work(c.engine) as s:
        try:
            row = queries.get_candidate(candidate_id, session=s)
        except RowNotFound as exc:
            raise NotFound("candidate", candidate_id) from exc
        require_read(s, row.session_id, acting(actor, c), c.settings)
        return [cv.summary_view(x) for x in row.summaries]


def apply_summary_edit(
    summary_id: int,
    edited_items: list[SummaryItem],
    *,
    model: str | None = None,
    evaluate: bool = True,
    on_token: TokenFn | None = None,
    on_routing: RoutingFn | None = None,
    on_progress: ProgressFn | None = None,
    actor: Actor | None = None,
    ctx: Context | None = None,
) -> SummaryEditResult:
    """Send code + original summary + edited summary (differences pointed out) to the LLM,
    store the returned code as a candidate (origin ``summary``), evaluate it, refresh the
    summary and report which items changed."""
    c = get_context(ctx)
    who = acting(actor, c)
    original = get_summary(summary_id, actor=who, ctx=c)
    with unit_of_work(c.engine) as s:
        require_change(s, session_of_candidate(s, original.candidate_id), who, c.settings)
    edits = diff_items(original.items, list(edited_items))
    if not edits:
        raise InvalidInput("The edited summary is the same as the original; change an item first.")
    with unit_of_work(c.engine) as s:
        row = s.get(CodeSummary, summary_id)
        assert row is not None
        row.edited_items = cv.items_json(list(edited_items))
        cand = view_of(s, original.candidate_id)
        sess = queries.get_session(cand.session_id, session=s)
        model = model or sess.model or c.model
        entry = sess.entry_point
        session_id = sess.id
        request = queries.add_message(
            session=s,
            session_id=session_id,
            role="user",
            kind="summary",
            content="Summary edited:\n" + describe_changes(edits),
            meta={"summary_id": summary_id, "candidate_id": cand.id},
        )
        stored = {"session_id": session_id, "user_message_id": request.id}
    messages = [
        {"role": "system", "content": prompts.SYSTEM_PROMPT},
        {
            "role": "user",
            "content": prompts.summary_edit(
                code=cand.source,
                entry=entry,
                original=cv.items_json(original.items),
                edited=cv.items_json(list(edited_items)),
                changes=describe_changes(edits),
            ),
        },
    ]
    result, reply_id = call_model(
        c,
        session_id,
        messages,
        model=model,
        kind="summary",
        on_token=on_token,
        on_routing=on_routing,
        on_progress=on_progress,
        meta={"summary_id": summary_id, "candidate_id": cand.id},
        stored=stored,
    )
    proposals = extract_code(result.text, cand.source, entry).proposals
    if not proposals:
        raise NoCodeInReply(
            "The reply held no changed code; it is stored — try again or rephrase the edit.",
            stored={**stored, "message_id": reply_id},
        )
    p = proposals[0]
    new_id = store_numbered(
        c,
        session_id,
        lambda s, iteration: (
            queries.add_candidate(
                session=s,
                session_id=session_id,
                source=p.source,
                origin="summary",
                parent_id=cand.id,
                message_id=reply_id,
                iteration=iteration,
                meta={"summary_id": summary_id, "kind": p.kind},
            ).id
        ),
    )
    if evaluate:
        evaluate_on_pool([new_id], c, on_progress=on_progress)
    refreshed = _summarize_source(
        c,
        session_id,
        new_id,
        p.source,
        original.granularity,
        model,
        on_token,
        on_routing,
        on_progress,
    )
    with unit_of_work(c.engine) as s:
        new_view = view_of(s, new_id)
    return SummaryEditResult(
        candidate=new_view,
        summary=refreshed,
        changes=diff_items(original.items, refreshed.items),
        edit_changes=edits,
        diff=unified_diff(cand.source, p.source, f"candidate {cand.id}", f"candidate {new_id}"),
        message_id=reply_id,
    )
