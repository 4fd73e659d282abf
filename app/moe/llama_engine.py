"""The llama.cpp engine: any GGUF file, routing read from the compute graph via ``cb_eval``.

For MoE architectures llama.cpp names the selected expert ids ``ffn_moe_topk-<layer>`` and the
gate weights ``ffn_moe_weights[_softmax|_norm|_scaled]-<layer>`` (the last one built is what
multiplies the expert outputs). The eval callback asks only for those exact names, so the
scheduler keeps computing everything else in large chunks. Dense models are MoEfied in
observer mode (see ``moefication``): the callback reads the FFN activation feeding
``ffn_down`` instead.

The prompt is evaluated with outputs for every token because llama.cpp drops the rows it does
not output before the last layer's FFN; that costs the output projection once per prompt token
and gives the last layer's routing for the whole prompt.
"""

from __future__ import annotations

import ctypes
import struct
from pathlib import Path

import numpy as np
from llama_cpp import _logger as _llama_logger
from llama_cpp import llama_cpp as L

from app.config import get_settings
from app.moe import graph_filter, moefication
from app.moe.engine import ModelInfo, MoEEngine, default_threads
from app.moe.errors import EngineUnavailable, MoEError

# names of the tensors read from the graph
_IDS_NAME = "ffn_moe_topk"
_WEIGHT_NAMES = (
    "ffn_moe_weights",
    "ffn_moe_weights_softmax",
    "ffn_moe_weights_norm",
    "ffn_moe_weights_scaled",
)
# the activation that feeds ffn_down in a dense FFN, per activation kind (the last one of a
# layer that has the FFN width is used)
_DENSE_ACT_NAMES = (
    "ffn_silu",
    "ffn_gelu",
    "ffn_relu",
    "ffn_swiglu",
    "ffn_geglu",
    "ffn_reglu",
    "ffn_swiglu_oai",
    "ffn_gate_par",
)
_IDS, _WEIGHTS, _ACT, _PROBE = range(4)
_GGML_TYPE_F32 = 0
_GGML_DTYPES = {0: np.dtype(np.float32), 1: np.dtype(np.float16), 26: np.dtype(np.int32)}


