"""The architectures of the adversarial-robustness literature, registered as models with parameters.

Each entry is a frozen dataclass (its fields are the model's parameters, ``--model preact-resnet18:norm=group``)
that, called with ``(input_shape, nb_classes)``, builds a fresh, randomly initialised network returning logits. It
declares the ``input_shapes`` it takes: another shape is refused with both shapes named (``benchmark.preflight``
checks it against the data before any work). torch is imported inside ``build``, so listing models stays cheap; the
networks themselves live in ``lenet.py`` and ``resnet.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from benchmark import MODELS
from benchmark.constraints import Constrained, Options

if TYPE_CHECKING:  # pragma: no cover
    import torch

Shape = tuple[int, ...]
CIFAR_SHAPE: Shape = (3, 32, 32)
MNIST_SHAPE: Shape = (1, 28, 28)


def shape_text(shape: Iterable[int]) -> str:
    """``(3, 32, 32)`` → ``3×32×32``."""
    return "×".join(str(size) for size in shape)


def input_shape_problem(accepted: Iterable[Shape], input_shape: Iterable[int]) -> str | None:
    """What is wrong with ``input_shape`` for a model that takes only the ``accepted`` shapes (none: any), naming
    both ("takes inputs of shape 1×28×28, not 3×32×32"); None when it fits."""
    accepted = tuple(tuple(shape) for shape in accepted)
    if not accepted or tuple(input_shape) in accepted:
        return None
    return f"takes inputs of shape {' or '.join(shape_text(s) for s in accepted)}, not {shape_text(input_shape)}"


@dataclass(frozen=True)
class Architecture(Constrained):
    """A registry model with parameters: calling it checks the input shape, then ``build``s the network."""

    input_shapes: ClassVar[tuple[Shape, ...]] = ()  # the shapes it takes (empty: any)

    def __call__(self, input_shape: Shape, nb_classes: int) -> torch.nn.Module:
        problem = input_shape_problem(self.input_shapes, input_shape)
        if problem:
            raise ValueError(f"{type(self).__name__} {problem}")
        return self.build(tuple(input_shape), nb_classes)

    def build(self, input_shape: Shape, nb_classes: int) -> torch.nn.Module:
        raise NotImplementedError


@MODELS.register("lenet-madry")
@dataclass(frozen=True)
class LeNetMadry(Architecture):
    """The MNIST CNN of Madry et al. 2018 (mnist_challenge): 5×5 convolutions of 32 and 64 channels ('SAME'
    padding), each with ReLU and 2×2 max pooling, then fc 1024 → classes; 3.3M parameters on 1×28×28."""

    input_shapes: ClassVar[tuple[Shape, ...]] = (MNIST_SHAPE,)

    def build(self, input_shape: Shape, nb_classes: int) -> torch.nn.Module:
        from benchmark.architectures.lenet import lenet_madry

        return lenet_madry(input_shape, nb_classes)


@dataclass(frozen=True)
class Normed(Architecture):
    """An architecture with normalisation layers: BatchNorm, or GroupNorm (32 groups, fewer for fewer channels),
    which needs no batch statistics (per-sample gradients, differentially private training)."""

    parameter_constraints: ClassVar[dict] = {"norm": Options("batch", "group")}
    input_shapes: ClassVar[tuple[Shape, ...]] = (CIFAR_SHAPE,)

    norm: str = "batch"


@MODELS.register("preact-resnet18")
@dataclass(frozen=True)
class PreActResNet18(Normed):
    """Pre-activation ResNet-18 of He et al. 2016 ("Identity mappings in deep residual networks"), the CIFAR variant
    of Rice et al. 2020 and RobustBench: 3×3 stem, 4 stages of 2 blocks (64-512 channels); 11.2M parameters."""

    def build(self, input_shape: Shape, nb_classes: int) -> torch.nn.Module:
        from benchmark.architectures.resnet import preact_resnet18

        return preact_resnet18(input_shape, nb_classes, self.norm)


@MODELS.register("resnet18")
@dataclass(frozen=True)
class ResNet18(Normed):
    """ResNet-18 of He et al. 2016 ("Deep residual learning for image recognition"), CIFAR variant: 3×3 stem
    without max pooling, 4 stages of 2 basic blocks (64-512 channels); 11.2M parameters."""

    def build(self, input_shape: Shape, nb_classes: int) -> torch.nn.Module:
        from benchmark.architectures.resnet import resnet18

        return resnet18(input_shape, nb_classes, self.norm)


@dataclass(frozen=True)
class WideResNet(Normed):
    """A wide ResNet of Zagoruyko & Komodakis 2016 as TRADES and RobustBench use it (no dropout)."""

    depth: ClassVar[int]
    widen: ClassVar[int] = 10

    def build(self, input_shape: Shape, nb_classes: int) -> torch.nn.Module:
        from benchmark.architectures.resnet import wide_resnet

        return wide_resnet(input_shape, nb_classes, self.norm, depth=self.depth, widen=self.widen)


@MODELS.register("wrn-28-10")
@dataclass(frozen=True)
class WideResNet28x10(WideResNet):
    """WRN-28-10 of Zagoruyko & Komodakis 2016 (Carmon et al. 2019, RobustBench): 3 stages of 4 pre-activation blocks,
    160-640 channels; 36.5M parameters."""

    depth: ClassVar[int] = 28


@MODELS.register("wrn-34-10")
@dataclass(frozen=True)
class WideResNet34x10(WideResNet):
    """WRN-34-10 of Zagoruyko & Komodakis 2016 (Madry et al. 2018, Zhang et al. 2019 TRADES): 3 stages of 5
    pre-activation blocks, 160-640 channels; 46.2M parameters."""

    depth: ClassVar[int] = 34
