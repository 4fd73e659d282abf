"""Routing analytics: pure functions over decoded traces (see ``app.moe.trace``).

Conventions: ``experts`` is an int array (T tokens, L layers, K = top_k) of expert ids,
``weights`` the matching gate weights. Functions that describe one layer take its (T, K) slice
(``experts[:, layer, :]``); the ``*_by_layer`` helpers apply them to every layer.
Entropies are in bits.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np


def expert_load(experts: np.ndarray, expert_count: int) -> np.ndarray:
    """(L, E) how many tokens selected each expert, per layer."""
    t, n_layers, k = experts.shape
    load = np.zeros((n_layers, expert_count), dtype=np.int64)
    for layer in range(n_layers):
        load[layer] = np.bincount(experts[:, layer, :].ravel(), minlength=expert_count)
    return load


@dataclass(frozen=True)
class LoadImbalance:
    """Per layer: max load / mean load (1.0 = perfectly even) and coefficient of variation."""

    max_over_mean: np.ndarray
    cv: np.ndarray


def load_imbalance(load: np.ndarray) -> LoadImbalance:
    """Imbalance of an (L, E) load matrix; CV is the population std over the mean."""
    load = np.asarray(load, dtype=np.float64)
    mean = load.mean(axis=1)
    safe = np.where(mean > 0, mean, 1.0)
    return LoadImbalance(
        max_over_mean=np.where(mean > 0, load.max(axis=1) / safe, 0.0),
        cv=np.where(mean > 0, load.std(axis=1) / safe, 0.0),
    )


def _entropy_bits(p: np.ndarray, axis: int = -1) -> np.ndarray:
    total = p.sum(axis=axis, keepdims=True)
    q = np.divide(p, total, out=np.zeros_like(p, dtype=np.float64), where=total > 0)
    logs = np.log2(q, out=np.zeros_like(q), where=q > 0)
    return -(q * logs).sum(axis=axis)


def routing_entropy(experts: np.ndarray, expert_count: int) -> np.ndarray:
    """(L,) entropy of each layer's expert-load distribution; log2(E) is perfectly even."""
    return _entropy_bits(expert_load(experts, expert_count).astype(np.float64))


def gate_entropy(weights: np.ndarray) -> np.ndarray:
    """(T, L) entropy of each token's top-k gate weights (renormalised to sum to 1)."""
    return _entropy_bits(np.clip(np.asarray(weights, dtype=np.float64), 0.0, None))


def coactivation(experts: np.ndarray, expert_count: int, layer: int | None = None) -> np.ndarray:
    """(E, E) how often two experts were selected by the same token in the same layer.

    Off the diagonal: number of (token, layer) pairs that selected both i and j; on the diagonal:
    the expert's load. ``layer=None`` sums over all layers.
    """
    layers = range(experts.shape[1]) if layer is None else [layer]
    matrix = np.zeros((expert_count, expert_count), dtype=np.int64)
    for li in layers:
        onehot = np.zeros((experts.shape[0], expert_count), dtype=np.int64)
        np.put_along_axis(onehot, experts[:, li, :], 1, axis=1)
        matrix += onehot.T @ onehot
    return matrix


