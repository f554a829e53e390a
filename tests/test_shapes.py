"""Output sizes, receptive fields, parameter counts and shape traces against running PyTorch."""

from __future__ import annotations

import itertools
import math
import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import (
    LayerCost,
    ReceptiveFieldRow,
    TraceRow,
    conv_output_size,
    count_multiply_adds,
    count_parameters,
    format_trace,
    layer_costs,
    layer_parameters,
    model_summary,
    pool_output_size,
    receptive_field,
    shape_trace,
)

# thousands of tiny operations: see the one_thread fixture in conftest.py
pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------------
# conv_output_size / pool_output_size
# ---------------------------------------------------------------------------------------------


def _torch_conv_size(n, k, s, p, d):
    x = torch.zeros(1, 1, n, 1)
    w = torch.zeros(1, 1, k, 1)
    return F.conv2d(x, w, stride=(s, 1), padding=(p, 0), dilation=(d, 1)).shape[2]


def test_conv_output_size_matches_conv2d_on_a_grid():
    checked = 0
    for n, k, s, p, d in itertools.product(
        range(1, 12), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2)
    ):
        effective = d * (k - 1) + 1
        if effective > n + 2 * p:
            with pytest.raises(ValueError, match="larger than the padded input"):
                conv_output_size(n, k, s, p, d)
            if s == 1:  # PyTorch refuses these too (checked once per size: raising is slow)
                with pytest.raises(RuntimeError):
                    _torch_conv_size(n, k, s, p, d)
            continue
        assert conv_output_size(n, k, s, p, d) == _torch_conv_size(n, k, s, p, d), (n, k, s, p, d)
        checked += 1
    assert checked > 350


def test_conv_output_size_textbook_formula():
    # (W - F + 2P) / S + 1 when the division is exact
    assert conv_output_size(28, 5, 1, 2) == (28 - 5 + 2 * 2) // 1 + 1
    assert conv_output_size(227, 11, 4) == (227 - 11) // 4 + 1


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_output_size_matches_pytorch(kind, ceil_mode):
    checked = 0
    for n, k, s, p in itertools.product(range(1, 13), (1, 2, 3, 4), (1, 2, 3), (0, 1, 2)):
        if 2 * p > k:  # refused by both (test below); raising is slow in PyTorch
            continue
        x = torch.zeros(1, 1, n, 1)
        try:
            if kind == "max":
                expected = F.max_pool2d(x, (k, 1), (s, 1), (p, 0), ceil_mode=ceil_mode).shape[2]
            else:
                expected = F.avg_pool2d(x, (k, 1), (s, 1), (p, 0), ceil_mode=ceil_mode).shape[2]
        except RuntimeError:
            with pytest.raises(ValueError):
                pool_output_size(n, k, s, p, ceil_mode=ceil_mode)
            continue
        assert pool_output_size(n, k, s, p, ceil_mode=ceil_mode) == expected, (n, k, s, p)
        checked += 1
    assert checked > 100


def test_pool_output_size_dilation_matches_max_pool():
    checked = 0
    for n, k, s, d in itertools.product(range(3, 12), (2, 3), (1, 2), (1, 2, 3)):
        x = torch.zeros(1, 1, n, 1)
        for ceil_mode in (False, True):
            try:
                expected = F.max_pool2d(x, (k, 1), (s, 1), dilation=(d, 1), ceil_mode=ceil_mode)
            except RuntimeError:
                with pytest.raises(ValueError, match="dilated"):
                    pool_output_size(n, k, s, dilation=d, ceil_mode=ceil_mode)
                continue
            assert pool_output_size(n, k, s, dilation=d, ceil_mode=ceil_mode) == expected.shape[2]
            checked += 1
    assert checked > 150


def test_pool_ceil_mode_drops_a_window_starting_in_the_right_padding():
    # n=4, k=2, s=2, p=1: ceil((4+2-2)/2)+1 = 3 windows, starting at -1, 1, 3 -> all start
    # inside input or left padding, so 3 stay. n=5, k=2, s=3, p=1 : ceil(5/3)+1 = 3 windows,
    # starting at -1, 2, 5: 5 is beyond the input, so only 2 stay.
    assert pool_output_size(4, 2, 2, 1, ceil_mode=True) == 3
    assert pool_output_size(5, 2, 3, 1, ceil_mode=True) == 2
    assert pool_output_size(5, 2, 3, 1, ceil_mode=False) == 2


