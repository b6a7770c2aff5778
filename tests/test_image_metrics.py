import itertools
import math

import numpy as np
import pytest

from benchmark.image_metrics import best_match, psnr, ssim, window_size


def reference_ssim(a, b, size, data_range=1.0):
    """SSIM written out position by position from Wang et al.'s definitions (weighted means, then two-pass weighted
    variances and covariance), with a Gaussian window of σ = 1.5 built here on its own."""
    centre = (size - 1) / 2
    weights = np.array([[math.exp(-((k - centre) ** 2 + (m - centre) ** 2) / (2 * 1.5**2)) for m in range(size)]
                        for k in range(size)])
    weights /= weights.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for i in range(a.shape[0] - size + 1):
        for j in range(a.shape[1] - size + 1):
            x, y = a[i:i + size, j:j + size], b[i:i + size, j:j + size]
            mx, my = (weights * x).sum(), (weights * y).sum()
            vx, vy = (weights * (x - mx) ** 2).sum(), (weights * (y - my) ** 2).sum()
            cxy = (weights * (x - mx) * (y - my)).sum()
            values.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_psnr_by_hand():
    zeros = np.zeros((1, 8, 8), dtype=np.float32)
    assert psnr(zeros, zeros + 0.1) == pytest.approx(20.0)  # MSE 0.01
    assert psnr(zeros, zeros + 0.1, data_range=2.0) == pytest.approx(20.0 + 20 * math.log10(2))
    half = zeros.copy()
    half[0, :4] = 0.5  # half the pixels off by 0.5: MSE 0.125
    assert psnr(zeros, half) == pytest.approx(10 * math.log10(1 / 0.125))


def test_psnr_of_identical_images_is_inf():
    image = np.random.default_rng(0).random((1, 8, 8))
    assert psnr(image, image.copy()) == math.inf


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="same shape"):
        psnr(np.zeros((8, 8)), np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match="same shape"):
        ssim(np.zeros((8, 8)), np.zeros((8, 7)))


def test_window_fits_the_image():
    assert window_size(8, 8) == 7
    assert window_size(32, 32) == 11
    assert window_size(6, 9) == 5


def test_ssim_by_hand():
    image = np.random.default_rng(1).random((8, 8))
    assert ssim(image, image) == pytest.approx(1.0)
    # constant images: no variance, so SSIM is the luminance term (2·μa·μb + C1) / (μa² + μb² + C1)
    c1 = 0.01**2
    expected = (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1)
    assert ssim(np.full((8, 8), 0.2), np.full((8, 8), 0.6)) == pytest.approx(expected)
    assert ssim(image, 1 - image) < 0  # the inverted image: anticorrelated structure


@pytest.mark.parametrize("shape", [(8, 8), (16, 16), (9, 13)])
def test_ssim_matches_a_direct_computation(shape):
    rng = np.random.default_rng(2)
    a = rng.random(shape)
    b = np.clip(a + rng.normal(0, 0.2, shape), 0, 1)
    assert ssim(a, b) == pytest.approx(reference_ssim(a, b, window_size(*shape)), rel=1e-9)
    assert ssim(a, b, data_range=2.0) == pytest.approx(reference_ssim(a, b, window_size(*shape), 2.0), rel=1e-9)


def test_ssim_of_several_channels_is_their_mean():
    rng = np.random.default_rng(3)
    a, b = rng.random((3, 8, 8)), rng.random((3, 8, 8))
    assert ssim(a, b) == pytest.approx(np.mean([reference_ssim(a[c], b[c], 7) for c in range(3)]), rel=1e-9)


def test_best_match_recovers_a_permutation():
    rng = np.random.default_rng(4)
    originals = rng.random((5, 1, 8, 8))
    order = np.array([3, 0, 4, 1, 2])
    reconstructions = np.clip(originals[order] + rng.normal(0, 0.05, originals.shape), 0, 1)
    matching = best_match(reconstructions, originals)
    assert matching.original == tuple(order)
    assert matching.psnr == pytest.approx([psnr(r, originals[o]) for r, o in zip(reconstructions, order, strict=True)])
    assert matching.ssim == pytest.approx([ssim(r, originals[o]) for r, o in zip(reconstructions, order, strict=True)])


def test_best_match_is_one_to_one_and_optimal():
    rng = np.random.default_rng(5)
    originals = rng.random((4, 1, 4, 4))
    # every reconstruction is closest to original 0: a per-reconstruction best match would pick it four times
    reconstructions = np.clip(originals[[0]] + rng.normal(0, 0.15, (4, 1, 4, 4)), 0, 1)
    matching = best_match(reconstructions, originals)
    assert sorted(matching.original) == [0, 1, 2, 3]
    best_total = max(sum(psnr(reconstructions[i], originals[p]) for i, p in enumerate(perm))
                     for perm in itertools.permutations(range(4)))
    assert sum(matching.psnr) == pytest.approx(best_total)


def test_best_match_with_an_exact_reconstruction():
    originals = np.random.default_rng(6).random((3, 1, 8, 8))
    reconstructions = np.stack([originals[2], np.full((1, 8, 8), 0.5)])
    matching = best_match(reconstructions, originals)
    assert matching.original[0] == 2
    assert matching.psnr[0] == math.inf and matching.ssim[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one to one"):
        best_match(originals, originals[:2])
