"""The claims of the chapters on AlexNet, VGG, NiN and GoogLeNet, checked another way.

The chapters compute their numbers with ``shape_trace``, ``layer_costs`` and ``receptive_field``;
here the same numbers come from running the layers (PyTorch's own convolutions, torchvision's
AlexNet, forward hooks) or from the closed-form formulas, so a wrong formula or a wrong model
fails.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision.models as tvm
from torch import nn

from course_lib import count_parameters, layer_costs, receptive_field, shape_trace
from course_lib.models import GOOGLENET_INCEPTIONS, Inception, alexnet, googlenet, vgg


def hook_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of every Conv2d and Linear, counted from the outputs of a real forward pass."""
    total = 0

    def count(layer: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(layer, nn.Conv2d):
            per_output = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
        else:
            per_output = layer.in_features
        total += output.numel() * per_output

    hooks = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    device = next(model.parameters()).device
    with torch.no_grad():
        model.eval()(torch.zeros(input_shape, device=device))
    for hook in hooks:
        hook.remove()
    return total


def test_alexnet_paper_fits_227_and_not_224() -> None:
    """(227 - 11) / 4 + 1 = 55; a 224 input leaves 256×5×5 = 6400 features for fc6."""
    with torch.device("meta"):
        model = alexnet("paper")
    assert shape_trace(model, (3, 227, 227))[0].output_shape == (96, 55, 55)
    with pytest.raises(ValueError, match=r"'fc6'.*9216.*6400"):
        shape_trace(model, (3, 224, 224))
    # PyTorch's version pads conv1 by 2 and gets 55 from 224: check it by running torchvision's
    conv1 = tvm.alexnet().features[0]
    assert conv1(torch.zeros(1, 3, 224, 224)).shape[-1] == 55
    assert nn.Conv2d(3, 96, 11, stride=4)(torch.zeros(1, 3, 224, 224)).shape[-1] == 54


def test_alexnet_costs_match_a_forward_pass() -> None:
    """The chapter's total of multiply-adds and its split between conv and fc layers."""
    with torch.device("meta"):
        model = alexnet("paper")
    rows = shape_trace(model, (3, 227, 227))
    assert sum(r.macs for r in rows) == hook_macs(model, (1, 3, 227, 227))
    fc_params = sum(r.params for r in rows if r.type == "Linear")
    conv_macs = sum(r.macs for r in rows if r.type == "Conv2d")
    assert fc_params / count_parameters(model) > 0.95
    assert conv_macs / sum(r.macs for r in rows) > 0.9


def test_stacked_3x3_convolutions() -> None:
    """Two 3×3 see 5×5, three see 7×7, with 18/25 and 27/49 of the weights; without a ReLU two
    3×3 convolutions are one 5×5 convolution."""
    channels = 16
    for depth, field, single in ((2, 5, 25), (3, 7, 49)):
        stack = [nn.Conv2d(channels, channels, 3, padding=1, bias=False) for _ in range(depth)]
        assert receptive_field(stack)[-1].receptive_field == (field, field)
        weights = sum(count_parameters(m) for m in stack)
        big = nn.Conv2d(channels, channels, field, bias=False)
        assert weights / count_parameters(big) == pytest.approx(9 * depth / single)
    generator = torch.Generator().manual_seed(3)
    w1, w2 = (
        torch.randn(1, 1, 3, 3, generator=generator),
        torch.randn(1, 1, 3, 3, generator=generator),
    )
    x = torch.randn(2, 1, 9, 11, generator=generator)
    composed = F.conv_transpose2d(w1, w2)
    assert composed.shape[-2:] == (5, 5)
    torch.testing.assert_close(F.conv2d(F.conv2d(x, w1), w2), F.conv2d(x, composed))


def test_vgg16_forward_memory_counts_the_tensors_a_forward_pass_creates() -> None:
    """Conv, pool and linear outputs, plus the input: about 15.2 million float32 numbers."""
    with torch.device("meta"):
        model = vgg(16)
    costs = layer_costs(model, (3, 224, 224))
    kept = 3 * 224 * 224 * 4 + sum(
        c.activation_bytes for c in costs if c.type in ("Conv2d", "MaxPool2d", "Linear")
    )
    outputs = [3 * 224 * 224]
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: outputs.append(out.numel()))
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.MaxPool2d | nn.Linear)
    ]
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224, device="meta"))
    for hook in hooks:
        hook.remove()
    assert kept == 4 * sum(outputs)
    assert 60e6 < kept < 62e6
    assert sum(c.macs for c in costs) == hook_macs(model, (1, 3, 224, 224))