def test_stride_defaults_to_kernel_size_for_pooling():
    assert pool_output_size(28, 2) == 14
    assert pool_output_size(7, 3) == 2


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"kernel_size": 0}, "kernel_size"),
        ({"stride": 0}, "stride"),
        ({"padding": -1}, "padding"),
        ({"dilation": 0}, "dilation"),
    ],
)
def test_out_of_range_arguments_are_named(kwargs, name):
    args = {"n": 10, "kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=name):
        conv_output_size(**args)
    with pytest.raises(ValueError, match=name):
        pool_output_size(**args)


def test_too_large_kernel_message_gives_dilated_size_and_padded_input():
    with pytest.raises(
        ValueError, match=r"kernel 5 \(dilated 5\) is larger than the padded input 4"
    ):
        conv_output_size(4, 5)
    with pytest.raises(
        ValueError, match=r"kernel 3 \(dilated 5\) is larger than the padded input 4"
    ):
        conv_output_size(2, 3, padding=1, dilation=2)


def test_pool_padding_limited_to_half_the_kernel():
    with pytest.raises(ValueError, match="at most half"):
        pool_output_size(10, 2, padding=2)
    with pytest.raises(RuntimeError, match="half"):
        F.max_pool2d(torch.zeros(1, 1, 10, 10), 2, padding=2)


def test_non_int_arguments_are_refused():
    with pytest.raises(TypeError, match="kernel_size"):
        conv_output_size(10, 2.5)
    with pytest.raises(TypeError, match="stride"):
        conv_output_size(10, 3, stride=True)


# ---------------------------------------------------------------------------------------------
# receptive_field
# ---------------------------------------------------------------------------------------------


def _linearised(layers):
    """The same stack with positive weights, no non-linearity and average instead of max
    pooling, so that every input pixel in the receptive field gets a non-zero gradient."""
    out = []
    for m in layers:
        if isinstance(m, nn.Conv2d):
            conv = nn.Conv2d(
                m.in_channels,
                m.out_channels,
                m.kernel_size,
                m.stride,
                m.padding,
                m.dilation,
                bias=False,
            )
            nn.init.constant_(conv.weight, 1.0)
            out.append(conv)
        elif isinstance(m, nn.MaxPool2d):
            assert m.dilation in (1, (1, 1))
            out.append(nn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode))
        elif isinstance(m, nn.AvgPool2d | nn.ZeroPad2d):
            out.append(m)
    return nn.Sequential(*out).double()


def _measured_field(layers, size, row, col):
    net = _linearised(layers)
    x = torch.zeros(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    y = net(x + 1.0)
    y[0, 0, row, col].backward()
    nz = torch.nonzero(x.grad[0, 0])
    rows, cols = nz[:, 0], nz[:, 1]
    return (
        (int(rows.min()), int(rows.max())),
        (int(cols.min()), int(cols.max())),
    )


STACKS = [
    [nn.Conv2d(1, 1, 3), nn.ReLU(), nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3)],
    [
        nn.Conv2d(1, 1, 5, padding=2),
        nn.MaxPool2d(2),
        nn.Conv2d(1, 1, 5, padding=2),
        nn.MaxPool2d(2),
    ],
    [nn.Conv2d(1, 1, 3, stride=2, padding=1), nn.Conv2d(1, 1, 3, dilation=2), nn.AvgPool2d(3, 2)],
    [nn.Conv2d(1, 1, (3, 5), stride=(1, 2)), nn.BatchNorm2d(1), nn.Conv2d(1, 1, (5, 3))],
    [nn.ZeroPad2d(2), nn.Conv2d(1, 1, 5), nn.AvgPool2d(2), nn.Conv2d(1, 1, 5), nn.AvgPool2d(2)],
    [nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding="same", dilation=3)],
]


@pytest.mark.parametrize("stack", range(len(STACKS)))
def test_receptive_field_matches_the_gradient_footprint(stack):
    layers = STACKS[stack]
    size = 41
    rows = receptive_field(layers, input_size=size)
    assert all(isinstance(r, ReceptiveFieldRow) for r in rows)
    last = rows[-1]
    out = _linearised(layers)(torch.zeros(1, 1, size, size, dtype=torch.float64))
    assert last.output_size == tuple(out.shape[2:])
    # a unit in the middle of the output, far from the borders, so no padding clips the field
    row, col = out.shape[2] // 2, out.shape[3] // 2
    (r0, r1), (c0, c1) = _measured_field(layers, size, row, col)
    assert (r1 - r0 + 1, c1 - c0 + 1) == last.receptive_field
    # the centre of that field is start + index * jump
    assert (r0 + r1) / 2 == last.start[0] + row * last.jump[0]
    assert (c0 + c1) / 2 == last.start[1] + col * last.jump[1]


