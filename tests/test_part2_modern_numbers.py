"""Claims of the chapters on ResNet/DenseNet and ConvNeXt, checked independently.

The chapters count multiply-adds with course_lib's ``count_multiply_adds`` (forward hooks);
here PyTorch's own FLOP counter gives the reference (it counts 2 FLOPs per multiply-add). The
channel arithmetic, the parameter formulas of the blocks, the normalisation axes and the
stochastic-depth schedule are checked against formulas and reference computations written out in
full.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course_lib import count_multiply_adds, count_parameters
from course_lib.models import (
    BasicBlock,
    Bottleneck,
    ConvNeXtBlock,
    DenseBlock,
    LayerNorm2d,
    convnext,
    densenet,
    resnet,
    resnet_cifar,
)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def pytorch_multiply_adds(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(torch.zeros(input_shape, device=_device(model)))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize(
    "build, shape",
    [
        (lambda: resnet(18), (1, 3, 224, 224)),
        (lambda: resnet(50), (1, 3, 224, 224)),
        (lambda: densenet(121), (1, 3, 224, 224)),
        (lambda: convnext("tiny"), (1, 3, 224, 224)),
        (lambda: resnet_cifar(3, shortcut="B"), (1, 3, 32, 32)),
    ],
)
def test_multiply_adds_match_pytorch_flop_counter(build, shape) -> None:
    with torch.device("meta"):  # shapes only: no memory, no arithmetic
        model = build()
    assert count_multiply_adds(model, shape) == pytorch_multiply_adds(model, shape)


def test_resnet50_multiply_adds_and_the_stride_placement() -> None:
    # ~4.09 G with the stride on the 3x3 convolution (torchvision), ~3.86 G on the first 1x1.
    with torch.device("meta"):
        model = resnet(50)
    ours = pytorch_multiply_adds(model, (1, 3, 224, 224))
    for module in model.modules():
        if isinstance(module, Bottleneck) and module.conv2.stride == (2, 2):
            module.conv1.stride, module.conv2.stride = (2, 2), (1, 1)
    paper_style = pytorch_multiply_adds(model, (1, 3, 224, 224))
    assert round(ours / 1e9, 2) == 4.09
    assert round(paper_style / 1e9, 2) == 3.86


def test_basic_and_bottleneck_block_parameters_follow_the_formulas() -> None:
    c = 256
    basic = count_parameters(BasicBlock(c, c))
    assert basic == 2 * 9 * c * c + 2 * 2 * c  # two 3x3 convs, two batch norms
    bottleneck = count_parameters(Bottleneck(c, c // 4))
    width = c // 4
    convs = c * width + 9 * width * width + width * c
    norms = 2 * width + 2 * width + 2 * c
    assert bottleneck == convs + norms


def test_densenet121_channel_arithmetic() -> None:
    model = densenet(121)
    blocks = [m for m in model if isinstance(m, DenseBlock)]
    assert [b.out_channels for b in blocks] == [256, 512, 1024, 1024]
    transitions = [m[2].out_channels for m in model if type(m) is nn.Sequential]
    assert transitions == [128, 256, 512]
    assert count_parameters(resnet(50)) / count_parameters(model) > 3


def test_depthwise_7x7_against_dense_3x3() -> None:
    for c in (96, 384):
        dense = nn.Conv2d(c, c, 3, padding=1, bias=False)
        depthwise = nn.Conv2d(c, c, 7, padding=3, groups=c, bias=False)
        assert count_parameters(dense) / count_parameters(depthwise) == pytest.approx(9 * c / 49)


def test_layer_norm_2d_normalises_channels_per_pixel_independently_of_the_batch() -> None:
    generator = torch.Generator().manual_seed(0)
    x = 3 + 2 * torch.randn(6, 5, 4, 4, generator=generator)
    norm = LayerNorm2d(5)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(5, generator=generator))
        norm.bias.copy_(torch.randn(5, generator=generator))
    mean = x.mean(dim=1, keepdim=True)
    var = x.var(dim=1, unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + norm.eps)
    expected = expected * norm.weight[:, None, None] + norm.bias[:, None, None]
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)
    # one image in two batches: LayerNorm gives the same output, BatchNorm (training) does not
    other = torch.cat([x[:1], torch.randn(5, 5, 4, 4, generator=generator)])
    torch.testing.assert_close(norm(x)[0], norm(other)[0])
    batch_norm = nn.BatchNorm2d(5).train()
    assert (batch_norm(x)[0] - batch_norm(other)[0]).abs().max() > 0.1


def test_convnext_stochastic_depth_schedule_and_skipping() -> None:
    model = convnext("tiny", drop_path=0.1)
    rates = [m.drop_path for m in model.modules() if isinstance(m, ConvNeXtBlock)]
    assert rates == pytest.approx([0.1 * i / 17 for i in range(18)])
    block = ConvNeXtBlock(4, layer_scale=1.0, drop_path=0.25).train()
    torch.manual_seed(0)
    x = torch.randn(8000, 4, 1, 1)
    skipped = (block(x) == x).flatten(1).all(dim=1).float().mean().item()
    assert skipped == pytest.approx(0.25, abs=0.02)
    block.eval()
    assert not (block(x) == x).flatten(1).all(dim=1).any()


def test_plain_network_gradients_grow_towards_the_input_residual_ones_do_not() -> None:
    x = torch.randn(32, 1, 14, 14, generator=torch.Generator().manual_seed(0))
    y = torch.arange(32) % 10
    ratios = {}
    for shortcut in (None, "A"):
        torch.manual_seed(0)
        model = resnet_cifar(7, in_channels=1, shortcut=shortcut)
        F.cross_entropy(model(x), y).backward()
        first = model.stem[0].weight.grad.norm()
        last = model.stages[-1][-1].conv2.weight.grad.norm()
        ratios[shortcut] = (first / last).item()
    assert ratios[None] > 10 * ratios["A"]


def test_bad_inputs_are_rejected_with_clear_messages() -> None:
    with pytest.raises(ValueError, match=r"drop_path must be in \[0, 1\)"):
        ConvNeXtBlock(8, drop_path=1.0)
    with pytest.raises(ValueError, match="shortcut must be 'A', 'B' or None"):
        resnet_cifar(1, shortcut="C")
    with pytest.raises(ValueError, match="channels and depths need one entry per stage"):
        convnext(channels=(32, 64), depths=(1,))
