"""The model zoo against PyTorch's: same parameters in the same order, same outputs.

torchvision's architectures are built without weights (nothing is downloaded); its freshly
initialised weights are copied into ours in order, and both models must then compute the same
function. A wrong kernel size, stride, channel count, block order or missing layer fails.
"""

from __future__ import annotations

import pytest
import torch
import torchvision.models as tvm
from torch import nn

from course_lib import (
    count_multiply_adds,
    count_parameters,
    format_summary,
    layer_costs,
    model_summary,
)
from course_lib.models import (
    GOOGLENET_INCEPTIONS,
    BasicBlock,
    Bottleneck,
    ConvNeXtBlock,
    DenseLayer,
    Inception,
    alexnet,
    convnext,
    densenet,
    googlenet,
    nin,
    resnet,
    resnet_cifar,
    vgg,
    vgg_block,
)

PAIRS = {
    "alexnet": (lambda: alexnet(), lambda: tvm.alexnet(), 64),
    "vgg11_bn": (lambda: vgg(11, batch_norm=True), lambda: tvm.vgg11_bn(), 32),
    "vgg16": (lambda: vgg(16), lambda: tvm.vgg16(), 32),
    "resnet18": (lambda: resnet(18), lambda: tvm.resnet18(), 64),
    "resnet50": (lambda: resnet(50), lambda: tvm.resnet50(), 64),
    "densenet121": (lambda: densenet(121), lambda: tvm.densenet121(), 64),
    "convnext_tiny": (lambda: convnext("tiny"), lambda: tvm.convnext_tiny(), 64),
}


def copy_in_order(source: nn.Module, target: nn.Module) -> None:
    """Copy every parameter and buffer of ``source`` into ``target``, matched by position."""
    source_state, target_state = source.state_dict(), target.state_dict()
    assert len(source_state) == len(target_state), (
        f"{len(source_state)} tensors in torchvision's model, {len(target_state)} in ours"
    )
    new_state = {}
    for (s_name, s_value), (t_name, t_value) in zip(
        source_state.items(), target_state.items(), strict=True
    ):
        assert s_value.shape == t_value.shape, (
            f"{s_name} {s_value.shape} vs {t_name} {t_value.shape}"
        )
        new_state[t_name] = s_value.clone()
    target.load_state_dict(new_state)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_zoo_model_computes_what_torchvision_computes(name: str) -> None:
    ours_fn, theirs_fn, size = PAIRS[name]
    torch.manual_seed(0)
    ours, theirs = ours_fn(), theirs_fn()
    assert count_parameters(ours) == count_parameters(theirs)
    copy_in_order(theirs, ours)
    ours.eval()
    theirs.eval()
    for module in theirs.modules():  # make batch norm's running statistics non-trivial
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    copy_in_order(theirs, ours)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-4)


def test_alexnet_paper_variant_sizes_and_parameters() -> None:
    """227×227 input: 55, 27, 13, 13, 13, 6; the two-GPU split gives about 61 million weights."""
    model = alexnet("paper")
    sizes = {}
    hooks = [
        getattr(model, name).register_forward_hook(
            lambda _m, _i, out, name=name: sizes.__setitem__(name, tuple(out.shape[1:]))
        )
        for name in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5")
    ]
    with torch.no_grad():
        model(torch.zeros(1, 3, 227, 227))
    for hook in hooks:
        hook.remove()
    assert sizes["conv1"] == (96, 55, 55)
    assert sizes["pool1"] == (96, 27, 27)
    assert sizes["conv2"] == (256, 27, 27)
    assert sizes["pool2"] == (256, 13, 13)
    assert sizes["conv5"] == (256, 13, 13)
    assert sizes["pool5"] == (256, 6, 6)
    assert model.conv2.groups == 2 and model.conv3.groups == 1
    assert 60_000_000 < count_parameters(model) < 61_000_000
    with pytest.raises(ValueError, match="variant must be 'paper' or 'torchvision'"):
        alexnet("caffe")


