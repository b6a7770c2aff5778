"""Randomized smoothing (Cohen, Rosenfeld & Kolter 2019, arXiv:1902.02918): a base network trained with Gaussian
noise, Gaussian input noise at inference, and Cohen's CERTIFY (``benchmark.certify``) after the attacks, which the
certification stage (``benchmark.certify_stage``) runs on the evaluated test samples: certified accuracy at each ε of
the grid taken as an L2 radius, beside the empirical robust accuracy at the same ε.

The certificate is about the smoothed classifier g (the class most noisy draws vote for), not about one noisy draw:
one draw errs more often than g (on digits at σ = 0.25: 92.8 % clean for one draw, 96.4 % for g), so robust accuracy
judged by single draws can lie below a correct certificate (it did: 71.4 % at L2 0.25, certified 87.2 %). The
attacks therefore differentiate single draws, as for ``gaussian-input`` (naively, with BPDA, with EoT's draws per
gradient), but every prediction the harness makes of the row (its clean accuracy, each break's verification, the
probes) is g's, a majority vote over ``n0`` draws, the class CERTIFY's selection step picks (``defenses/smoothed.py``).
The ε columns are then the empirical robust accuracy of the classifier the certificate bounds, and
``certificate_violated`` compares like with like."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from benchmark import DEFENSES
from benchmark.certify import DEFAULT_ALPHA, DEFAULT_BATCH, DEFAULT_N0, check_parameters, default_n
from benchmark.constraints import Interval
from defenses.preprocessing import GaussianInputDefense, base_spec

#: Samples certified by default: Cohen et al. certified 500 test images (CIFAR-10: every 20th), and a 95 % interval on
#: a certified accuracy from 500 samples is at most ± 4.4 points. On digits that is every evaluated sample (360): about
#: a minute for cnn-small on 2 shared CPU cores at N = 10,000 (0.16–0.27 s a sample). Larger models cost far more
#: (Cohen et al.: ~15 s an image for a ResNet-110 at N = 100,000 on a GPU): lower it there.
DEFAULT_CERT_SAMPLES = 500


@dataclass(frozen=True, kw_only=True)
class CertifySettings:
    """What the certification stage runs: Cohen's CERTIFY with noise ``sigma``, ``n0`` selection and ``n`` estimation
    draws, confidence 1 − ``alpha``, ``batch`` noisy inputs per forward pass, on the first ``samples`` evaluated test
    samples (0: all)."""

    sigma: float
    n0: int
    n: int
    alpha: float
    batch: int
    samples: int


@DEFENSES.register("smoothing", "randomized-smoothing")
@dataclass(frozen=True)
class RandomizedSmoothing(GaussianInputDefense):
    """Randomized smoothing (Cohen et al. 2019): ``base`` (default ``noise-aug``, trained at this ``sigma`` unless
    ``base_params`` sets its own, so ``smoothing:sigma=0.25`` shares ``noise-aug:sigma=0.25``'s checkpoint) behind
    Gaussian input noise N(0, σ²) at inference, and certified with Cohen's CERTIFY.

    Args:
        sigma: the noise's standard deviation (inputs in [0, 1]), at training (noise-aug's) and at inference.
        n0: selection draws per sample (Cohen's 100).
        n: estimation draws per sample; 0 = the device's default (``benchmark.certify.default_n``): Cohen's 100,000 on
            CUDA, 10,000 on a CPU (a tenth of the cost; the largest radius it can certify is σ·Φ⁻¹(α^(1/N)), 0.80 at
            σ = 0.25 instead of 0.95).
        alpha: the certificates fail with probability at most α (Cohen's 0.001).
        cert_batch: noisy inputs per forward pass.
        cert_samples: the first that many evaluated test samples are certified (0: all). 500 by default, Cohen's
            count: all of digits' 360 (about a minute on 2 CPU cores); a 95 % interval within ± 4.4 points.
    """

    base: str = "noise-aug"
    n0: int = DEFAULT_N0
    n: int = 0
    alpha: float = DEFAULT_ALPHA
    cert_batch: int = DEFAULT_BATCH
    cert_samples: int = DEFAULT_CERT_SAMPLES

    parameter_constraints: ClassVar[dict] = {
        **GaussianInputDefense.parameter_constraints,
        "n0": Interval(int, 1, None), "n": Interval(int, 0, None),
        "alpha": Interval(float, 0, 1, closed="neither"), "cert_batch": Interval(int, 1, None),
        "cert_samples": Interval(int, 0, None),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        # n = 0 is checked at its smallest, a CPU's N (a GPU's is larger)
        check_parameters(sigma=self.sigma, n0=self.n0, n=self.n or default_n("cpu"), alpha=self.alpha)

    def trained_spec(self) -> Any:
        """The base's spec; a ``noise-aug`` base trains at this ``sigma`` unless ``base_params`` gives its own."""
        spec = base_spec(self.base, self.base_params)
        given = {part.partition("=")[0].strip() for part in self.base_params.split(";")}
        if spec.name != "noise-aug" or "sigma" in given:
            return spec
        return base_spec(self.base, f"sigma={self.sigma};{self.base_params}")

    def inference_model(self, network):
        """The network behind this σ's noise, predicting as g by a vote over ``n0`` draws (``Smoothed``)."""
        from benchmark.runner import inference_model
        from defenses.smoothed import Smoothed

        return Smoothed(inference_model(self.trained_spec().build(), network), self.step(), sigma=self.sigma,
                        votes=self.n0)

    def certify_settings(self, device: str) -> CertifySettings:
        """What the certification stage runs on ``device`` (``n`` = 0: that device's default N)."""
        return CertifySettings(sigma=self.sigma, n0=self.n0, n=self.n or default_n(device), alpha=self.alpha,
                               batch=self.cert_batch, samples=self.cert_samples)
