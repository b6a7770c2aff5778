import numpy as np
import pytest

from defenses.partition import dirichlet_partition, iid_partition, label_skew

LABELS = np.repeat(np.arange(10), 60)  # 600 samples, 10 balanced classes


def assert_is_partition(parts, n):
    joined = np.concatenate(parts)
    assert len(joined) == n and np.array_equal(np.sort(joined), np.arange(n))  # sizes sum, disjoint, covering


def test_iid_sizes_and_cover():
    parts = iid_partition(len(LABELS), 7, seed=0)
    assert_is_partition(parts, len(LABELS))
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert label_skew(LABELS, parts) < 0.15


@pytest.mark.parametrize("alpha", [0.05, 0.5, 100.0])
def test_dirichlet_is_a_partition_with_no_tiny_client(alpha):
    parts = dirichlet_partition(LABELS, 10, alpha, seed=3)
    assert_is_partition(parts, len(LABELS))
    assert min(len(p) for p in parts) >= 2


def test_dirichlet_skew_grows_as_alpha_falls():
    def mean_skew(alpha):
        return np.mean([label_skew(LABELS, dirichlet_partition(LABELS, 10, alpha, seed=s)) for s in range(5)])

    skews = [mean_skew(alpha) for alpha in (100.0, 1.0, 0.3, 0.1)]
    assert skews == sorted(skews)
    assert skews[0] < 0.15 and skews[-1] > 0.6


def test_partitions_are_deterministic_and_seed_dependent():
    assert all(np.array_equal(a, b) for a, b in zip(dirichlet_partition(LABELS, 10, 0.3, seed=1),
                                                   dirichlet_partition(LABELS, 10, 0.3, seed=1), strict=True))
    assert any(not np.array_equal(a, b) for a, b in zip(iid_partition(600, 10, seed=1),
                                                       iid_partition(600, 10, seed=2), strict=True))


def test_label_skew_extremes():
    disjoint = [np.flatnonzero(LABELS == c) for c in range(10)]
    assert label_skew(LABELS, disjoint) == pytest.approx(0.9)
    assert label_skew(LABELS, [np.arange(600)]) == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="alpha must be > 0"):
        dirichlet_partition(LABELS, 10, 0.0, seed=0)
    with pytest.raises(ValueError, match="clients must be between 1"):
        iid_partition(5, 6, seed=0)
