"""Profiling-guided prompts: what the sandbox measured must reach the model."""

from __future__ import annotations

from app.llm import prompts

PROFILE = [
    prompts.ProfileLine(line=4, hits=603, time=0.9, share=0.90, source="        if x in b:"),
    prompts.ProfileLine(line=5, hits=200, time=0.05, share=0.05, source="            n += 1"),
    prompts.ProfileLine(line=3, hits=603, time=0.05, share=0.05, source="    for x in a:"),
]


def test_turn_message_carries_code_verdicts_profile_and_memory():
    fb = [
        prompts.Feedback(
            label="current version = candidate 3",
            status="ok",
            correct=True,
            speedup=1.8,
            ci_low=1.7,
            ci_high=1.9,
            verdict="faster",
            hot_lines=PROFILE,
            peak_memory_bytes=3 * 2**20,
            is_current=True,
        ),
        prompts.Feedback(
            label="candidate 4",
            status="failed",
            correct=False,
            tests_failed=1,
            failures=[("test_duplicates", "assert 1 == 2")],
        ),
    ]
    text = prompts.turn_message("Go faster.", code="def f():\n    pass\n", entry="f", feedback=fb)
    assert "Go faster." in text and "def f():" in text
    assert "×1.80 (95% CI 1.70–1.90), faster" in text
    assert "if x in b:" in text, "the hottest line's source must reach the model"
    assert text.index("if x in b:") < text.index("n += 1"), "hottest line first"
    assert "90.0%" in text
    assert "peak memory: 3.0 MiB" in text
    assert "candidate 4: WRONG — 1 test(s) failed" in text
    assert "failed test_duplicates: assert 1 == 2" in text


def test_only_the_hottest_lines_are_listed():
    many = [prompts.ProfileLine(i, 1, float(i), i / 100, f"line_{i}") for i in range(1, 20)]
    text = prompts.format_feedback(prompts.Feedback("x", "ok", True, hot_lines=many))
    assert "line_19" in text and "line_15" in text
    assert "line_14" not in text


def test_summary_prompt_numbers_lines():
    text = prompts.summarize("a = 1\nb = 2\n", granularity="line-by-line")
    assert "   1| a = 1" in text and "   2| b = 2" in text


def test_the_compact_prompt_for_small_models_still_carries_the_profile():
    fb = [
        prompts.Feedback("current", "ok", True, hot_lines=PROFILE, is_current=True),
        prompts.Feedback("candidate 4", "failed", False, tests_failed=1),
    ]
    text = prompts.compact_turn_message("Faster please.", code="def f():\n    pass\n", feedback=fb)
    assert text.startswith("Faster please.\n```python\ndef f():")
    assert "   4:  90.0% |         if x in b:" in text
    assert "Last attempt: candidate 4: WRONG — 1 test(s) failed" in text
    assert len(text) < 400
