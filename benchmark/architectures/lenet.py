"""The MNIST CNN of Madry et al. 2018 ("Towards deep learning models resistant to adversarial attacks"), after
MadryLab/mnist_challenge's ``model.py``: TensorFlow's 'SAME' padding keeps each 5×5 convolution's size, and each 2×2
max pooling halves it (28 → 14 → 7)."""

from __future__ import annotations

from torch import nn


def lenet_madry(input_shape: tuple[int, ...], nb_classes: int) -> nn.Sequential:
    """conv 32 5×5 → ReLU → maxpool 2 → conv 64 5×5 → ReLU → maxpool 2 → fc 1024 → ReLU → fc ``nb_classes``."""
    channels, height, width = input_shape
    return nn.Sequential(
        nn.Conv2d(channels, 32, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * (height // 4) * (width // 4), 1024),
        nn.ReLU(),
        nn.Linear(1024, nb_classes),
    )
