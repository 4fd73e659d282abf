"""Which models the person can choose: the local default, the configured default, the current
chat models of every provider whose key is set (from litellm's own model registry, so the list
follows litellm's updates), and the models a local OpenAI-compatible server reports at
``/v1/models`` (Ollama on its default port, and ``OPENAI_API_BASE``). Any other litellm model
string may be typed in."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import date

from app.services.context import Context, get_context

#: How many models per keyed provider are offered (newest names first).
PER_PROVIDER = 12
#: Seconds to wait for a local server's /v1/models, and how long its answer is remembered.
PROBE_TIMEOUT_S = 0.5
PROBE_TTL_S = 30.0
#: Chat models that are not for writing code (audio, realtime, search, images).
_NOT_FOR_CODE = re.compile(r"audio|realtime|search|transcribe|tts|image|embedding|moderation")
#: Dated snapshots (gpt-4o-2024-08-06, claude-opus-4-5-20251101, gpt-4-0613): the aliases
#: without a date name the same models and stay current.
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")

LOCAL_NOTE = (
    "the built-in 135M model: good for trying the studio and watching routing; for real "
    "optimization choose a stronger model"
)


@dataclass(frozen=True)
class ModelChoice:
    model: str  # the litellm model string
    label: str
    local: bool
    usable: bool  # a key is configured (remote) or the model is local
    note: str  # e.g. "set OPENAI_API_KEY to use it"


def _natural_key(name: str) -> list[object]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def registry_models(provider: str, *, today: date | None = None) -> list[str]:
    """The provider's current chat models in litellm's registry as litellm model strings:
    chat mode, not past their ``deprecation_date``, no dated snapshots or audio/realtime
    variants; newest names first (natural order, so gpt-5 before gpt-4o)."""
    from app.llm.client import litellm_module

    litellm = litellm_module()
    today = today or date.today()
    names = []
    for name in litellm.models_by_provider.get(provider, ()):
        info = litellm.model_cost.get(name) or litellm.model_cost.get(f"{provider}/{name}") or {}
        if info.get("mode") != "chat":
            continue
        deprecated = info.get("deprecation_date")
        if deprecated:
            try:
                if date.fromisoformat(str(deprecated)[:10]) <= today:
                    continue
            except ValueError:
                pass
        bare = name.split("/", 1)[1] if name.startswith(f"{provider}/") else name
        if "/" in bare or ":" in bare or _SNAPSHOT.search(bare) or _NOT_FOR_CODE.search(bare):
            continue
        names.append(f"{provider}/{bare}")
    return sorted(set(names), key=_natural_key, reverse=True)[:PER_PROVIDER]


_probe_cache: dict[str, tuple[float, list[str]]] = {}
_probe_lock = threading.Lock()


def server_models(base_url: str, *, timeout_s: float = PROBE_TIMEOUT_S) -> list[str]:
    """The model ids an OpenAI-compatible server at ``base_url`` (…/v1) reports, [] when it
    does not answer in ``timeout_s``; remembered for ``PROBE_TTL_S`` so a page rerun costs
    nothing."""
    url = base_url.rstrip("/")
    url = url if url.endswith("/v1") else url + "/v1"
    now = time.monotonic()
    with _probe_lock:
        hit = _probe_cache.get(url)
        if hit is not None and now - hit[0] < PROBE_TTL_S:
            return list(hit[1])
    ids: list[str] = []
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=timeout_s) as reply:  # noqa: S310
            body = json.loads(reply.read(1_000_000) or b"{}")
        ids = [str(m["id"]) for m in body.get("data", []) if isinstance(m, dict) and "id" in m]
    except (OSError, ValueError):
        ids = []
    with _probe_lock:
        _probe_cache[url] = (now, ids)
    return ids


def model_choices(*, ctx: Context | None = None) -> list[ModelChoice]:
    """The configured default first, the local model, the models of local OpenAI-compatible
    servers, then the current models of every provider whose key is set, then one entry per
    provider without a key saying how to enable it."""
    from app.llm.exceptions import KEY_VARIABLES

    c = get_context(ctx)
    s = c.settings
    default = s.default_model
    local = default if default.startswith("perfloop-moe/") else "perfloop-moe/default"
    out: list[ModelChoice] = []
    if default != local:
        out.append(ModelChoice(default, f"Configured default ({default})", False, True,
                               "from PERFLOOP_DEFAULT_MODEL"))  # fmt: skip
    out.append(ModelChoice(local, "Local model (offline, with expert routing)", True, True,
                           LOCAL_NOTE))  # fmt: skip
    servers = [("ollama", s.ollama_api_base, "Ollama")]
    if s.openai_api_base:
        servers.append(("openai", s.openai_api_base, "OpenAI-compatible server"))
    for prefix, base, what in servers:
        for ident in server_models(base):
            # not ``local``: "local" means the built-in backend with routing capture
            out.append(ModelChoice(f"{prefix}/{ident}", f"{ident} ({what} at {base})", False,
                                   True, f"served at {base}"))  # fmt: skip
    for provider, present in s.provider_keys_present().items():
        if present:
            for model in registry_models(provider):
                out.append(ModelChoice(model, model, False, True, "key configured"))
        else:
            var = KEY_VARIABLES.get(provider, f"{provider.upper()}_API_KEY")
            out.append(ModelChoice(f"{provider}/…", f"{provider} models", False, False,
                                   f"set {var} to use it"))  # fmt: skip
    seen: set[str] = set()
    unique = []
    for choice in out:
        if choice.model not in seen:
            seen.add(choice.model)
            unique.append(choice)
    return unique
