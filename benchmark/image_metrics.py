"""Image similarity for reconstruction attacks: PSNR, SSIM, and the optimal one-to-one matching of reconstructions
to the true images they came from. Pure NumPy (SciPy for the matching); no torch.

Images are arrays of values in ``[0, data_range]``: ``(H, W)`` or ``(C, H, W)`` for one image, ``(n, C, H, W)`` or
``(n, H, W)`` for a batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: SSIM's constants and window (Wang et al. 2004): C1 = (K1·L)², C2 = (K2·L)², an 11×11 Gaussian window of σ = 1.5.
SSIM_K1 = 0.01
SSIM_K2 = 0.03
SSIM_SIGMA = 1.5
SSIM_WINDOW = 11


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio of ``a`` against ``b`` in dB: 10·log10(data_range² / MSE) over all values.
    Identical arrays (MSE 0) give ``inf``."""
    a, b = _pair(a, b)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def gaussian_window(size: int, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """A ``size × size`` Gaussian window of standard deviation ``sigma``, normalised to sum 1."""
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2
    line = np.exp(-(offsets**2) / (2 * sigma**2))
    window = np.outer(line, line)
    return window / window.sum()


def window_size(height: int, width: int) -> int:
    """The SSIM window for an image of ``height × width``: Wang et al.'s 11, or the largest odd size that fits
    (7 on 8×8 digits)."""
    fits = min(height, width, SSIM_WINDOW)
    return fits if fits % 2 else fits - 1


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity of ``a`` and ``b`` (Wang et al. 2004, "Image quality assessment: from error visibility
    to structural similarity"): local means, variances and covariance under a Gaussian window of σ = 1.5, K1 = 0.01,
    K2 = 0.03, the SSIM map over every position where the window lies inside the image ("valid", as the authors'
    MATLAB code), averaged. The window is 11×11, or on a smaller image the largest odd size that fits
    (``window_size``: 7×7 on 8×8 digits), still with σ = 1.5. A ``(C, H, W)`` image scores the mean over its
    channels; an ``(H, W)`` image is one channel."""
    a, b = _pair(a, b)
    if a.ndim == 2:
        a, b = a[None], b[None]
    if a.ndim != 3:
        raise ValueError(f"ssim takes an (H, W) or (C, H, W) image, got shape {a.shape}")
    size = window_size(*a.shape[1:])
    if size < 1:
        raise ValueError(f"ssim needs an image of at least 1×1 pixels, got shape {a.shape}")
    window = gaussian_window(size)
    return float(np.mean([_ssim_map(x, y, window, data_range).mean() for x, y in zip(a, b, strict=True)]))


def _ssim_map(a: np.ndarray, b: np.ndarray, window: np.ndarray, data_range: float) -> np.ndarray:
    """SSIM at every valid window position of two ``(H, W)`` channels."""
    size = window.shape[0]

    def local_mean(image: np.ndarray) -> np.ndarray:
        patches = np.lib.stride_tricks.sliding_window_view(image, (size, size))
        return np.einsum("ijkl,kl->ij", patches, window)

    mu_a, mu_b = local_mean(a), local_mean(b)
    var_a = local_mean(a * a) - mu_a**2
    var_b = local_mean(b * b) - mu_b**2
    cov = local_mean(a * b) - mu_a * mu_b
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


@dataclass(frozen=True, kw_only=True)
class Matching:
    """Each reconstruction's best-matching true image (``original``: its index) under a one-to-one matching, and
    the PSNR and SSIM of the reconstruction against it, in the order of the reconstructions."""

    original: tuple[int, ...]
    psnr: tuple[float, ...]
    ssim: tuple[float, ...]


def best_match(reconstructions: np.ndarray, originals: np.ndarray, data_range: float = 1.0) -> Matching:
    """Match every reconstruction to a distinct true image so that the total PSNR is highest (the assignment
    problem, solved exactly by ``scipy.optimize.linear_sum_assignment``), then score each pair. A reconstruction
    identical to a true image (PSNR ``inf``) always gets it. Needs no more reconstructions than true images."""
    from scipy.optimize import linear_sum_assignment

    reconstructions, originals = np.asarray(reconstructions), np.asarray(originals)
    if reconstructions.shape[1:] != originals.shape[1:]:
        raise ValueError(f"reconstructions of shape {reconstructions.shape[1:]} cannot match originals of shape "
                         f"{originals.shape[1:]}")
    if len(reconstructions) > len(originals):
        raise ValueError(f"{len(reconstructions)} reconstructions cannot match {len(originals)} originals one to one")
    scores = np.array([[psnr(r, o, data_range) for o in originals] for r in reconstructions], dtype=np.float64)
    finite = scores[np.isfinite(scores)]
    ceiling = (finite.max() if finite.size else 0.0) + 1e6  # an exact match outranks every finite PSNR
    rows, columns = linear_sum_assignment(np.where(np.isinf(scores), ceiling, scores), maximize=True)
    chosen = columns[np.argsort(rows)]
    return Matching(original=tuple(int(c) for c in chosen),
                    psnr=tuple(float(scores[i, c]) for i, c in enumerate(chosen)),
                    ssim=tuple(ssim(reconstructions[i], originals[c], data_range) for i, c in enumerate(chosen)))


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    return a, b
