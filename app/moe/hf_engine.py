"""The transformers engine: Hugging Face MoE checkpoints, routing read from the router module.

transformers 5 declares each MoE model's router class in ``_can_record_outputs["router_logits"]``
and its routers return ``(logits, top-k weights, top-k expert ids)``. One generic forward hook
on every instance of that class records the last two, as the model used them: top-k is never
recomputed from the logits (that would be wrong for biased routing such as DeepSeek-V3's).
The hook runs in the generating thread and only keeps references; arrays are built once per
forward pass.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from app.moe.engine import ModelInfo, MoEEngine, default_threads
from app.moe.errors import EngineUnavailable


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table used by byte-level BPE."""
    bs = list(range(ord("!"), ord("~") + 1))
    bs += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


_BYTE_OF_CHAR = {c: b for b, c in _bytes_to_unicode().items()}


def router_class(model: torch.nn.Module) -> type[torch.nn.Module] | None:
    """The router module class a transformers 5 model declares for ``router_logits``."""
    recorder = getattr(type(model), "_can_record_outputs", None) or {}
    recorder = recorder.get("router_logits")
    if recorder is None:
        inner = getattr(model, "model", None)
        recorder = (getattr(type(inner), "_can_record_outputs", None) or {}).get("router_logits")
    if recorder is None:
        return None
    if isinstance(recorder, type):
        return recorder
    return getattr(recorder, "target_class", None)


class TransformersEngine(MoEEngine):
    """A Hugging Face MoE checkpoint run by transformers on the CPU."""

    def __init__(
        self,
        path: Path,
        *,
        name: str | None = None,
        capture_routing: bool = True,
        n_threads: int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.capture_routing = capture_routing
        torch.set_num_threads(n_threads or default_threads())
        hf_logging.disable_progress_bar()
        try:
            self._tok = AutoTokenizer.from_pretrained(self.path)
            self._model = AutoModelForCausalLM.from_pretrained(self.path, dtype=dtype).eval()
        except (OSError, ValueError) as exc:
            raise EngineUnavailable(f"transformers could not load {self.path}: {exc}") from exc
        config = self._model.config
        cls = router_class(self._model)
        routers = [m for m in self._model.modules() if cls is not None and isinstance(m, cls)]
        if not routers:
            raise EngineUnavailable(
                f"{self.path.name} declares no MoE router; dense checkpoints are MoEfied only "
                "by the llama.cpp engine (convert it to GGUF)"
            )
        self._captured: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in routers]
        self._hooks = []
        if capture_routing:
            for slot, router in enumerate(routers):
                self._hooks.append(router.register_forward_hook(self._hook(slot)))
        self._top_k = int(
            getattr(config, "num_experts_per_tok", 0) or getattr(routers[0], "top_k", 0)
        )
        expert_count = int(
            getattr(config, "num_experts", 0)
            or getattr(config, "num_local_experts", 0)
            or getattr(config, "n_routed_experts", 0)
            or getattr(routers[0], "num_experts", 0)
        )
        eos = {self._tok.eos_token_id}
        for source in (config, getattr(self._model, "generation_config", None)):
            value = getattr(source, "eos_token_id", None)
            eos |= set(value) if isinstance(value, list) else {value}
        self._eos = {int(i) for i in eos if i is not None}
        self._special = set(self._tok.all_special_ids)
        decoder = self._tok.backend_tokenizer.decoder if self._tok.is_fast else None
        self._byte_level = type(decoder).__name__ == "ByteLevel"
        self._cache = None
        # transformers 5.x renamed ``past_key_values`` to ``cache``
        params = inspect.signature(self._model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        model_name = name or self.path.name
        arch = getattr(config, "model_type", "unknown")
        self.info = ModelInfo(
            name=model_name,
            engine="transformers",
            layer_count=len(routers),
            expert_count=expert_count,
            top_k=self._top_k,
            moefied=False,
            context_length=int(getattr(config, "max_position_embeddings", 4096)),
            description=(
                f"{model_name} ({arch}) is a mixture-of-experts model with {expert_count} "
                f"trained experts in each of its {len(routers)} MoE layers, {self._top_k} "
                "routed per token."
            ),
            architecture=arch,
            path=str(self.path),
            moe_layers=tuple(range(len(routers))),
        )

    def _hook(self, slot: int):
        captured = self._captured[slot]

        def hook(_module, _inputs, output):
            weights, ids = output[-2], output[-1]
            if weights.shape[-1] != ids.shape[-1]:  # a router returning scores for all experts
                weights = torch.gather(weights, -1, ids)
            captured.append((ids, weights))

        return hook

    def _take_routing(self, n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.capture_routing:
            return np.zeros((n_tokens, 0, 0), np.int64), np.zeros((n_tokens, 0, 0), np.float32)
        ids = torch.stack([torch.cat([c[0] for c in layer]) for layer in self._captured], 1)
        weights = torch.stack([torch.cat([c[1] for c in layer]) for layer in self._captured], 1)
        for layer in self._captured:
            layer.clear()
        return (
            ids.reshape(n_tokens, len(self._captured), -1).numpy().astype(np.int64),
            weights.reshape(n_tokens, len(self._captured), -1).float().numpy(),
        )

    # --- model operations -------------------------------------------------------------------
    def _encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        text = self._tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self._tok(text, add_special_tokens=False)["input_ids"]

    def _tokenize(self, text: str) -> list[int]:
        return self._tok(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    def _piece(self, token_id: int, special: bool = False) -> bytes:
        if token_id in self._special and not special:
            return b""
        token = self._tok.convert_ids_to_tokens(token_id)
        if not self._byte_level:
            return self._tok.decode([token_id], skip_special_tokens=not special).encode()
        try:
            return bytes(_BYTE_OF_CHAR[c] for c in token)
        except KeyError:  # an added token, stored as plain text
            return token.encode()

    def _is_end(self, token_id: int) -> bool:
        return token_id in self._eos

    @torch.inference_mode()
    def _forward(self, ids: list[int]) -> np.ndarray:
        out = self._model(
            input_ids=torch.tensor([ids]), use_cache=True, **{self._cache_arg: self._cache}
        )
        self._cache = out.get(self._cache_arg)
        return out.logits[0, -1].float().numpy()

    def _prefill(self, ids: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._cache = None
        for layer in self._captured:
            layer.clear()
        logits = self._forward(ids)
        experts, weights = self._take_routing(len(ids))
        return logits, experts, weights

    def _step(self, token_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        logits = self._forward([token_id])
        experts, weights = self._take_routing(1)
        return logits, experts[0], weights[0]

    def _release(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._cache = None
