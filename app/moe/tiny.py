"""A tiny Qwen3-MoE checkpoint built locally (no hub): the same seeded random model written
both as a Hugging Face directory and as a float32 GGUF, so the two engines can be compared.

Used by the cross-engine test and the capture-overhead benchmark. The tokenizer is a small
byte-level BPE trained on a fixed text; the GGUF carries the same vocabulary, merges and
ChatML template, with the GPT-2 pre-tokenizer both libraries implement.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.moe.moefication import CALIBRATION_TEXT

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@dataclass(frozen=True)
class TinyMoE:
    hf_dir: Path
    gguf_path: Path
    layers: int
    experts: int
    top_k: int


def _train_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=1,
        show_progress=False,
    )
    corpus = CALIBRATION_TEXT.splitlines() + ["user", "assistant", "system", "Hello, world!"]
    tok.train_from_iterator(corpus, trainer=trainer)
    return tok


def build_tiny_moe(
    directory: Path,
    *,
    layers: int = 3,
    experts: int = 8,
    top_k: int = 2,
    hidden: int = 64,
    moe_ff: int = 32,
    vocab_size: int = 512,
    seed: int = 0,
    init_std: float = 0.25,
) -> TinyMoE:
    """Write ``directory/hf`` and ``directory/tiny-qwen3moe.gguf``; returns their paths.

    ``init_std`` is large on purpose: with the usual 0.02 the router probabilities of a random
    model are nearly uniform and near-ties would make the two engines' choices a coin toss.
    """
    import json

    import gguf
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen3MoeConfig, Qwen3MoeForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    directory = Path(directory)
    hf_dir = directory / "hf"
    hf_dir.mkdir(parents=True, exist_ok=True)
    raw_tok = _train_tokenizer(vocab_size)
    vocab = raw_tok.get_vocab_size()
    ids = {t: raw_tok.token_to_id(t) for t in SPECIAL_TOKENS}
    heads, kv_heads, head_dim, ff = 4, 2, hidden // 4, moe_ff
    config = Qwen3MoeConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        moe_intermediate_size=ff,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        num_experts=experts,
        num_experts_per_tok=top_k,
        norm_topk_prob=True,
        max_position_embeddings=1024,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
    )
    model = Qwen3MoeForCausalLM(config).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                param.copy_(1.0 + 0.1 * torch.randn(param.shape, generator=gen))
            else:
                param.copy_(init_std * torch.randn(param.shape, generator=gen))
    model.save_pretrained(hf_dir)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=raw_tok,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    hf_tok.chat_template = CHATML
    hf_tok.save_pretrained(hf_dir)

    gguf_path = directory / "tiny-qwen3moe.gguf"
    w = gguf.GGUFWriter(str(gguf_path), "qwen3moe")
    w.add_name("tiny-qwen3moe")
    w.add_block_count(layers)
    w.add_context_length(config.max_position_embeddings)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(config.intermediate_size)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_freq_base(float(config.rope_parameters["rope_theta"]))
    w.add_layer_norm_rms_eps(config.rms_norm_eps)
    w.add_expert_count(experts)
    w.add_expert_used_count(top_k)
    w.add_expert_feed_forward_length(ff)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list([raw_tok.id_to_token(i) for i in range(vocab)])
    w.add_token_types(
        [
            gguf.TokenType.CONTROL if raw_tok.id_to_token(i) in ids else gguf.TokenType.NORMAL
            for i in range(vocab)
        ]
    )
    merges = json.loads(raw_tok.to_str())["model"]["merges"]
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    w.add_bos_token_id(ids["<|endoftext|>"])
    w.add_eos_token_id(ids["<|im_end|>"])
    w.add_pad_token_id(ids["<|endoftext|>"])
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML)

    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    tensors = {
        "token_embd.weight": sd["model.embed_tokens.weight"],
        "output_norm.weight": sd["model.norm.weight"],
        "output.weight": sd["lm_head.weight"],
    }
    for i in range(layers):
        p = f"model.layers.{i}."
        gate_up = sd[p + "mlp.experts.gate_up_proj"]  # (E, 2*ff, H): gate rows, then up rows
        tensors |= {
            f"blk.{i}.attn_norm.weight": sd[p + "input_layernorm.weight"],
            f"blk.{i}.attn_q.weight": sd[p + "self_attn.q_proj.weight"],
            f"blk.{i}.attn_k.weight": sd[p + "self_attn.k_proj.weight"],
            f"blk.{i}.attn_v.weight": sd[p + "self_attn.v_proj.weight"],
            f"blk.{i}.attn_output.weight": sd[p + "self_attn.o_proj.weight"],
            f"blk.{i}.attn_q_norm.weight": sd[p + "self_attn.q_norm.weight"],
            f"blk.{i}.attn_k_norm.weight": sd[p + "self_attn.k_norm.weight"],
            f"blk.{i}.ffn_norm.weight": sd[p + "post_attention_layernorm.weight"],
            f"blk.{i}.ffn_gate_inp.weight": sd[p + "mlp.gate.weight"],
            f"blk.{i}.ffn_gate_exps.weight": gate_up[:, :ff, :],
            f"blk.{i}.ffn_up_exps.weight": gate_up[:, ff:, :],
            f"blk.{i}.ffn_down_exps.weight": sd[p + "mlp.experts.down_proj"],
        }
    for name, array in tensors.items():
        w.add_tensor(name, np.ascontiguousarray(array, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return TinyMoE(hf_dir, gguf_path, layers, experts, top_k)