def top_expert_map(experts: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Token × layer heatmap data: the highest-weight expert of each cell and its weight."""
    best = np.argmax(weights, axis=2)[..., None]
    return (
        np.take_along_axis(experts, best, axis=2)[..., 0],
        np.take_along_axis(weights, best, axis=2)[..., 0],
    )


def expert_weight_map(experts: np.ndarray, weights: np.ndarray, expert: int) -> np.ndarray:
    """Token × layer heatmap data: the gate weight given to ``expert`` (0 where not selected)."""
    return np.where(experts == expert, weights, 0.0).sum(axis=2)


def segment_counts(layer_experts: np.ndarray, segment_length: int, expert_count: int) -> np.ndarray:
    """(S, E) per sliding segment of ``segment_length`` consecutive tokens, how many of its
    tokens selected each expert; S = T - segment_length + 1 (every start position)."""
    t = layer_experts.shape[0]
    if not 1 <= segment_length <= t:
        raise ValueError(f"segment length must be within 1..{t}, got {segment_length}")
    onehot = np.zeros((t, expert_count), dtype=np.int64)
    np.put_along_axis(onehot, layer_experts, 1, axis=1)
    csum = np.concatenate([np.zeros((1, expert_count), np.int64), np.cumsum(onehot, axis=0)])
    return csum[segment_length:] - csum[: t - segment_length + 1]


def segment_cache_hit_rate(
    layer_experts: np.ndarray, segment_length: int, cache_size: int, expert_count: int
) -> float:
    """SCH(L, c): per segment, the activations covered by its c most-used experts over k·L,
    averaged over all segments ("Not All Models Suit Expert Offloading", 2025)."""
    k = layer_experts.shape[1]
    counts = segment_counts(layer_experts, segment_length, expert_count)
    top = -np.sort(-counts, axis=1)[:, :cache_size]
    return float((top.sum(axis=1) / (k * segment_length)).mean())


def segment_routing_performance(
    layer_experts: np.ndarray, segment_length: int, expert_count: int
) -> float:
    """SRP(L): for each threshold t in 1..L predict that the experts used at least t times in a
    segment serve every token of it; pool matches, predictions (#predicted·L) and actual (k·L)
    over all segments; F1(t) = 2·matches / (predictions + actual); return the best F1."""
    k = layer_experts.shape[1]
    counts = segment_counts(layer_experts, segment_length, expert_count)
    actual = counts.shape[0] * k * segment_length
    best = 0.0
    for threshold in range(1, segment_length + 1):
        chosen = counts >= threshold
        matches = counts[chosen].sum()
        predictions = chosen.sum() * segment_length
        best = max(best, 2.0 * matches / (predictions + actual))
    return float(best)


def sch_by_layer(experts: np.ndarray, segment_length: int, cache_size: int, expert_count: int):
    """(L,) SCH(L, c) of every layer."""
    return np.array(
        [
            segment_cache_hit_rate(experts[:, li, :], segment_length, cache_size, expert_count)
            for li in range(experts.shape[1])
        ]
    )


def srp_by_layer(experts: np.ndarray, segment_length: int, expert_count: int) -> np.ndarray:
    """(L,) SRP(L) of every layer."""
    return np.array(
        [
            segment_routing_performance(experts[:, li, :], segment_length, expert_count)
            for li in range(experts.shape[1])
        ]
    )


def lru_hit_rate(layer_experts: np.ndarray, cache_size: int) -> float:
    """Hit rate of an LRU cache of ``cache_size`` experts replayed over one layer's trace.

    Tokens are replayed in order and each token's experts in their stored order; every access
    counts (cold misses included); a hit refreshes the expert, a miss loads it and evicts the
    least recently used one when the cache is full.
    """
    if cache_size < 1:
        raise ValueError("cache size must be at least 1")
    cache: OrderedDict[int, None] = OrderedDict()
    hits = 0
    for token_experts in layer_experts.tolist():
        for expert in token_experts:
            if expert in cache:
                hits += 1
                cache.move_to_end(expert)
            else:
                cache[expert] = None
                if len(cache) > cache_size:
                    cache.popitem(last=False)
    return hits / layer_experts.size if layer_experts.size else 0.0


def lru_hit_rate_by_layer(experts: np.ndarray, cache_size: int) -> np.ndarray:
    """(L,) LRU hit rate of every layer, one cache per layer."""
    return np.array([lru_hit_rate(experts[:, li, :], cache_size) for li in range(experts.shape[1])])


@dataclass(frozen=True)
class Specialization:
    """nPMI of every (token text, expert) pair of one layer; -1 where the pair never occurs."""

    vocabulary: list[str]
    npmi: np.ndarray  # (V, E)
    pair_counts: np.ndarray  # (V, E)

    def top_tokens(self, expert: int, n: int = 10, min_count: int = 1) -> list[tuple[str, float]]:
        """The tokens ``expert`` prefers most, by nPMI, among pairs seen ``min_count`` times."""
        column = self.npmi[:, expert]
        eligible = np.flatnonzero(self.pair_counts[:, expert] >= min_count)
        order = eligible[np.lexsort((eligible, -column[eligible]))][:n]
        return [(self.vocabulary[i], float(column[i])) for i in order]


def token_expert_npmi(tokens: list[str], layer_experts: np.ndarray, expert_count: int):
    """Token–expert specialization by normalized PMI (as in RICE) for one layer.

    Every (token occurrence, selected expert) is one observed pair, N = T·K pairs in all;
    p(t, e) = c(t, e)/N, p(t) = Σ_e c(t, e)/N, p(e) = Σ_t c(t, e)/N and
    nPMI = log(p(t, e) / (p(t) p(e))) / −log p(t, e), in −1…1 (1 when p(t, e) = 1).
    """
    if len(tokens) != layer_experts.shape[0]:
        raise ValueError("one token text per trace row is needed")
    vocabulary = sorted(set(tokens))
    index = {tok: i for i, tok in enumerate(vocabulary)}
    counts = np.zeros((len(vocabulary), expert_count), dtype=np.int64)
    rows = np.repeat([index[t] for t in tokens], layer_experts.shape[1])
    np.add.at(counts, (rows, layer_experts.ravel()), 1)
    n = counts.sum()
    p_te = counts / n
    p_t = counts.sum(axis=1, keepdims=True) / n
    p_e = counts.sum(axis=0, keepdims=True) / n
    seen = counts > 0
    npmi = np.full(counts.shape, -1.0)
    pmi = np.log(p_te[seen] / (p_t * p_e)[seen])
    denom = -np.log(p_te[seen])
    npmi[seen] = np.where(denom > 0, pmi / np.where(denom > 0, denom, 1.0), 1.0)
    return Specialization(vocabulary=vocabulary, npmi=npmi, pair_counts=counts)