def test_googlenet_follows_the_papers_table() -> None:
    """Output sizes of Table 1: 28×28×256 after 3a ... 7×7×1024 after 5b."""
    expected = {
        "3a": (256, 28),
        "3b": (480, 28),
        "4a": (512, 14),
        "4b": (512, 14),
        "4c": (512, 14),
        "4d": (528, 14),
        "4e": (832, 14),
        "5a": (832, 7),
        "5b": (1024, 7),
    }
    model = googlenet().to("meta")
    sizes = {}
    for name, *_ in GOOGLENET_INCEPTIONS:
        getattr(model, f"inception{name}").register_forward_hook(
            lambda _m, _i, out, name=name: sizes.__setitem__(name, (out.shape[1], out.shape[2]))
        )
    out = model(torch.zeros(2, 3, 224, 224, device="meta"))
    assert out.shape == (2, 1000)
    assert sizes == expected
    block = Inception(192, 64, (96, 128), (16, 32), 32)
    assert block(torch.zeros(1, 192, 9, 9)).shape == (1, 256, 9, 9)


def test_resnet_cifar_is_the_papers_small_network() -> None:
    """ResNet-20: 0.27M parameters (Table 6 of the paper); option A shortcuts have none."""
    model = resnet_cifar(3)
    assert round(count_parameters(model) / 1e6, 2) == 0.27
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(layers) == 6 * 3 + 2
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    plain = resnet_cifar(3, shortcut=None, in_channels=1)
    assert plain(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert all(block.shortcut is None for block in plain.modules() if isinstance(block, BasicBlock))


def test_residual_blocks_add_their_shortcut() -> None:
    """With the residual branch's last BN scale at 0 a block is relu(shortcut(x))."""
    torch.manual_seed(1)
    for block in (BasicBlock(8, 8), Bottleneck(32, 8)):
        last_bn = block.bn2 if isinstance(block, BasicBlock) else block.bn3
        nn.init.zeros_(last_bn.weight)
        nn.init.zeros_(last_bn.bias)
        x = torch.randn(2, block.conv1.in_channels, 6, 6)
        torch.testing.assert_close(block(x), torch.relu(x))
    down = BasicBlock(8, 16, stride=2)
    assert down(torch.randn(1, 8, 6, 6)).shape == (1, 16, 3, 3)
    with pytest.raises(ValueError, match="shortcut must be 'A', 'B' or None"):
        BasicBlock(8, 16, 2, shortcut="C")


def test_dense_layer_appends_growth_rate_channels() -> None:
    layer = DenseLayer(24, growth_rate=12)
    x = torch.randn(2, 24, 5, 5)
    out = layer(x)
    assert out.shape == (2, 36, 5, 5)
    torch.testing.assert_close(out[:, :24], x)  # the input passes through unchanged
    small = densenet(
        121,
        num_classes=10,
        in_channels=1,
        growth_rate=12,
        block_layers=(4, 4, 4),
        init_features=24,
        small=True,
    )
    assert small(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_densenet_stem_stride_halves_the_maps_before_the_first_block() -> None:
    def build(stem_stride: int, small: bool = True) -> nn.Sequential:
        return densenet(121, num_classes=10, in_channels=1, growth_rate=12,
                        block_layers=(2, 2), init_features=16, small=small,
                        stem_stride=stem_stride)  # fmt: skip

    strided, plain = build(2), build(1)
    x = torch.randn(2, 1, 28, 28)
    assert strided[0](x).shape == (2, 16, 14, 14)
    assert plain[0](x).shape == (2, 16, 28, 28)
    assert strided(x).shape == (2, 10)
    # the same layers and weights, a quarter of the work in every layer after the stem
    assert count_parameters(strided) == count_parameters(plain)
    stem_macs = 16 * 9 * 14 * 14
    assert (
        count_multiply_adds(strided, (1, 1, 28, 28)) - stem_macs
        < (count_multiply_adds(plain, (1, 1, 28, 28)) - 4 * stem_macs) / 3.9
    )
    with pytest.raises(ValueError, match="stem_stride must be 1 or 2"):
        build(3)
    with pytest.raises(ValueError, match="small stem only"):
        build(2, small=False)


def test_convnext_block_starts_near_the_identity() -> None:
    torch.manual_seed(2)
    block = ConvNeXtBlock(16)
    x = torch.randn(2, 16, 7, 7)
    assert (block(x) - x).abs().max() < 1e-4
    small = convnext(channels=(16, 32), depths=(1, 1), stem_stride=2, num_classes=10, in_channels=1)
    assert small(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="one entry per stage"):
        convnext(channels=(16, 32), depths=(1,))


def test_convnext_layer_scale_sets_where_every_block_starts() -> None:
    def scales(model: nn.Module) -> set[float]:
        blocks = [m for m in model.modules() if isinstance(m, ConvNeXtBlock)]
        assert len(blocks) == 3
        return {v for b in blocks for v in b.layer_scale.detach().flatten().tolist()}

    small = {"channels": (8, 16), "depths": (1, 2), "stem_stride": 2, "in_channels": 1}
    assert scales(convnext(**small)) == {torch.tensor(1e-6).item()}  # 1e-6 in float32
    torch.manual_seed(0)
    opened = convnext(**small, layer_scale=1.0)
    assert scales(opened) == {1.0}
    block = next(m for m in opened.modules() if isinstance(m, ConvNeXtBlock))
    x = torch.randn(2, 8, 7, 7)
    assert (block(x) - x).abs().max() > 1e-2  # a block that starts at scale 1 is no identity
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="layer_scale must be > 0"):
            convnext(**small, layer_scale=bad)


def test_nin_and_vgg_blocks() -> None:
    assert nin(num_classes=10, in_channels=1, small=True)(torch.zeros(2, 1, 28, 28)).shape == (
        2,
        10,
    )
    assert nin()(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)
    assert not any(isinstance(m, nn.Linear) for m in nin().modules())
    assert vgg_block(2, 3, 8)(torch.zeros(1, 3, 16, 16)).shape == (1, 8, 8, 8)


@pytest.mark.parametrize(
    ("builder", "message"),
    [
        (lambda: vgg(15), "depth must be one of"),
        (lambda: resnet(20), "depth must be one of"),
        (lambda: densenet(100), "depth must be one of"),
        (lambda: convnext("huge"), "variant must be one of"),
        (lambda: resnet_cifar(0), "n must be a positive int"),
        (lambda: resnet(18, num_classes=0), "num_classes must be a positive int"),
    ],
)
def test_zoo_rejects_unknown_layouts(builder, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        builder()


def test_model_summary_follows_branches_and_shortcuts() -> None:
    model = resnet(18)
    rows = model_summary(model, (2, 3, 224, 224))
    assert [(r.name, r.output_shape) for r in rows] == [
        ("stem", (2, 64, 56, 56)),
        ("stages", (2, 512, 7, 7)),
        ("pool", (2, 512, 1, 1)),
        ("fc", (2, 1000)),
    ]
    assert sum(r.params for r in rows) == count_parameters(model)
    assert model.training  # the mode is restored
    stages = model_summary(model.to("meta"), (1, 3, 224, 224), depth=2)
    assert [r.output_shape[1:] for r in stages if r.name.startswith("stages.")] == [
        (64, 56, 56),
        (128, 28, 28),
        (256, 14, 14),
        (512, 7, 7),
    ]
    text = format_summary(rows)
    assert "stages" in text and f"{count_parameters(model):,}" in text
    with pytest.raises(ValueError, match="input_shape must be"):
        model_summary(model, (3, 0, 4))


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "convnext_tiny", "vgg16"])
def test_multiply_adds_agree_with_torchs_flop_counter(name: str) -> None:
    """PyTorch's FlopCounterMode counts 2 flops per multiply-add of every convolution and
    matrix product; layer_costs (analytical, plain stacks) must agree too."""
    from torch.utils.flop_counter import FlopCounterMode

    model = PAIRS[name][0]().eval()
    x = torch.zeros(1, 3, 64, 64)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    ours = count_multiply_adds(model, (1, 3, 64, 64))
    assert ours * 2 == counter.get_total_flops()
    rows = model_summary(model, (1, 3, 64, 64))
    assert sum(r.macs for r in rows) == ours and all(r.macs >= 0 for r in rows)
    if name == "vgg16":
        assert ours == sum(c.macs for c in layer_costs(model, (3, 64, 64)))
    # the batch multiplies the count
    assert count_multiply_adds(model.to("meta"), (4, 3, 64, 64)) == 4 * ours


def test_alexnet_paper_normalisation_is_the_papers_formula() -> None:
    """b = a / (k + 1e-4 * sum of a^2 over the 5 channels around it)^0.75, k = 2."""
    torch.manual_seed(3)
    a = torch.randn(2, 9, 4, 4) * 30
    squares = torch.nn.functional.pad(a**2, (0, 0, 0, 0, 2, 2))
    window_sums = sum(squares[:, i : i + 9] for i in range(5))
    expected = a / (2 + 1e-4 * window_sums) ** 0.75
    torch.testing.assert_close(alexnet("paper").norm1(a), expected)
