"""Every analytics metric on one hand-built trace; the expected numbers are worked out by hand
in the comments (T=4 tokens, L=2 layers, K=2, E=4 experts)."""

import math

import numpy as np
import pytest

from app.moe import analytics as an

# layer 0: tokens select {0,1} {0,1} {0,2} {0,3}; layer 1: {2,3} for every token.
EXPERTS = np.array(
    [
        [[0, 1], [2, 3]],
        [[0, 1], [2, 3]],
        [[0, 2], [2, 3]],
        [[0, 3], [2, 3]],
    ]
)
WEIGHTS = np.array(
    [
        [[0.75, 0.25], [0.5, 0.5]],
        [[0.5, 0.5], [0.5, 0.5]],
        [[0.9, 0.1], [0.2, 0.8]],
        [[0.6, 0.4], [0.5, 0.5]],
    ]
)
E = 4


def test_expert_load_and_imbalance():
    # layer 0 loads: e0=4, e1=2, e2=1, e3=1 (mean 2) -> max/mean 2;
    #   deviations 2,0,-1,-1 -> variance 6/4 = 1.5 -> CV = sqrt(1.5)/2 = 0.6124
    # layer 1 loads: 0,0,4,4 (mean 2) -> max/mean 2; deviations ±2 -> std 2 -> CV 1
    load = an.expert_load(EXPERTS, E)
    assert load.tolist() == [[4, 2, 1, 1], [0, 0, 4, 4]]
    imb = an.load_imbalance(load)
    assert imb.max_over_mean.tolist() == [2.0, 2.0]
    assert imb.cv == pytest.approx([math.sqrt(1.5) / 2, 1.0])


def test_routing_entropy():
    # layer 0: p = 1/2, 1/4, 1/8, 1/8 -> H = .5*1 + .25*2 + 2*(.125*3) = 1.75 bits
    # layer 1: p = 0, 0, 1/2, 1/2 -> 1 bit
    assert an.routing_entropy(EXPERTS, E) == pytest.approx([1.75, 1.0])


def test_gate_entropy():
    # token 0 layer 0: (.75, .25) -> -(.75 log2 .75 + .25 log2 .25) = 0.311278 + 0.5 = 0.811278
    # token 1 layer 0: (.5, .5) -> 1 bit
    h = an.gate_entropy(WEIGHTS)
    assert h.shape == (4, 2)
    assert h[0, 0] == pytest.approx(0.811278, abs=1e-6)
    assert h[1, 0] == pytest.approx(1.0)


def test_coactivation():
    # layer 0 pairs: (0,1) twice, (0,2) once, (0,3) once; diagonal = loads 4,2,1,1
    # layer 1 pairs: (2,3) four times; diagonal 0,0,4,4
    m0 = an.coactivation(EXPERTS, E, layer=0)
    assert m0.tolist() == [[4, 2, 1, 1], [2, 2, 0, 0], [1, 0, 1, 0], [1, 0, 0, 1]]
    total = an.coactivation(EXPERTS, E)
    assert total.tolist() == [[4, 2, 1, 1], [2, 2, 0, 0], [1, 0, 5, 4], [1, 0, 4, 5]]


def test_heatmaps():
    # layer 0: the first expert always has the larger (or tied, first wins) weight -> expert 0
    # layer 1: token 2 weights (.2, .8) -> expert 3 with .8, the others tie -> expert 2 with .5
    ids, w = an.top_expert_map(EXPERTS, WEIGHTS)
    assert ids.tolist() == [[0, 2], [0, 2], [0, 3], [0, 2]]
    assert w.tolist() == [[0.75, 0.5], [0.5, 0.5], [0.9, 0.8], [0.6, 0.5]]
    # weight given to expert 1: tokens 0 and 1 of layer 0 only
    expected = [[0.25, 0], [0.5, 0], [0, 0], [0, 0]]
    assert an.expert_weight_map(EXPERTS, WEIGHTS, 1).tolist() == expected


def test_segment_cache_hit_rate():
    # layer 0, L=2: segments (t0,t1) counts e0=2,e1=2; (t1,t2) e0=2,e1=1,e2=1;
    # (t2,t3) e0=2,e2=1,e3=1.  k*L = 4.
    # c=1: top counts 2,2,2 -> 0.5 each -> SCH = 0.5
    # c=2: 4/4, 3/4, 3/4 -> mean 2.5/3 = 0.8333
    layer0 = EXPERTS[:, 0, :]
    assert an.segment_counts(layer0, 2, E).tolist() == [[2, 2, 0, 0], [2, 1, 1, 0], [2, 0, 1, 1]]
    assert an.segment_cache_hit_rate(layer0, 2, 1, E) == pytest.approx(0.5)
    assert an.segment_cache_hit_rate(layer0, 2, 2, E) == pytest.approx(2.5 / 3)
    # layer 1 always uses {2,3}: a cache of 2 covers everything
    assert an.sch_by_layer(EXPERTS, 2, 2, E) == pytest.approx([2.5 / 3, 1.0])


