"""Read-only helpers the browser studio needs beyond the use-cases: the system's status for the
Settings page, who may see a session, routing analytics of a stored trace, a routing probe for
the live Routing page, and the classroom's growing series. Plain Python, no Streamlit."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.services.context import Context, get_context
from app.services.views import (
    CandidateView,
    EvaluationView,
    ReplayStep,
    RoutingView,
    SpeedupPoint,
)

# --- settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemStatus:
    database_url: str  # password hidden
    database_dialect: str
    data_dir: str
    default_model: str
    provider_keys: dict[str, bool]  # provider -> a key is configured (never the key)
    sandbox_backend: str
    sandbox_limits: dict[str, Any]
    sandbox_allow_process: bool
    sandbox_available: dict[str, str]  # backend -> "available" or why not
    eval_workers: int
    llm_timeout_s: float


def sandbox_availability() -> dict[str, str]:
    """Which sandbox backends can run here, asking the sandbox when it can tell."""
    try:
        import sandbox

        probe = getattr(sandbox, "available_backends", None)
        if probe is not None:
            result = probe()
            if isinstance(result, dict):
                # None (or True) means the backend can run; a string says why it cannot.
                return {
                    k: "available" if v is None or v is True else str(v or "not available")
                    for k, v in result.items()
                }
            return {name: "available" for name in result}
    except Exception as exc:  # noqa: BLE001 - the page reports it, it never fails on it
        return {"sandbox": f"could not be asked: {type(exc).__name__}: {exc}"}
    # The sandbox cannot tell yet: say what is installed.
    return {
        "bwrap": "installed" if shutil.which("bwrap") else "bwrap not found",
        "docker": "docker CLI installed" if shutil.which("docker") else "docker not found",
    }


def system_status(*, ctx: Context | None = None) -> SystemStatus:
    c = get_context(ctx)
    s = c.settings
    url = c.engine.url
    return SystemStatus(
        database_url=url.render_as_string(hide_password=True),
        database_dialect=url.get_backend_name(),
        data_dir=str(s.data_dir),
        default_model=c.model,
        provider_keys=s.provider_keys_present(),
        sandbox_backend=c.sandbox_backend or s.sandbox_backend,
        sandbox_limits=dict(c.sandbox_limits or s.sandbox_limits.model_dump()),
        sandbox_allow_process=c.allow_process,
        sandbox_available=sandbox_availability(),
        eval_workers=c.eval_workers,
        llm_timeout_s=s.llm_timeout_s,
    )


# --- routing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoutingAnalytics:
    """What the Routing page draws for one stored trace (arrays as from ``app.moe.analytics``)."""

    load: np.ndarray  # (L, E)
    imbalance: np.ndarray  # (L,) max/mean load
    entropy: np.ndarray  # (L,) bits
    coactivation: np.ndarray  # (E, E) for the chosen layer
    cache_sizes: list[int]
    curves: dict[str, list[float]]  # "SCH L=…" and "LRU" hit rates vs cache size (chosen layer)
    srp: np.ndarray  # (L,) SRP(segment_length)
    segment_length: int
    top_tokens: dict[int, list[tuple[str, float]]] = field(default_factory=dict)


def routing_analytics(
    view: RoutingView, *, layer: int = 0, segment_length: int = 16, top_n: int = 5
) -> RoutingAnalytics:
    from app.moe import analytics as a

    experts = np.asarray(view.experts, dtype=np.int64)  # (T, L, K)
    e = view.expert_count
    t = experts.shape[0]
    seg = max(1, min(segment_length, t))
    layer_experts = experts[:, layer, :]
    sizes = list(range(1, e + 1))
    load = a.expert_load(experts, e)
    spec = a.token_expert_npmi(list(view.tokens), layer_experts, e)
    return RoutingAnalytics(
        load=load,
        imbalance=a.load_imbalance(load).max_over_mean,
        entropy=a.routing_entropy(experts, e),
        coactivation=a.coactivation(experts, e, layer=layer),
        cache_sizes=sizes,
        curves={
            f"SCH L={seg}": [a.segment_cache_hit_rate(layer_experts, seg, c, e) for c in sizes],
            "LRU": [a.lru_hit_rate(layer_experts, c) for c in sizes],
        },
        srp=a.srp_by_layer(experts, seg, e),
        segment_length=seg,
        top_tokens={x: spec.top_tokens(x, n=top_n) for x in range(e)},
    )


@dataclass(frozen=True)
class ProbeResult:
    text: str
    model: str
    tokens: int
    layer_count: int | None
    expert_count: int | None
    top_k: int | None
    moefied: bool | None
    description: str


def probe_routing(
    prompt: str,
    *,
    model: str | None = None,
    max_tokens: int = 64,
    on_token: Callable[[str], None] | None = None,
    on_routing: Callable[[Any], None] | None = None,
    on_progress: Callable[[str, dict[str, Any]], None] | None = None,
    ctx: Context | None = None,
) -> ProbeResult:
    """Generate a short reply to ``prompt`` to watch the routing live (nothing is stored)."""
    from app import llm
    from app.services.errors import ModelError

    c = get_context(ctx)
    model = model or c.model
    if on_progress:
        on_progress("llm", {})
    try:
        result = llm.stream_chat(
            model,
            [{"role": "user", "content": prompt}],
            on_token=on_token,
            on_routing=on_routing,
            max_tokens=max_tokens,
            options=dict(c.llm_options),
        )
    except llm.LLMError as exc:
        raise ModelError(str(exc), retryable=exc.retryable) from exc
    info = result.routing_info
    if on_progress:
        on_progress("done", {})
    return ProbeResult(
        text=result.text,
        model=result.model,
        tokens=result.completion_tokens,
        layer_count=info.layer_count if info else None,
        expert_count=info.expert_count if info else None,
        top_k=info.top_k if info else None,
        moefied=info.moefied if info else None,
        description=info.description if info else "",
    )


# --- classroom ------------------------------------------------------------------------------


def series_until(steps: Sequence[ReplayStep], index: int) -> list[SpeedupPoint]:
    """The speedup chart's points as they stood after replay step ``index`` (inclusive)."""
    candidates: dict[int, CandidateView] = {}
    latest: dict[int, EvaluationView] = {}
    for step in steps[: index + 1]:
        if step.candidate is not None:
            candidates[step.candidate.id] = step.candidate
        if step.evaluation is not None and step.evaluation.finished:
            latest[step.evaluation.candidate_id] = step.evaluation
    points = []
    for cid, ev in latest.items():
        cand = candidates.get(cid)
        points.append(
            SpeedupPoint(
                iteration=cand.iteration if cand else 0,
                candidate_id=cid,
                origin=cand.origin if cand else "?",
                speedup=ev.speedup,
                ci_low=ev.ci_low,
                ci_high=ev.ci_high,
                verdict=ev.verdict,
                correct=ev.correct,
            )
        )
    return sorted(points, key=lambda p: (p.iteration, p.candidate_id))


def routing_until(steps: Sequence[ReplayStep], index: int) -> RoutingView | None:
    """The latest routing trace shown up to replay step ``index``."""
    for step in reversed(steps[: index + 1]):
        if step.routing is not None:
            return step.routing
    return None