class _GgmlTensor(ctypes.Structure):
    """``struct ggml_tensor`` of ggml.h (GGML_MAX_DIMS 4, MAX_OP_PARAMS 64, MAX_SRC 10)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("buffer", ctypes.c_void_p),
        ("ne", ctypes.c_int64 * 4),
        ("nb", ctypes.c_size_t * 4),
        ("op", ctypes.c_int),
        ("op_params", ctypes.c_int32 * 16),
        ("flags", ctypes.c_int32),
        ("src", ctypes.c_void_p * 10),
        ("view_src", ctypes.c_void_p),
        ("view_offs", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
        ("name", ctypes.c_char * 64),
        ("extra", ctypes.c_void_p),
        ("padding", ctypes.c_char * 8),
    ]


_NAME_OFFSET = _GgmlTensor.name.offset
_HEADER = struct.Struct(f"<i{_GgmlTensor.ne.offset - 4}x4q4Q")
_DATA = struct.Struct("<Q")


def _tensor_array(address: int) -> np.ndarray:
    """A copy of a host tensor's data as (ne3, ne2, ne1, ne0), honouring view strides.

    Reads the struct with one ``string_at`` (this runs for every captured tensor, in the
    compute thread, so it avoids building ctypes objects field by field).
    """
    header = ctypes.string_at(address, _GgmlTensor.data.offset + 8)
    type_, ne0, ne1, ne2, ne3, nb0, nb1, nb2, nb3 = _HEADER.unpack_from(header)
    (data,) = _DATA.unpack_from(header, _GgmlTensor.data.offset)
    dtype = _GGML_DTYPES.get(type_)
    if dtype is None:
        raise MoEError(f"cannot read a ggml tensor of type {type_}")
    shape = (ne3, ne2, ne1, ne0)
    if nb0 == dtype.itemsize and nb1 == nb0 * ne0 and nb2 == nb1 * ne1 and nb3 == nb2 * ne2:
        return np.frombuffer(ctypes.string_at(data, nb3 * ne3), dtype).reshape(shape)
    strides = (nb3, nb2, nb1, nb0)
    span = sum((n - 1) * st for n, st in zip(shape, strides, strict=True)) + dtype.itemsize
    buffer = (ctypes.c_char * span).from_address(data)
    return np.ndarray(shape, dtype, buffer=buffer, strides=strides).copy()


def _split_name(name: str) -> tuple[str, int]:
    base, _, layer = name.rpartition("-")
    return (base, int(layer)) if layer.isdigit() else (name, -1)


class LlamaCppEngine(MoEEngine):
    """A GGUF model run by llama.cpp, reporting per-token routing of every MoE layer."""

    def __init__(
        self,
        path: Path,
        *,
        name: str | None = None,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        capture_routing: bool = True,
        moe_groups: int = 8,
        moe_top_k: int = 2,
        cache_dir: Path | None = None,
        native_filter: bool = True,
        reference_precision: bool = False,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.capture_routing = capture_routing
        _llama_logger.set_verbose(False)
        L.llama_backend_init()
        model_params = L.llama_model_default_params()
        model_params.n_gpu_layers = 0
        # weight repacking buffers crash multi-token prompts on some quantised files
        model_params.use_extra_bufts = False
        self._model = L.llama_model_load_from_file(str(self.path).encode(), model_params)
        if not self._model:
            raise EngineUnavailable(f"llama.cpp could not load {self.path}")
        self._vocab = L.llama_model_get_vocab(self._model)
        self._n_vocab = L.llama_vocab_n_tokens(self._vocab)
        self.architecture = self._meta("general.architecture") or "unknown"
        train_ctx = L.llama_model_n_ctx_train(self._model)
        n_ctx = min(train_ctx, 8192) if n_ctx is None else n_ctx
        threads = n_threads or default_threads()
        self._n_batch = min(256, n_ctx)

        self._wanted: dict[bytes, tuple[int, int]] = {}
        self._seen: list[tuple[str, int, int]] = []
        self._chunks: dict[int, list[list[np.ndarray | None]]] = {}
        self._cb_error: BaseException | None = None
        self._cache_dir = Path(cache_dir or get_settings().data_dir / "moe")
        native = graph_filter.load_filter(self._cache_dir / "native") if native_filter else None
        self._filter: graph_filter.FilterState | None = None
        if native is not None:
            # C answers the per-node "do you want this tensor?"; Python only receives data
            self._py_cb = graph_filter.EvalCallback(self._make_callback(ask_in_python=False))
            self._filter = graph_filter.FilterState(name_offset=_NAME_OFFSET, on_data=self._py_cb)
            self._cb = ctypes.cast(native, L.ggml_backend_sched_eval_callback)
        else:
            self._cb = L.ggml_backend_sched_eval_callback(self._make_callback(ask_in_python=True))

        ctx_params = L.llama_context_default_params()
        ctx_params.n_ctx = n_ctx
        ctx_params.n_batch = self._n_batch
        ctx_params.n_ubatch = self._n_batch
        ctx_params.n_threads = threads
        ctx_params.n_threads_batch = threads
        ctx_params.no_perf = True
        if reference_precision:
            # float32 K/V cache and no flash attention (its CPU kernel rounds Q to float16): what
            # comparisons with a float32 reference need; the defaults are faster
            ctx_params.type_k = ctx_params.type_v = _GGML_TYPE_F32
            ctx_params.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_DISABLED
        ctx_params.cb_eval = self._cb
        if self._filter is not None:
            ctx_params.cb_eval_user_data = ctypes.addressof(self._filter)
        self._ctx = L.llama_init_from_model(self._model, ctx_params)
        if not self._ctx:
            raise EngineUnavailable(f"llama.cpp could not create a context for {self.path}")
        self._batch = L.llama_batch_init(self._n_batch, 0, 1)
        self._pos = 0
        self._chat_template = self._template()

        self._probe()
        self._moefied = not self._moe_layers_seen()
        self._top_k = 0
        if self._moefied:
            self._setup_moefication(moe_groups, moe_top_k)
        else:
            self._setup_moe()
        if not capture_routing:
            # the baseline for overhead measurements: a context without any eval callback
            L.llama_free(self._ctx)
            ctx_params.cb_eval = L.ggml_backend_sched_eval_callback()
            self._ctx = L.llama_init_from_model(self._model, ctx_params)
        self.info = self._model_info(name or self.path.stem, L.llama_n_ctx(self._ctx))

    # --- graph callback ---------------------------------------------------------------------
    def _make_callback(self, *, ask_in_python: bool):
        """The eval callback: a closure over plain locals, since it may run for every node.

        Ask phase (only without the C filter): is this exact tensor name wanted? Views named
        "... (reshaped)" never are. Data phase: hand the tensor to ``_on_tensor``. It returns
        True after data, because False would stop the scheduler from computing the rest of the
        graph; errors are kept and raised once ``llama_decode`` returns.
        """
        wanted = self._wanted
        string_at = ctypes.string_at
        offset = _NAME_OFFSET
        on_tensor = self._on_tensor

        def callback(tensor: int, ask: bool, _user_data: int | None) -> bool:
            if ask and ask_in_python:
                return string_at(tensor + offset) in wanted
            try:
                entry = wanted.get(string_at(tensor + offset))
                if entry is not None:
                    on_tensor(entry[0], entry[1], tensor)
            except BaseException as exc:  # noqa: BLE001 - re-raised after llama_decode returns
                self._cb_error = exc
            return True

        return callback

    def _set_wanted(self, entries: dict[bytes, tuple[int, int]]) -> None:
        """Replace the requested tensors (in place: the callback closure holds the dict)."""
        self._wanted.clear()
        self._wanted.update(entries)
        if self._filter is not None:
            self._filter.set_names(list(entries))

    def _on_tensor(self, kind: int, slot: int, tensor: int) -> None:
        if kind == _PROBE:
            ne0 = ctypes.c_int64.from_address(tensor + _GgmlTensor.ne.offset).value
            name = ctypes.string_at(tensor + _NAME_OFFSET).decode()
            self._seen.append((*_split_name(name), ne0))
            return
        array = _tensor_array(tensor)
        chunks = self._chunks[slot]
        if kind == _IDS:
            chunks.append([array.reshape(-1, self._top_k), None])
        elif kind == _WEIGHTS:
            chunks[-1][1] = array.reshape(-1, self._top_k)
        else:  # dense FFN activations: grouped once per decode in _take_routing
            chunks.append([array.reshape(-1, array.shape[-1]), None])

    def _take_routing(self, n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
        """The routing captured since the last call, as (tokens, layers, k) arrays."""
        layers = len(self._chunks)
        if not self.capture_routing or layers == 0:
            return np.zeros((n_tokens, 0, 0), np.int64), np.zeros((n_tokens, 0, 0), np.float32)
        first = [np.concatenate([c[0] for c in self._chunks[s]]) for s in range(layers)]
        if any(a.shape[0] != n_tokens for a in first):
            raise MoEError(f"captured routing for {first[0].shape[0]} of {n_tokens} tokens")
        if self._moefied:
            acts = np.abs(np.stack(first))  # (L, T, n_ff)
            ids, weights = moefication.top_groups_batched(acts, self._membership, self._top_k)
        else:
            ids = np.stack(first, 1).astype(np.int64)
            weights = np.stack(
                [np.concatenate([c[1] for c in self._chunks[s]]) for s in range(layers)], 1
            ).astype(np.float32)
        for s in range(layers):
            self._chunks[s] = []
        return ids, weights

    # --- set-up -----------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = L.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", "replace") if n >= 0 else None

    def _probe(self) -> None:
        """Decode one token with every candidate tensor requested, to learn the graph's names."""
        bases = (_IDS_NAME, *_WEIGHT_NAMES, *_DENSE_ACT_NAMES)
        self._set_wanted(
            {
                f"{base}-{layer}".encode(): (_PROBE, layer)
                for layer in range(L.llama_model_n_layer(self._model))
                for base in bases
            }
        )
        token = L.llama_vocab_bos(self._vocab)
        self._decode([token if token >= 0 else 0], all_logits=False)
        self._set_wanted({})
        if not self._seen:
            raise EngineUnavailable(
                "no FFN tensors were seen in the llama.cpp graph: either the architecture has "
                "none of the known FFN names or this llama.cpp build's ggml_tensor layout "
                "differs from the one app/moe reads (built for llama-cpp-python 0.3.36)"
            )
        self._reset()

    def _moe_layers_seen(self) -> list[int]:
        return sorted({layer for base, layer, _ in self._seen if base == _IDS_NAME})

    def _setup_moe(self) -> None:
        self._moe_layers = self._moe_layers_seen()
        widths = {ne0 for base, _, ne0 in self._seen if base == _IDS_NAME}
        self._top_k = int(widths.pop())
        self._expert_count = int(self._meta(f"{self.architecture}.expert_count") or 0)
        wanted = {}
        for slot, layer in enumerate(self._moe_layers):
            wanted[f"{_IDS_NAME}-{layer}".encode()] = (_IDS, slot)
            names = [b for b, li, _ in self._seen if li == layer and b in _WEIGHT_NAMES]
            if not names:
                raise EngineUnavailable(f"no gate weights found for layer {layer}")
            wanted[f"{names[-1]}-{layer}".encode()] = (_WEIGHTS, slot)
            self._chunks[slot] = []
        self._set_wanted(wanted)

    def _setup_moefication(self, groups: int, top_k: int) -> None:
        n_ff = int(self._meta(f"{self.architecture}.feed_forward_length") or 0)
        act_name: dict[int, str] = {}
        for base, layer, ne0 in self._seen:
            if base in _DENSE_ACT_NAMES and layer >= 0 and (ne0 == n_ff or not n_ff):
                act_name[layer] = base
        if not act_name:
            raise EngineUnavailable(f"no FFN activations found in the graph of {self.path.name}")
        self._moe_layers = sorted(act_name)
        self._expert_count = groups
        self._top_k = top_k
        for slot in range(len(self._moe_layers)):
            self._chunks[slot] = []
        self._set_wanted(
            {
                f"{act_name[layer]}-{layer}".encode(): (_ACT, slot)
                for slot, layer in enumerate(self._moe_layers)
            }
        )
        partition, self.partition_path = moefication.load_or_build_partition(
            self.path, groups, self._cache_dir, self._calibrate
        )
        self._membership = np.stack([moefication.group_membership(r, groups) for r in partition])

    def _calibrate(self, text: str) -> list[np.ndarray]:
        ids = self._add_bos(self._tokenize(text))
        self._decode(ids, all_logits=True)
        self._reset()
        acts = [np.concatenate([c[0] for c in self._chunks[s]]) for s in range(len(self._chunks))]
        for s in self._chunks:
            self._chunks[s] = []
        return acts

    def _model_info(self, name: str, n_ctx: int) -> ModelInfo:
        layers, experts, k = len(self._moe_layers), self._expert_count, self._top_k
        title = f"{self.path.stem} ({self.architecture})"
        if self._moefied:
            description = (
                f"{title} is a dense model. Its 'experts' are MoEfied "
                f"neuron groups, not trained experts: each of its {layers} FFN layers is split "
                f"into {experts} groups of co-activating neurons, and each token reports the "
                f"{k} groups with the largest activation mass. The FFN is computed in full, so "
                "the replies are exactly the dense model's."
            )
        else:
            description = (
                f"{title} is a mixture-of-experts model with {experts} "
                f"trained experts in each of its {layers} MoE layers, {k} routed per token."
            )
        return ModelInfo(
            name=name,
            engine="llama.cpp",
            layer_count=layers,
            expert_count=experts,
            top_k=k,
            moefied=self._moefied,
            context_length=n_ctx,
            description=description,
            architecture=self.architecture,
            path=str(self.path),
            moe_layers=tuple(self._moe_layers),
        )

    def _template(self) -> str:
        raw = L.llama_model_chat_template(self._model, None)
        if raw:
            return raw.decode("utf-8", "replace")
        return (  # ChatML, the most common template, when the file has none
            "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
            "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
        )

    # --- model operations -------------------------------------------------------------------
    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return (L.llama_vocab_get_text(self._vocab, token) or b"").decode("utf-8", "replace")

    def _encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        from app.moe.chat_template import render_chat

        text = render_chat(
            self._chat_template,
            messages,
            bos_token=self._token_text(L.llama_vocab_bos(self._vocab)),
            eos_token=self._token_text(L.llama_vocab_eos(self._vocab)),
        )
        return self._add_bos(self._tokenize(text, special=True))

    def _add_bos(self, ids: list[int]) -> list[int]:
        bos = L.llama_vocab_bos(self._vocab)
        if L.llama_vocab_get_add_bos(self._vocab) and bos >= 0 and (not ids or ids[0] != bos):
            return [bos, *ids]
        return ids

    def _tokenize(self, text: str, special: bool = False) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        buf = (L.llama_token * capacity)()
        n = L.llama_tokenize(self._vocab, data, len(data), buf, capacity, False, special)
        if n < 0:
            buf = (L.llama_token * -n)()
            n = L.llama_tokenize(self._vocab, data, len(data), buf, -n, False, special)
        return list(buf[:n])

    def _piece(self, token_id: int, special: bool = False) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = L.llama_token_to_piece(self._vocab, token_id, buf, 64, 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = L.llama_token_to_piece(self._vocab, token_id, buf, -n, 0, special)
        return buf.raw[:n]

    def _is_end(self, token_id: int) -> bool:
        return bool(L.llama_vocab_is_eog(self._vocab, token_id))

    def _reset(self) -> None:
        L.llama_memory_clear(L.llama_get_memory(self._ctx), True)
        self._pos = 0

    def _decode(self, ids: list[int], *, all_logits: bool) -> np.ndarray:
        batch = self._batch
        for start in range(0, len(ids), self._n_batch):
            chunk = ids[start : start + self._n_batch]
            batch.n_tokens = len(chunk)
            last = len(chunk) - 1
            for i, token in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = self._pos + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = all_logits or i == last
            rc = L.llama_decode(self._ctx, batch)
            if self._cb_error is not None:
                error, self._cb_error = self._cb_error, None
                raise MoEError(f"routing capture failed: {error}") from error
            if rc != 0:
                raise MoEError(f"llama_decode failed with status {rc}")
            self._pos += len(chunk)
        logits = L.llama_get_logits_ith(self._ctx, -1)
        return np.ctypeslib.as_array(logits, shape=(self._n_vocab,)).copy()

    def _prefill(self, ids: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._reset()
        logits = self._decode(ids, all_logits=self.capture_routing)
        experts, weights = self._take_routing(len(ids))
        return logits, experts, weights

    def _step(self, token_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        logits = self._decode([token_id], all_logits=True)
        experts, weights = self._take_routing(1)
        return logits, experts[0], weights[0]

    def _release(self) -> None:
        L.llama_batch_free(self._batch)
        L.llama_free(self._ctx)
        L.llama_model_free(self._model)
        self._ctx = None

    def __del__(self) -> None:  # pragma: no cover - depends on garbage collection
        try:
            self.close()
        except Exception:  # noqa: BLE001 - half-built engine or interpreter shutdown
            pass
