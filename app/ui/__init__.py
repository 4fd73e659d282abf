"""Shared Streamlit widgets: code input, diff, verdict card, job progress, routing heatmap and
the one place that turns errors into messages (``app.ui.errors``)."""

from app.ui.code import code_input, plain_editors, set_code
from app.ui.diff import show_diff, side_by_side_html
from app.ui.errors import guard, message_for, show_error
from app.ui.state import keep_typed_inputs
from app.ui.verdict import candidate_card, show_evaluation, verdict_parts

__all__ = [
    "candidate_card",
    "code_input",
    "guard",
    "keep_typed_inputs",
    "message_for",
    "plain_editors",
    "set_code",
    "show_diff",
    "show_error",
    "show_evaluation",
    "side_by_side_html",
    "verdict_parts",
]
