"""Residual networks for 32×32 images as the robustness literature trains them: the pre-activation ResNet-18 of Rice
et al. 2020 / RobustBench (He et al. 2016, "Identity mappings"), the CIFAR ResNet-18 (3×3 stem, no max pooling), and
the wide ResNets of Zagoruyko & Komodakis 2016 as TRADES builds them. Each takes ``norm``: "batch" (BatchNorm) or
"group" (GroupNorm, no batch statistics)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

#: GroupNorm's groups: 32 (Wu & He 2018), or the largest divisor of the channels below it (16 channels: 16 groups).
GROUPS = 32
RESNET_WIDTHS = (64, 128, 256, 512)


def norm_layer(norm: str, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "group":
        return nn.GroupNorm(math.gcd(GROUPS, channels), channels)
    raise ValueError(f"norm must be 'batch' or 'group', got {norm!r}")


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


class PreActBlock(nn.Module):
    """norm → ReLU → conv 3×3 → norm → ReLU → conv 3×3, added to the input; when the block changes the shape, to a
    1×1 convolution of the first activation instead (the pre-activation ResNet's and the wide ResNet's block)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: str) -> None:
        super().__init__()
        self.norm1 = norm_layer(norm, in_channels)
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.norm2 = norm_layer(norm, out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        reshapes = stride != 1 or in_channels != out_channels
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False) if reshapes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(self.norm1(x))
        shortcut = x if self.shortcut is None else self.shortcut(activated)
        out = self.conv2(F.relu(self.norm2(self.conv1(activated))))
        return out + shortcut


class BasicBlock(nn.Module):
    """conv 3×3 → norm → ReLU → conv 3×3 → norm, added to the input (or to its 1×1 convolution and norm when the
    block changes the shape), then ReLU (the original ResNet's block)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.norm1 = norm_layer(norm, out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.norm2 = norm_layer(norm, out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          norm_layer(norm, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm2(self.conv2(F.relu(self.norm1(self.conv1(x)))))
        return F.relu(out + self.shortcut(x))


def stages(block: type[nn.Module], in_channels: int, widths: tuple[int, ...], blocks: int, norm: str
           ) -> list[nn.Module]:
    """``blocks`` blocks per width in ``widths``; every stage but the first starts with stride 2."""
    layers: list[nn.Module] = []
    for index, width in enumerate(widths):
        for position in range(blocks):
            stride = 2 if index > 0 and position == 0 else 1
            layers.append(block(in_channels, width, stride, norm))
            in_channels = width
    return layers


def head(channels: int, nb_classes: int) -> list[nn.Module]:
    """Global average pooling and the linear classifier."""
    return [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, nb_classes)]


def preact_resnet18(input_shape: tuple[int, ...], nb_classes: int, norm: str) -> nn.Sequential:
    """3×3 stem (64) → 4 stages of 2 pre-activation blocks (64, 128, 256, 512) → norm → ReLU → pool → linear."""
    return nn.Sequential(conv3x3(input_shape[0], RESNET_WIDTHS[0]),
                         *stages(PreActBlock, RESNET_WIDTHS[0], RESNET_WIDTHS, 2, norm),
                         norm_layer(norm, RESNET_WIDTHS[-1]), nn.ReLU(), *head(RESNET_WIDTHS[-1], nb_classes))


def resnet18(input_shape: tuple[int, ...], nb_classes: int, norm: str) -> nn.Sequential:
    """3×3 stem (64) → norm → ReLU → 4 stages of 2 basic blocks (64, 128, 256, 512) → pool → linear."""
    return nn.Sequential(conv3x3(input_shape[0], RESNET_WIDTHS[0]), norm_layer(norm, RESNET_WIDTHS[0]), nn.ReLU(),
                         *stages(BasicBlock, RESNET_WIDTHS[0], RESNET_WIDTHS, 2, norm),
                         *head(RESNET_WIDTHS[-1], nb_classes))


def wide_resnet(input_shape: tuple[int, ...], nb_classes: int, norm: str, *, depth: int, widen: int
                ) -> nn.Sequential:
    """WRN-``depth``-``widen``: 3×3 stem (16) → 3 stages of (depth − 4) / 6 pre-activation blocks (16, 32, 64 ×
    ``widen`` channels) → norm → ReLU → pool → linear, initialised as TRADES does (He-normal convolutions over their
    fan-out, zero linear bias)."""
    if (depth - 4) % 6:
        raise ValueError(f"a wide ResNet's depth must be 6n + 4, got {depth}")
    widths = (16 * widen, 32 * widen, 64 * widen)
    network = nn.Sequential(conv3x3(input_shape[0], 16), *stages(PreActBlock, 16, widths, (depth - 4) // 6, norm),
                            norm_layer(norm, widths[-1]), nn.ReLU(), *head(widths[-1], nb_classes))
    for module in network.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)
    return network