def test_receptive_field_of_three_stacked_3x3_convolutions_is_7():
    rows = receptive_field([nn.Conv2d(1, 1, 3) for _ in range(3)])
    assert [r.receptive_field for r in rows] == [(3, 3), (5, 5), (7, 7)]
    assert [r.jump for r in rows] == [(1, 1)] * 3
    assert rows[0].output_size is None


def test_receptive_field_recurrence_with_strides():
    layers = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3))
    r, j = 1, 1
    expected = []
    for k, s in ((3, 2), (2, 2), (3, 1)):
        r, j = r + (k - 1) * j, j * s
        expected.append((r, j))
    got = [(row.receptive_field[0], row.jump[0]) for row in receptive_field(layers)]
    assert got == expected


def test_receptive_field_stops_at_flatten_and_names_unknown_layers():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2, 2))
    assert [r.name for r in receptive_field(model)] == ["0"]
    with pytest.raises(TypeError, match="Upsample"):
        receptive_field([nn.Conv2d(1, 1, 3), nn.Upsample(scale_factor=2)])


# ---------------------------------------------------------------------------------------------
# count_parameters / layer_parameters
# ---------------------------------------------------------------------------------------------


def test_count_parameters_against_formula_and_trainable_only():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 5))
    conv = 8 * (3 * 3 * 3) + 8
    bn = 2 * 8
    fc = 8 * 5 + 5
    assert count_parameters(model) == conv + bn + fc
    for p in model[0].parameters():
        p.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == bn + fc
    assert count_parameters(model) == conv + bn + fc


def test_count_parameters_counts_shared_parameters_once():
    layer = nn.Linear(4, 4)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert count_parameters(model) == 4 * 4 + 4


def test_layer_parameters_per_layer_sum_to_total():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, groups=1, bias=False), nn.Conv2d(4, 8, 3, groups=2))
    counts = layer_parameters(model)
    assert counts == {"0": 4 * 9, "1": 8 * (4 // 2) * 9 + 8}
    assert sum(counts.values()) == count_parameters(model)
    with pytest.raises(TypeError, match="Module"):
        count_parameters([1, 2])


# ---------------------------------------------------------------------------------------------
# shape_trace against running the model
# ---------------------------------------------------------------------------------------------


SIZE = 23
CHANNELS = 3


def _random_model(rng: random.Random) -> nn.Sequential:
    """A random stack of supported layers whose sizes stay valid."""
    layers: list[nn.Module] = []
    channels, height, width = CHANNELS, SIZE, SIZE
    for _ in range(rng.randint(2, 6)):
        size = min(height, width)
        choice = rng.choice(["conv", "conv", "maxpool", "avgpool", "bn", "act", "pad"])
        if choice == "conv":
            k = rng.choice([1, 2, 3, 5])
            s = rng.choice([1, 1, 2, 3])
            d = rng.choice([1, 1, 2])
            groups = rng.choice([g for g in (1, 2, 3) if channels % g == 0])
            out = groups * rng.randint(1, 4)
            if s == 1 and rng.random() < 0.3:
                padding = rng.choice(["same", "valid"])
            else:
                padding = rng.choice([0, 1, 2, (1, 0)])
            smallest_pad = 0 if isinstance(padding, str) else min(nn.modules.utils._pair(padding))
            if padding != "same" and d * (k - 1) + 1 > size + 2 * smallest_pad:
                continue
            layers.append(nn.Conv2d(channels, out, k, s, padding, d, groups=groups))
        elif choice in ("maxpool", "avgpool"):
            k = rng.choice([2, 3])
            p = rng.choice([0, 1])
            if k > size + 2 * p:
                continue
            cls = nn.MaxPool2d if choice == "maxpool" else nn.AvgPool2d
            layers.append(cls(k, rng.choice([None, 1, 2]), p, ceil_mode=rng.random() < 0.5))
        elif choice == "bn":
            layers.append(nn.BatchNorm2d(channels))
        elif choice == "act":
            layers.append(rng.choice([nn.ReLU(), nn.Tanh(), nn.GELU(), nn.Dropout(0.5)]))
        else:
            layers.append(nn.ZeroPad2d(rng.choice([1, (1, 2, 0, 1)])))
        # the analytical shape keeps the next layers valid (it is checked against PyTorch later)
        channels, height, width = shape_trace(layers, (CHANNELS, SIZE, SIZE))[-1].output_shape
    tail = rng.choice(["flatten", "gap", "adaptive"])
    if tail == "gap":
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    elif tail == "adaptive":
        layers += [nn.AdaptiveMaxPool2d((2, None)), nn.Flatten()]
    else:
        layers.append(nn.Flatten())
    (features,) = shape_trace(layers, (CHANNELS, SIZE, SIZE))[-1].output_shape
    layers += [nn.Linear(features, 7), nn.LayerNorm(7), nn.ReLU(), nn.Linear(7, 3)]
    return nn.Sequential(*layers)


@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
def test_shape_trace_matches_running_many_random_models():
    rng = random.Random(7)
    models_checked = 0
    for _ in range(60):
        model = _random_model(rng).eval()
        rows = shape_trace(model, (2, CHANNELS, SIZE, SIZE))
        x = torch.randn(2, CHANNELS, SIZE, SIZE)
        for row, layer in zip(rows, model, strict=True):
            x = layer(x)
            assert row.output_shape == tuple(x.shape), (row, model)
            assert row.activations == x.numel()
            assert row.params == sum(p.numel() for p in layer.parameters())
        models_checked += 1
    assert models_checked == 60


def test_shape_trace_flattens_nested_sequentials_with_dotted_names():
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sequential(nn.ReLU())))
    model.add_module("head", nn.Sequential(nn.Flatten(), nn.Linear(4 * 6 * 6, 2)))
    rows = shape_trace(model, (1, 8, 8))
    assert [r.name for r in rows] == ["features.0", "features.1.0", "head.0", "head.1"]
    assert rows[-1].output_shape == (2,)
    assert model(torch.randn(1, 1, 8, 8)).shape == (1, 2)


