"""Balanced k-means and group masses of the MoEfication observer, on hand-made numbers."""

import numpy as np

from app.moe import moefication as mf


def test_balanced_kmeans_recovers_co_activating_neurons():
    # 6 neurons over 4 tokens: neurons 0,2,4 fire on tokens 0-1, neurons 1,3,5 on tokens 2-3
    profiles = np.array(
        [
            [1.0, 0.9, 0.0, 0.1],
            [0.0, 0.1, 1.0, 0.8],
            [0.8, 1.0, 0.1, 0.0],
            [0.1, 0.0, 0.9, 1.0],
            [1.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 1.0],
        ]
    )
    groups = mf.balanced_kmeans(profiles, 2, seed=1)
    assert groups[0] == groups[2] == groups[4] != groups[1] == groups[3] == groups[5]
    np.testing.assert_array_equal(groups, mf.balanced_kmeans(profiles, 2, seed=1))


def test_balanced_kmeans_keeps_groups_equal_even_when_data_is_lopsided():
    rng = np.random.default_rng(0)
    # 10 neurons, 9 of them nearly identical: plain k-means would make a 9/1 split
    profiles = np.vstack([np.ones((9, 5)) + 0.01 * rng.random((9, 5)), [[0, 0, 0, 0, 1.0]]])
    groups = mf.balanced_kmeans(profiles, 2)
    assert sorted(np.bincount(groups).tolist()) == [5, 5]
    groups3 = mf.balanced_kmeans(profiles, 3)
    assert sorted(np.bincount(groups3).tolist()) == [3, 3, 4]


def test_top_groups_by_activation_mass():
    # 4 neurons in groups [0, 1, 1, 2]; token activations (-3, 1, 1, 0.5):
    # masses |-3| = 3, 1 + 1 = 2, 0.5 -> total 5.5; top-2 = groups 0 (3/5.5), 1 (2/5.5)
    membership = mf.group_membership(np.array([0, 1, 1, 2]), 3)
    ids, weights = mf.top_groups(np.array([[-3.0, 1.0, 1.0, 0.5]]), membership, 2)
    assert ids.tolist() == [[0, 1]]
    np.testing.assert_allclose(weights, [[3 / 5.5, 2 / 5.5]])
    batched_ids, batched_w = mf.top_groups_batched(
        np.abs(np.array([[[-3.0, 1.0, 1.0, 0.5]]])), membership[None], 2
    )
    assert batched_ids.tolist() == [[[0, 1]]]
    np.testing.assert_allclose(batched_w, [[[3 / 5.5, 2 / 5.5]]])


def test_partition_key_depends_on_the_file(tmp_path):
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    a.write_bytes(b"x" * 100)
    b.write_bytes(b"y" * 100)
    assert mf.partition_key(a, 8) == mf.partition_key(a, 8)
    assert mf.partition_key(a, 8) != mf.partition_key(b, 8)
    assert mf.partition_key(a, 8) != mf.partition_key(a, 4)
