"""ConvNeXt (Liu et al., 2022): a ResNet modernised one design decision at a time."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.models.lenet import _check_sizes

__all__ = ["CONVNEXT_VARIANTS", "ConvNeXtBlock", "LayerNorm2d", "convnext"]


class LayerNorm2d(nn.LayerNorm):
    """Layer normalisation over the channels of each pixel of an (N, C, H, W) tensor.

    x: (N, C, H, W) -> (N, C, H, W); for every (n, h, w) the C values are normalised to mean 0
    and variance 1, then scaled and shifted per channel.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """Depthwise 7×7 convolution → LayerNorm → Linear (4C) → GELU → Linear (C) → layer scale,
    added to the input.

    x: (N, C, H, W) -> (N, C, H, W)

    The two linear layers act on the channels of each pixel (they are 1×1 convolutions): an
    *inverted* bottleneck, wide in the middle. ``layer_scale`` multiplies each channel of the
    block's output by a learned number that starts tiny (1e-6), so that every block starts
    close to the identity. ``drop_path`` is the probability of skipping the whole block for a
    sample during training (stochastic depth).
    """

    def __init__(self, channels: int, layer_scale: float = 1e-6, drop_path: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= drop_path < 1.0:
            raise ValueError(f"drop_path must be in [0, 1), got {drop_path!r}")
        self.layer_scale = nn.Parameter(torch.full((channels, 1, 1), float(layer_scale)))
        self.dwconv = nn.Conv2d(channels, channels, 7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pwconv1 = nn.Linear(channels, 4 * channels)
        self.pwconv2 = nn.Linear(4 * channels, channels)
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dwconv(x).permute(0, 2, 3, 1)  # (N, H, W, C): Linear acts on the channels
        out = self.pwconv2(F.gelu(self.pwconv1(self.norm(out))))
        out = self.layer_scale * out.permute(0, 3, 1, 2)
        if self.training and self.drop_path > 0:
            keep = 1.0 - self.drop_path
            mask = torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) < keep
            out = out * mask / keep
        return x + out


# variant -> (channels per stage, blocks per stage), from the ConvNeXt paper.
CONVNEXT_VARIANTS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "tiny": ((96, 192, 384, 768), (3, 3, 9, 3)),
    "small": ((96, 192, 384, 768), (3, 3, 27, 3)),
    "base": ((128, 256, 512, 1024), (3, 3, 27, 3)),
    "large": ((192, 384, 768, 1536), (3, 3, 27, 3)),
}


def convnext(
    variant: str = "tiny",
    num_classes: int = 1000,
    in_channels: int = 3,
    channels: tuple[int, ...] | None = None,
    depths: tuple[int, ...] | None = None,
    stem_stride: int = 4,
    drop_path: float = 0.0,
    layer_scale: float = 1e-6,
) -> nn.Sequential:
    """ConvNeXt-T/S/B/L: a "patchify" stem, four stages of ConvNeXt blocks, a linear head.

    x: (N, in_channels, H, W) -> logits: (N, num_classes)

    Stem: a 4×4 convolution with stride 4 and a LayerNorm. Between stages: LayerNorm and a 2×2
    convolution with stride 2 that doubles the channels. Head: global average pooling,
    LayerNorm, linear. ``channels``/``depths`` override the variant (e.g. a small model for
    28×28 images with ``stem_stride=1`` or 2); ``drop_path`` rises linearly from 0 to this
    value over the blocks. ``layer_scale`` is the starting value of every block's layer scale
    (the paper's 1e-6: each block starts as almost the identity). With the defaults the
    parameters line up one to one with ``torchvision.models.convnext_{variant}``.
    """
    _check_sizes(num_classes, in_channels)
    if not layer_scale > 0:
        raise ValueError(f"layer_scale must be > 0, got {layer_scale!r}")
    if variant not in CONVNEXT_VARIANTS:
        raise ValueError(f"variant must be one of {sorted(CONVNEXT_VARIANTS)}, got {variant!r}")
    widths, counts = CONVNEXT_VARIANTS[variant]
    widths = tuple(channels) if channels is not None else widths
    counts = tuple(depths) if depths is not None else counts
    if len(widths) != len(counts) or not widths:
        raise ValueError(
            f"channels and depths need one entry per stage, got {len(widths)} and {len(counts)}"
        )
    total = sum(counts)
    modules: list[nn.Module] = [
        nn.Sequential(
            nn.Conv2d(in_channels, widths[0], stem_stride, stride=stem_stride),
            LayerNorm2d(widths[0], eps=1e-6),
        )
    ]
    index = 0
    for stage, (width, count) in enumerate(zip(widths, counts, strict=True)):
        blocks = []
        for _ in range(count):
            rate = drop_path * index / max(1, total - 1)
            blocks.append(ConvNeXtBlock(width, layer_scale=layer_scale, drop_path=rate))
            index += 1
        modules.append(nn.Sequential(*blocks))
        if stage != len(widths) - 1:
            modules.append(
                nn.Sequential(
                    LayerNorm2d(width, eps=1e-6), nn.Conv2d(width, widths[stage + 1], 2, stride=2)
                )
            )
    modules += [
        nn.AdaptiveAvgPool2d(1),
        LayerNorm2d(widths[-1], eps=1e-6),
        nn.Flatten(),
        nn.Linear(widths[-1], num_classes),
    ]
    model = nn.Sequential(*modules)
    for module in model.modules():  # truncated normal as in the paper; biases zero
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
    return model