def test_shape_trace_without_batch_axis_drops_it_from_every_row():
    model = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.Flatten(), nn.Linear(5 * 4 * 4, 2))
    rows = shape_trace(model, (3, 4, 4))
    assert [r.output_shape for r in rows] == [(5, 4, 4), (80,), (2,)]
    batched = shape_trace(model, (6, 3, 4, 4))
    assert [r.output_shape for r in batched] == [(6, 5, 4, 4), (6, 80), (6, 2)]


def test_macs_against_the_manual_formula():
    conv = nn.Conv2d(6, 12, (3, 5), stride=2, padding=1, groups=3)
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten())
    rows = shape_trace(model, (4, 6, 20, 21))
    n, c_out, h_out, w_out = rows[0].output_shape
    assert rows[0].macs == n * c_out * h_out * w_out * (6 // 3) * 3 * 5
    assert rows[1].macs == 0
    features = rows[-1].output_shape[1]
    fc = shape_trace(nn.Sequential(nn.Linear(features, 9)), (4, features))
    assert fc[0].macs == 4 * features * 9


def test_count_multiply_adds_of_a_bare_conv2d_and_linear_layer():
    """A layer that is the whole model (no sub-modules) is counted, on CPU and on meta."""
    conv = nn.Conv2d(6, 12, (3, 5), stride=2, padding=1, groups=3)
    out = conv(torch.zeros(2, 6, 20, 21))
    expected = out.numel() * (6 // 3) * 3 * 5
    assert count_multiply_adds(conv, (2, 6, 20, 21)) == expected > 0
    with torch.device("meta"):
        depthwise = nn.Conv2d(96, 96, 7, padding=3, groups=96, bias=False)
    assert count_multiply_adds(depthwise, (1, 96, 56, 56)) == 96 * 56 * 56 * 49
    linear = nn.Linear(30, 7)
    assert count_multiply_adds(linear, (5, 30)) == 5 * 30 * 7
    # the same layer inside a Sequential gives the same count, and model_summary agrees
    assert count_multiply_adds(nn.Sequential(conv), (2, 6, 20, 21)) == expected
    (row,) = model_summary(conv, (2, 6, 20, 21))
    assert (row.name, row.output_shape, row.macs) == ("Conv2d", tuple(out.shape), expected)
    assert conv.training  # the mode is restored


def test_count_multiply_adds_counts_a_layer_each_time_it_runs():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.fc(x))

    assert count_multiply_adds(Twice(), (3, 8)) == 2 * 3 * 8 * 8
    with pytest.raises(ValueError, match="input_shape must be"):
        count_multiply_adds(nn.Linear(8, 8), (0, 8))


def test_macs_equal_the_multiplications_of_an_unfolded_convolution():
    # im2col view: each output value is one dot product of length C_in/groups * kh * kw
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False)
    x = torch.randn(1, 4, 9, 9)
    cols = F.unfold(x, 3, padding=1, stride=2)  # (1, 4*9, L)
    products = conv.weight.numel() * cols.shape[-1]  # 6 outputs * 36 weights * L positions
    assert shape_trace(nn.Sequential(conv), (1, 4, 9, 9))[0].macs == products


