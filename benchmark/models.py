"""Architecture registry: each entry builds a fresh, randomly initialised ``torch.nn.Module`` that returns logits.

A builder takes ``(input_shape, nb_classes)``; torch is imported inside it so that listing models stays cheap.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from benchmark import MODELS

if TYPE_CHECKING:  # pragma: no cover
    import torch


@MODELS.register("cnn-small", "cnn")
def cnn_small(input_shape: tuple[int, ...], nb_classes: int) -> torch.nn.Module:
    """conv(32)-conv(64)-maxpool-fc(128)-fc: about 150k parameters on 1×8×8 digits."""
    from torch import nn

    channels, height, width = input_shape
    flat = 64 * (height // 2) * (width // 2)
    return nn.Sequential(
        nn.Conv2d(channels, 32, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(flat, 128),
        nn.ReLU(),
        nn.Linear(128, nb_classes),
    )


@MODELS.register("mlp")
def mlp(input_shape: tuple[int, ...], nb_classes: int) -> torch.nn.Module:
    """Two hidden layers of 256 ReLU units: about 85k parameters on 1×8×8 digits."""
    from torch import nn

    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(input_shape), 256),
        nn.ReLU(),
        nn.Linear(256, 256),
        nn.ReLU(),
        nn.Linear(256, nb_classes),
    )


from benchmark import architectures  # noqa: E402, F401  (registers the literature's architectures)
