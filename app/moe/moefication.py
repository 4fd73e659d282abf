"""MoEfication in observer mode (Zhang et al., 2022): a dense FFN's neurons seen as experts.

Each layer's FFN neurons are split into E equal groups by balanced k-means over their
co-activation profiles on a fixed calibration text: a neuron's profile is its |activation| on
every calibration token, L2-normalised, so neurons that fire on the same tokens fall together.
The FFN is still computed in full (output unchanged); per token, the k groups with the largest
activation mass (sum of |activation| of their neurons) are reported as its "experts", with the
share of the layer's total mass each carries as the "weight" (so weights sum to at most 1).

The partition is built once per model file and cached under ``<data_dir>/moe``; building it is
deterministic (fixed text, seeded k-means++, stable tie-breaking), so a rebuild gives the same
groups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

ALGORITHM_VERSION = "balanced-kmeans-coact-2"
SEED = 20220601

CALIBRATION_TEXT = """\
Performance work starts with a measurement. Before changing a line, run the function on a
realistic workload, record the time, and keep the output so every later version can be checked
against it. A faster function that returns a different answer is not faster; it is wrong.

def moving_average(values, window):
    result = []
    for i in range(len(values) - window + 1):
        total = 0
        for j in range(i, i + window):
            total += values[j]
        result.append(total / window)
    return result

The inner loop recomputes a sum that differs from the previous one by two elements. Keeping a
running total turns the quadratic loop into a linear one:

def moving_average_fast(values, window):
    total = sum(values[:window])
    result = [total / window]
    for i in range(window, len(values)):
        total += values[i] - values[i - window]
        result.append(total / window)
    return result

With numpy the same idea is a cumulative sum: c = np.cumsum(np.insert(a, 0, 0.0)); then
(c[window:] - c[:-window]) / window. For short inputs the conversion to an array can cost more
than it saves, so measure both on the sizes that matter. Dictionaries beat lists for membership
tests, sets remove duplicates in linear time, and string joins avoid quadratic concatenation.
The weather was mild in Lisbon last spring; the trams climbed the hills slowly while tourists
photographed the river. In 1969 the first humans walked on the Moon, 384,400 km from Earth.
Bonjour, comment allez-vous ? Très bien, merci. 1 + 2 = 3, 7 * 8 = 56, sqrt(2) ≈ 1.41421.
SELECT name, COUNT(*) FROM orders GROUP BY name ORDER BY 2 DESC LIMIT 10;
for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }
User: Why is my recursive fibonacci slow? Assistant: It recomputes the same values many times;
memoize it with functools.lru_cache or iterate with two variables.
"""


def partition_key(model_path: Path, groups: int) -> str:
    """Cache key: the model file (size, head and tail), the text, E and the algorithm."""
    h = hashlib.sha256()
    size = model_path.stat().st_size
    h.update(f"{size}:{groups}:{ALGORITHM_VERSION}:{SEED}".encode())
    with model_path.open("rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        h.update(f.read(1 << 20))
    h.update(CALIBRATION_TEXT.encode())
    return h.hexdigest()[:16]


def balanced_kmeans(
    features: np.ndarray, clusters: int, *, seed: int = SEED, iterations: int = 30
) -> np.ndarray:
    """Cluster the rows of ``features`` into ``clusters`` groups of equal size (±1) by cosine
    similarity; returns the group of each row. Deterministic for a given seed."""
    n = features.shape[0]
    x = np.asarray(features, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    capacity = np.full(clusters, n // clusters)
    capacity[: n % clusters] += 1
    rng = np.random.default_rng(seed)
    # k-means++ initialisation on cosine distance
    centroids = [x[rng.integers(n)]]
    for _ in range(1, clusters):
        dist = 1.0 - np.max(x @ np.array(centroids).T, axis=1)
        dist = np.clip(dist, 0.0, None)
        p = dist / dist.sum() if dist.sum() > 0 else np.full(n, 1.0 / n)
        centroids.append(x[rng.choice(n, p=p)])
    c = np.array(centroids)
    assign = np.full(n, -1)
    for _ in range(iterations):
        new = _balanced_assign(x @ c.T, capacity)
        if np.array_equal(new, assign):
            break
        assign = new
        for j in range(clusters):
            mean = x[assign == j].mean(axis=0)
            c[j] = mean / max(np.linalg.norm(mean), 1e-12)
    return assign


def _balanced_assign(sim: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Give every row a cluster, respecting capacities: rows propose to their most similar
    cluster that still has room; a cluster keeps its most similar proposers (ties: lower row
    index) up to its room; the rest propose again. At most E + 1 rounds, all vectorised."""
    n, clusters = sim.shape
    assign = np.full(n, -1)
    room = capacity.copy()
    while (free := np.flatnonzero(assign < 0)).size:
        masked = np.where(room > 0, sim[free], -np.inf)
        choice = np.argmax(masked, axis=1)
        for j in range(clusters):
            proposers = free[choice == j]
            if proposers.size and room[j] > 0:
                keep = proposers[np.lexsort((proposers, -sim[proposers, j]))][: room[j]]
                assign[keep] = j
                room[j] -= keep.size
    return assign


def build_partition(activations: list[np.ndarray], groups: int) -> np.ndarray:
    """(layers, n_ff) group of every FFN neuron, from per-layer (tokens, n_ff) activations."""
    return np.stack([balanced_kmeans(np.abs(a).T, groups) for a in activations]).astype(np.int16)


def load_or_build_partition(
    model_path: Path,
    groups: int,
    cache_dir: Path,
    calibrate: Callable[[str], list[np.ndarray]],
) -> tuple[np.ndarray, Path]:
    """The cached partition of ``model_path``, building (and caching) it on first use.

    ``calibrate(text)`` returns each FFN layer's (tokens, n_ff) activations on ``text``.
    """
    path = cache_dir / f"{model_path.stem}-E{groups}-{partition_key(model_path, groups)}.npz"
    if path.is_file():
        with np.load(path) as data:
            return data["groups"], path
    partition = build_partition(calibrate(CALIBRATION_TEXT), groups)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, groups=partition)
    tmp.replace(path)
    return partition, path


def group_membership(partition_row: np.ndarray, groups: int) -> np.ndarray:
    """(n_ff, E) one-hot float32 matrix so that |act| @ M gives each group's mass."""
    m = np.zeros((partition_row.size, groups), dtype=np.float32)
    m[np.arange(partition_row.size), partition_row] = 1.0
    return m


def top_groups_batched(
    abs_acts: np.ndarray, membership: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """All layers at once: (L, T, n_ff) |activations| and (L, n_ff, E) membership give
    (T, L, k) group ids and mass shares."""
    mass = np.matmul(abs_acts, membership).transpose(1, 0, 2)  # (T, L, E)
    ids = np.argsort(-mass, axis=2, kind="stable")[:, :, :k]
    total = np.maximum(mass.sum(axis=2, keepdims=True), 1e-30)
    return ids, (np.take_along_axis(mass, ids, axis=2) / total).astype(np.float32)


def top_groups(act: np.ndarray, membership: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per token of (T, n_ff) activations: the k groups of largest mass and their mass share."""
    mass = np.abs(act) @ membership  # (T, E)
    ids = np.argsort(-mass, axis=1, kind="stable")[:, :k]
    total = np.maximum(mass.sum(axis=1, keepdims=True), 1e-30)
    return ids, np.take_along_axis(mass, ids, axis=1) / total