def test_linear_mismatch_names_the_layer_and_both_sizes():
    model = nn.Sequential()
    model.add_module("conv", nn.Conv2d(1, 16, 3))
    model.add_module("flatten", nn.Flatten())
    model.add_module("fc", nn.Linear(400, 10))
    with pytest.raises(ValueError, match=r"'fc'.*in_features is 400.*576 features") as info:
        shape_trace(model, (1, 8, 8))
    assert "Linear" in str(info.value)
    with pytest.raises(RuntimeError):  # PyTorch agrees the model is broken
        model(torch.randn(1, 1, 8, 8))


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([nn.Conv2d(3, 4, 3)], "in_channels is 3 but the input has 1 channels"),
        ([nn.BatchNorm2d(2)], "num_features is 2"),
        ([nn.Flatten(), nn.LayerNorm(5)], "normalized_shape"),
        ([nn.Conv2d(1, 1, 9)], "larger than the padded input"),
        ([nn.Flatten(), nn.Conv2d(1, 1, 1)], r"expects input \(N, C, H, W\)"),
    ],
)
def test_shape_mismatches_are_clear(layers, message):
    with pytest.raises(ValueError, match=message):
        shape_trace(nn.Sequential(*layers), (1, 6, 6))


def test_unsupported_module_names_its_type():
    class Residual(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match="Residual"):
        shape_trace(nn.Sequential(nn.ReLU(), Residual()), (1, 4, 4))


def test_format_trace_lists_every_layer_and_the_totals():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    rows = shape_trace(model, (1, 6, 6))
    assert all(isinstance(r, TraceRow) for r in rows)
    text = format_trace(rows)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["layer", "type", "output"]
    assert "2 × 4 × 4" in text
    total = count_parameters(model)
    assert lines[-1].split()[0] == "total"
    assert f"{total:,}" in lines[-1]
    assert len(lines) == 3 + len(rows) + 1


def test_layer_costs_bytes_and_macs():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
    costs = layer_costs(model, (3, 10, 10), bytes_per_element=2)
    assert all(isinstance(c, LayerCost) for c in costs)
    assert costs[0].activation_bytes == 8 * 10 * 10 * 2
    assert costs[0].parameter_bytes == (8 * 27 + 8) * 2
    assert costs[0].macs == 8 * 10 * 10 * 27
    rows = shape_trace(model, (3, 10, 10))
    assert [c.activation_bytes for c in layer_costs(rows)] == [r.activations * 4 for r in rows]
    with pytest.raises(ValueError, match="input_shape"):
        layer_costs(model)


def test_trace_works_on_the_meta_device_for_vgg16():
    """The notes' VGG argument: most parameters in the dense layers, most memory early on."""
    from torchvision.models import vgg16

    with torch.device("meta"):
        vgg = vgg16(weights=None)
    model = nn.Sequential(vgg.features, vgg.avgpool, nn.Flatten(), vgg.classifier)
    rows = shape_trace(model, (3, 224, 224))
    total = sum(r.params for r in rows)
    assert total == count_parameters(vgg)
    # independent count: 13 convolutions of 3x3 plus three dense layers
    widths = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    convs = sum(9 * c_in * c_out + c_out for c_in, c_out in itertools.pairwise(widths))
    dense = (512 * 7 * 7 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)
    assert total == convs + dense
    first_fc = next(r for r in rows if r.type == "Linear")
    assert first_fc.params == 7 * 7 * 512 * 4096 + 4096
    assert first_fc.params / total > 0.7
    dense_share = sum(r.params for r in rows if r.type == "Linear") / total
    assert 0.85 < dense_share < 0.95
    # memory: the outputs of convolutions are largest in the first block
    convs_rows = [r for r in rows if r.type == "Conv2d"]
    assert convs_rows[0].activation_bytes == 64 * 224 * 224 * 4
    assert max(r.activations for r in convs_rows) == convs_rows[0].activations
    assert math.isclose(
        sum(r.macs for r in rows),
        sum(r.macs for r in convs_rows) + sum(r.macs for r in rows if r.type == "Linear"),
    )


def test_docstring_examples():
    import doctest

    import course_lib.shapes

    result = doctest.testmod(course_lib.shapes)
    assert result.attempted >= 4
    assert result.failed == 0
