"""Input-preprocessing defenses from ART (``art.defences.preprocessor``) on top of a trained base defense: feature
squeezing (Xu et al. 2018, arXiv:1704.01155), median smoothing (the same paper's spatial smoothing), JPEG compression
(Dziugaite et al. 2016, arXiv:1608.00853; Guo et al. 2018, arXiv:1711.00117) and Gaussian input noise (a randomized
defense; the inference side of Cohen et al. 2019).

The base defense (``base``, with ``base_params`` as ``key=value;key=value``) trains the network exactly as its own row
does (the same train hash, so the same checkpoint); the preprocessing only wraps it for inference (``inference_model``).
What the attacks see is ``Preprocessed``: the ART preprocessor in the forward pass, and in the backward pass one of

* ``naive``: the gradient a careless evaluation gets by differentiating the defended forward pass as it is. Rounding
  (squeezing) and JPEG are piecewise constant, so it is zero: the attack sees no gradient (Athalye et al. 2018's
  "shattered gradients"; the validity probes then flag gradient masking). Median smoothing is differentiated as a
  median filter is (the gradient routed to the median pixel of each window); additive noise passes it through.
* ``bpda``: Athalye et al.'s backward pass differentiable approximation, ART's ``estimate_gradient`` of the
  preprocessor (the identity for all four).

A randomized preprocessor (Gaussian noise) draws afresh on each forward pass; expectation over transformation (EoT)
averages the gradient over draws (``benchmark/adaptive.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from benchmark import DEFENSES
from benchmark.constraints import Constrained, Interval, Text

MODES = ("naive", "bpda")


@dataclass(frozen=True)
class Step:
    """One ART preprocessor as ``Preprocessed`` runs it: how to build it (clip values (0, 1), channels first), whether
    each forward pass draws afresh, and what the naive backward pass gives: ``zero`` (a piecewise-constant map),
    ``identity`` (additive noise) or ``median`` (a ``size × size`` median filter's, ``preprocessed.median_filter``)."""

    build: Callable[[], Any]
    naive: str
    randomized: bool = False
    size: int = 0


def squeezing(bit_depth: int) -> Step:
    from art.defences.preprocessor import FeatureSqueezing

    return Step(build=lambda: FeatureSqueezing(clip_values=(0.0, 1.0), bit_depth=bit_depth), naive="zero")


def median(window_size: int) -> Step:
    from art.defences.preprocessor import SpatialSmoothing

    return Step(build=lambda: SpatialSmoothing(window_size=window_size, channels_first=True, clip_values=(0.0, 1.0)),
                naive="median", size=window_size)


def jpeg(quality: int) -> Step:
    from art.defences.preprocessor import JpegCompression

    return Step(build=lambda: JpegCompression(clip_values=(0.0, 1.0), quality=quality, channels_first=True),
                naive="zero")


def thermometer(num_space: int) -> Step:
    from art.defences.preprocessor import ThermometerEncoding

    return Step(build=lambda: ThermometerEncoding(clip_values=(0.0, 1.0), num_space=num_space, channels_first=True),
                naive="zero")


def gaussian(sigma: float) -> Step:
    from art.defences.preprocessor import GaussianAugmentation

    return Step(build=lambda: GaussianAugmentation(sigma=sigma, augmentation=False, clip_values=(0.0, 1.0),
                                                   apply_fit=False, apply_predict=True),
                naive="identity", randomized=True)


def base_spec(name: str, params_text: str) -> Any:
    """The base defense's ``PluginSpec`` (``params_text``: ``key=value;key=value``), checked now."""
    from benchmark.config import parse_plugins
    from benchmark.errors import ConfigError

    items = [part.strip() for part in params_text.split(";") if part.strip()]
    try:
        (spec,) = parse_plugins("defense", f"{name}:{','.join(items)}" if items else name, "base")
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    if hasattr(DEFENSES.get(spec.name), "trained_spec"):
        raise ValueError(f"base must be a defense that trains a model, not the wrapper {name!r}")
    return spec


@dataclass(frozen=True)
class Preprocessing(Constrained):
    """Base of the preprocessing defenses: a trained ``base`` defense, wrapped for inference with ``step()``."""

    base: str = "standard"
    base_params: str = ""

    parameter_constraints: ClassVar[dict] = {"base": Text(), "base_params": Text()}
    #: Not on the reference leaderboards (``benchmark.config.reference_defenses``): the README gives their numbers.
    reference_board: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.trained_spec()  # the base and its parameters are checked now, before any work

    def trained_spec(self) -> Any:
        """What trains the network: the base defense's spec (the plan hashes and caches the training by it)."""
        return base_spec(self.base, self.base_params)

    def step(self) -> Step:
        raise NotImplementedError

    def fit(self, model, data, ctx):
        return self.trained_spec().build().fit(model, data, ctx)

    def inference_model(self, network):
        from benchmark.runner import inference_model
        from defenses.preprocessed import Preprocessed

        return Preprocessed(inference_model(self.trained_spec().build(), network), self.step())


@DEFENSES.register("squeeze", "feature-squeezing")
@dataclass(frozen=True)
class FeatureSqueezingDefense(Preprocessing):
    """Feature squeezing (Xu et al. 2018): inputs rounded to ``bit_depth`` bits per channel (ART's FeatureSqueezing)."""

    bit_depth: int = 3

    parameter_constraints: ClassVar[dict] = {**Preprocessing.parameter_constraints, "bit_depth": Interval(int, 1, 64)}

    def step(self) -> Step:
        return squeezing(self.bit_depth)


@DEFENSES.register("median-smoothing", "spatial-smoothing")
@dataclass(frozen=True)
class MedianSmoothingDefense(Preprocessing):
    """Median smoothing (Xu et al. 2018): a ``window_size`` median filter (ART's SpatialSmoothing)."""

    window_size: int = 2

    parameter_constraints: ClassVar[dict] = {**Preprocessing.parameter_constraints,
                                             "window_size": Interval(int, 1, 100)}

    def step(self) -> Step:
        return median(self.window_size)


@DEFENSES.register("jpeg")
@dataclass(frozen=True)
class JpegDefense(Preprocessing):
    """JPEG compression at ``quality`` (Dziugaite et al. 2016; Guo et al. 2018; ART's JpegCompression)."""

    quality: int = 75

    parameter_constraints: ClassVar[dict] = {**Preprocessing.parameter_constraints, "quality": Interval(int, 1, 100)}

    def step(self) -> Step:
        return jpeg(self.quality)


@DEFENSES.register("thermometer", "thermometer-encoding")
@dataclass(frozen=True)
class ThermometerDefense(Preprocessing):
    """Thermometer encoding (Buckman et al. 2018, "Thermometer encoding: one hot way to resist adversarial examples",
    ICLR): each pixel becomes ``num_space`` binary levels (ART's ThermometerEncoding), C channels become C·k. Unlike
    the other preprocessing defenses the network is trained on the encoding: a 1 × 1 convolution maps the C·k
    channels back to C in front of the registry's network (``trained_network``), and ``base`` trains that whole
    network through the encoding (with BPDA's differentiable approximation, ART's, for an adversarial base), so the
    row has a training of its own. The naive gradient through the discretisation is zero; BPDA's is Athalye et al.'s
    approximation."""

    num_space: int = 10

    parameter_constraints: ClassVar[dict] = {**Preprocessing.parameter_constraints,
                                             "num_space": Interval(int, 2, 256)}

    def step(self) -> Step:
        return thermometer(self.num_space)

    def trained_spec(self) -> Any:
        """Its own: the encoding is part of what trains, so no base row shares its checkpoint."""
        base_spec(self.base, self.base_params)  # checked all the same
        return None

    def trained_network(self, network, input_shape: tuple[int, ...]):
        import torch

        channels = input_shape[0]
        return torch.nn.Sequential(torch.nn.Conv2d(channels * self.num_space, channels, kernel_size=1), network)

    def fit(self, model, data, ctx):
        from defenses.preprocessed import Preprocessed

        base = base_spec(self.base, self.base_params).build()
        base.fit(Preprocessed(model, self.step(), mode="bpda"), data, ctx)  # trains ``model`` through the encoding
        return model

    def inference_model(self, network):
        from defenses.preprocessed import Preprocessed

        return Preprocessed(network, self.step())


@DEFENSES.register("gaussian-input", "input-noise")
@dataclass(frozen=True)
class GaussianInputDefense(Preprocessing):
    """Gaussian input noise N(0, σ²), drawn afresh at every prediction (ART's GaussianAugmentation at predict time;
    the Monte Carlo form of randomized smoothing, Cohen et al. 2019, arXiv:1902.02918): a randomized defense, scored
    with EoT."""

    sigma: float = 0.25

    parameter_constraints: ClassVar[dict] = {**Preprocessing.parameter_constraints,
                                             "sigma": Interval(float, 0, None, closed="neither")}

    def step(self) -> Step:
        return gaussian(self.sigma)


