"""The Sessions list and the session header agree on the best speedup after "Mark best"
(issue 9 item 8): one function computes it for both."""

from __future__ import annotations

from app import services


def test_sessions_list_and_header_agree_after_mark_best(seeded, seeded_at) -> None:  # noqa: ANN001
    from db import queries
    from db.engine import unit_of_work
    from db.models import utcnow

    with unit_of_work(seeded.ctx.engine) as s:  # the seeded candidate measured 3× faster
        ev = queries.add_evaluation(session=s, candidate_id=seeded.candidate_id, backend="bwrap")
        ev.status, ev.correct, ev.speedup, ev.verdict = "ok", True, 3.0, "faster"
        ev.ci_low, ev.ci_high, ev.finished_at = 2.8, 3.2, utcnow()
    services.mark_best(seeded.baseline_id)  # the person prefers the baseline anyway

    header = services.get_session(seeded.session_id).figures.best_speedup
    [row] = services.list_sessions()[0]
    assert row.best_speedup == header  # not the fastest measurement (3×)
    at = seeded_at("sessions")
    assert not at.exception
    assert "3.00" not in str(at.dataframe[0].value["best speedup"].tolist())