def test_one_by_one_convolution_is_a_linear_layer_per_pixel() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(7, 5, kernel_size=1)
    linear = nn.Linear(7, 5)
    with torch.no_grad():
        linear.weight.copy_(conv.weight.flatten(1))
        linear.bias.copy_(conv.bias)
        x = torch.randn(3, 7, 4, 6)
        torch.testing.assert_close(conv(x), linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))
    assert count_parameters(conv) == count_parameters(linear) == 7 * 5 + 5


def test_inception_3a_costs_with_and_without_reductions() -> None:
    """Closed-form multiply-adds at 28×28×192 against shape_trace of the module's branches."""
    _, c1, (r3, c3), (r5, c5), pool_proj = GOOGLENET_INCEPTIONS[0]
    module = Inception(192, c1, (r3, c3), (r5, c5), pool_proj)
    branches = (module.branch1, module.branch3, module.branch5, module.branch_pool)
    traced = sum(r.macs for b in branches for r in shape_trace(b, (192, 28, 28)))
    positions = 28 * 28
    reduced = positions * (192 * c1 + 192 * r3 + r3 * c3 * 9 + 192 * r5 + r5 * c5 * 25)
    reduced += positions * 192 * pool_proj
    naive = positions * (192 * c1 + 192 * c3 * 9 + 192 * c5 * 25)
    assert traced == reduced
    assert naive / reduced > 2.3
    assert module(torch.zeros(1, 192, 28, 28)).shape == (1, c1 + c3 + c5 + pool_proj, 28, 28)


def test_googlenet_size_and_cost() -> None:
    """About 7.0 million parameters, 1.58 billion multiply-adds, 22 layers deep."""
    with torch.device("meta"):
        model = googlenet()
    assert count_parameters(model) == 6_998_552
    macs = hook_macs(model, (1, 3, 224, 224))
    assert 1.55e9 < macs < 1.6e9
    stem = (("conv1", (3, 224, 224)), ("conv2_reduce", (64, 56, 56)), ("conv2", (64, 56, 56)))
    by_trace = sum(r.macs for name, shape in stem for r in shape_trace(getattr(model, name), shape))
    channels, grid = 192, 28
    for name, *_ in GOOGLENET_INCEPTIONS:
        module = getattr(model, f"inception{name}")
        for branch in (module.branch1, module.branch3, module.branch5, module.branch_pool):
            by_trace += sum(r.macs for r in shape_trace(branch, (channels, grid, grid)))
        channels = module.out_channels
        if name in ("3b", "4e"):
            grid //= 2
    by_trace += channels * 1000
    assert by_trace == macs
    convs_on_longest_path = 3 + 2 * len(GOOGLENET_INCEPTIONS)
    assert convs_on_longest_path + 1 == 22


def test_factorised_convolutions_keep_the_receptive_field() -> None:
    for n in (3, 5, 7):
        pair = [
            nn.Conv2d(8, 8, (n, 1), padding=(n // 2, 0)),
            nn.Conv2d(8, 8, (1, n), padding=(0, n // 2)),
        ]
        assert receptive_field(pair)[-1].receptive_field == (n, n)
        weights = sum(m.weight.numel() for m in pair)
        assert weights / nn.Conv2d(8, 8, n).weight.numel() == pytest.approx(2 / n)
    column = torch.tensor([1.0, 2.0, 1.0]).reshape(1, 1, 3, 1)
    row = torch.tensor([1.0, 0.0, -1.0]).reshape(1, 1, 1, 3)
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    outer = (column.reshape(3, 1) @ row.reshape(1, 3)).reshape(1, 1, 3, 3)
    torch.testing.assert_close(F.conv2d(F.conv2d(x, column), row), F.conv2d(x, outer))


def test_shape_trace_rejects_a_wrong_input_with_a_clear_message() -> None:
    """The chapters rely on these messages to explain what went wrong."""
    with torch.device("meta"):
        model = vgg(11)
    with pytest.raises(ValueError, match="in_channels is 3 but the input has 1 channels"):
        shape_trace(model, (1, 224, 224))