def test_segment_routing_performance():
    # layer 0, L=2, actual = 3 segments * k*L = 12
    # t=1: predicted {0,1},{0,1,2},{0,2,3}: matches 4+4+4 = 12, predictions (2+3+3)*2 = 16
    #      F1 = 2*12/(16+12) = 6/7
    # t=2: predicted {0,1},{0},{0}: matches 4+2+2 = 8, predictions (2+1+1)*2 = 8
    #      F1 = 16/20 = 0.8  -> SRP = 6/7
    layer0 = EXPERTS[:, 0, :]
    assert an.segment_routing_performance(layer0, 2, E) == pytest.approx(6 / 7)
    # layer 1: t=2 predicts {2,3} for every segment exactly -> F1 = 1
    assert an.srp_by_layer(EXPERTS, 2, E) == pytest.approx([6 / 7, 1.0])
    with pytest.raises(ValueError):
        an.segment_counts(layer0, 5, E)


def test_lru_hit_rate():
    # layer 0, cache 2: t0: 0 miss, 1 miss  [0,1]
    #   t1: 0 hit, 1 hit                     [0,1]
    #   t2: 0 hit, 2 miss evicts 1           [0,2]
    #   t3: 0 hit, 3 miss evicts 2           [0,3]   -> 4 hits / 8 accesses = 0.5
    # cache 1: every access evicts the other expert -> 0 hits
    # layer 1, cache 2: two cold misses, then 6 hits -> 0.75
    layer0 = EXPERTS[:, 0, :]
    assert an.lru_hit_rate(layer0, 2) == 0.5
    assert an.lru_hit_rate(layer0, 1) == 0.0
    assert an.lru_hit_rate_by_layer(EXPERTS, 2).tolist() == [0.5, 0.75]
    # recency, not insertion order: 0,1 | 0,2 | 0,1 with cache 2
    #   [0,1] -> 0 hit (0 now most recent), 2 miss evicts 1 -> [0,2]
    #   -> 0 hit, 1 miss evicts 2 -> [0,1]: 2 hits / 6 (a FIFO would evict 0 and score 1/6)
    seq = np.array([[0, 1], [0, 2], [0, 1]])
    assert an.lru_hit_rate(seq, 2) == pytest.approx(2 / 6)


def test_token_expert_npmi():
    # tokens a b a c on layer 0 -> pairs (a,0)(a,1) (b,0)(b,1) (a,0)(a,2) (c,0)(c,3); N = 8
    # p(a)=4/8, p(b)=p(c)=2/8; p(e0)=4/8, p(e1)=2/8, p(e2)=p(e3)=1/8
    # (a,e2): p=1/8, p(a)p(e2)=1/16 -> log 2 / log 8 = 1/3
    # (c,e3): p=1/8, p(c)p(e3)=1/32 -> log 4 / log 8 = 2/3
    # (b,e1): p=1/8, 1/16 -> 1/3;  (a,e0): p=2/8 = p(a)p(e0) -> 0;  (a,e3) never -> -1
    spec = an.token_expert_npmi(["a", "b", "a", "c"], EXPERTS[:, 0, :], E)
    assert spec.vocabulary == ["a", "b", "c"]
    expected = np.array(
        [
            [0.0, 0.0, 1 / 3, -1.0],
            [0.0, 1 / 3, -1.0, -1.0],
            [0.0, -1.0, -1.0, 2 / 3],
        ]
    )
    np.testing.assert_allclose(spec.npmi, expected, atol=1e-12)
    assert spec.top_tokens(3) == [("c", pytest.approx(2 / 3))]
    assert spec.top_tokens(0) == [("a", 0.0), ("b", 0.0), ("c", 0.0)]
    assert [t for t, _ in spec.top_tokens(1)] == ["b", "a"]


def test_npmi_is_one_when_a_pair_is_everything():
    # one token, one expert, k=1: p(t,e) = p(t) = p(e) = 1 -> nPMI defined as 1
    spec = an.token_expert_npmi(["x", "x"], np.array([[2], [2]]), 3)
    assert spec.npmi[0, 2] == 1.0
