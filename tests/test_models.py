"""LeNet-5, the notes' Fashion-MNIST network and the small GoogLeNet: shapes, parameter counts,
initialisation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib import count_parameters, model_summary, shape_trace
from course_lib.models import (
    GOOGLENET_SMALL_INCEPTIONS,
    fashion_mnist_cnn,
    googlenet_small,
    init_weights,
    lenet5,
)

# thousands of tiny operations: see the one_thread fixture in conftest.py
pytestmark = pytest.mark.usefixtures("one_thread")


def conv_params(c_in: int, c_out: int, k: int) -> int:
    return c_out * (c_in * k * k + 1)


def linear_params(n_in: int, n_out: int) -> int:
    return n_out * (n_in + 1)


@pytest.mark.parametrize("variant", ["original", "modern"])
def test_lenet5_forward_on_a_batch(variant):
    model = lenet5(variant)
    x = torch.randn(5, 1, 28, 28)
    out = model(x)
    assert out.shape == (5, 10)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("variant", ["original", "modern"])
def test_lenet5_parameter_count_against_formula(variant):
    # C1: 6 maps 5x5 on 1 channel; C3: 16 maps 5x5 on 6 (full connection); C5/F5: 120 units
    # on 16*5*5; F6: 84; output: 10.
    expected = (
        conv_params(1, 6, 5)
        + conv_params(6, 16, 5)
        + linear_params(16 * 5 * 5, 120)
        + linear_params(120, 84)
        + linear_params(84, 10)
    )
    assert count_parameters(lenet5(variant)) == expected


@pytest.mark.parametrize("variant", ["original", "modern"])
def test_lenet5_options(variant):
    model = lenet5(variant, num_classes=3, in_channels=3)
    assert model(torch.randn(2, 3, 28, 28)).shape == (2, 3)


def test_lenet5_variants_differ_in_activation_and_pooling():
    original = lenet5("original")
    modern = lenet5("modern")
    assert any(isinstance(m, nn.Tanh) for m in original)
    assert any(isinstance(m, nn.AvgPool2d) for m in original)
    assert not any(isinstance(m, nn.MaxPool2d | nn.ReLU) for m in original)
    assert any(isinstance(m, nn.ReLU) for m in modern)
    assert any(isinstance(m, nn.MaxPool2d) for m in modern)
    assert not any(isinstance(m, nn.Tanh | nn.AvgPool2d) for m in modern)


def test_lenet5_original_sees_a_32x32_input_and_c5_is_1x1():
    rows = {r.name: r.output_shape for r in shape_trace(lenet5("original"), (1, 28, 28))}
    assert rows["pad"] == (1, 32, 32)
    assert rows["c1"] == (6, 28, 28)
    assert rows["s2"] == (6, 14, 14)
    assert rows["c3"] == (16, 10, 10)
    assert rows["s4"] == (16, 5, 5)
    assert rows["c5"] == (120, 1, 1)
    assert rows["f6"] == (84,)
    assert rows["output"] == (10,)


def test_lenet5_rejects_bad_arguments():
    with pytest.raises(ValueError, match="variant"):
        lenet5("ancient")
    with pytest.raises(ValueError, match="num_classes"):
        lenet5(num_classes=0)


def test_fashion_mnist_cnn_shapes_and_parameters():
    model = fashion_mnist_cnn()
    assert model(torch.randn(4, 1, 28, 28)).shape == (4, 10)
    expected = (
        conv_params(1, 16, 5)
        + 2 * 16  # batch norm scale and shift
        + conv_params(16, 32, 5)
        + 2 * 32
        + linear_params(32 * 7 * 7, 10)
    )
    assert count_parameters(model) == expected
    assert [name for name, _ in model.named_children()] == [
        "conv1",
        "bn1",
        "relu1",
        "pool1",
        "conv2",
        "bn2",
        "relu2",
        "pool2",
        "flatten",
        "fc",
    ]


def test_fashion_mnist_cnn_adapts_its_dense_layer_to_the_image_size():
    model = fashion_mnist_cnn(image_size=32, channels=(8, 12), num_classes=4)
    assert model.fc.in_features == 12 * 8 * 8
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 4)


def test_initialisation_really_happens():
    torch.manual_seed(0)
    model = fashion_mnist_cnn()
    for layer in (model.conv1, model.conv2, model.fc):
        assert torch.count_nonzero(layer.bias) == 0
        fan_in = layer.weight[0].numel()
        std = float(layer.weight.detach().std())
        assert 0.7 < std / (2 / fan_in) ** 0.5 < 1.3  # Kaiming normal for ReLU
    tanh_model = lenet5("original")
    c1 = tanh_model.c1.weight.detach()
    bound = (5 / 3) * (6 / (25 + 6 * 25)) ** 0.5  # Xavier uniform, tanh gain
    assert float(c1.abs().max()) <= bound + 1e-6


def test_init_weights_refuses_lazy_modules():
    model = nn.Sequential(nn.LazyConv2d(4, 3))
    with pytest.raises(TypeError, match="lazy"):
        init_weights(model)
    model(torch.randn(1, 2, 5, 5))  # materialised: now it works
    assert init_weights(model) is model


# ---------------------------------------------------------------------------------------------
# The small GoogLeNet of Chapter 10
# ---------------------------------------------------------------------------------------------


def inception_params(
    c_in: int, c1: int, c3: tuple[int, int], c5: tuple[int, int], pool: int
) -> int:
    return (
        conv_params(c_in, c1, 1)
        + conv_params(c_in, c3[0], 1)
        + conv_params(c3[0], c3[1], 3)
        + conv_params(c_in, c5[0], 1)
        + conv_params(c5[0], c5[1], 5)
        + conv_params(c_in, pool, 1)
    )


def test_googlenet_small_shapes_follow_its_docstring():
    rows = model_summary(googlenet_small(), (2, 1, 28, 28))
    assert [(r.name, r.output_shape[1:]) for r in rows] == [
        ("stem", (32, 28, 28)),
        ("pool1", (32, 14, 14)),
        ("inception_a", (64, 14, 14)),
        ("pool2", (64, 7, 7)),
        ("inception_b", (128, 7, 7)),
        ("inception_c", (128, 7, 7)),
        ("gap", (128, 1, 1)),
        ("flatten", (128,)),
        ("dropout", (128,)),
        ("fc", (10,)),
    ]
    doc = " ".join(googlenet_small.__doc__.split())
    assert "inception_a (64, 14, 14) -> pool2 (64, 7, 7)" in doc
    model = googlenet_small().eval()
    with torch.no_grad():
        assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
        other = googlenet_small(num_classes=4, in_channels=3).eval()
        assert other(torch.randn(2, 3, 28, 28)).shape == (2, 4)


def test_googlenet_small_parameter_count_is_the_docstrings():
    channels, expected = 32, conv_params(1, 32, 3)
    for _, c1, c3, c5, pool in GOOGLENET_SMALL_INCEPTIONS:
        expected += inception_params(channels, c1, c3, c5, pool)
        channels = c1 + c3[1] + c5[1] + pool
    expected += linear_params(channels, 10)
    plain = googlenet_small(batch_norm=False)
    assert count_parameters(plain) == expected == 82_854
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    # with batch norm: every convolution loses its bias and gains a scale and a shift per channel
    convs = [m for m in plain.modules() if isinstance(m, nn.Conv2d)]
    with_bn = expected + sum(m.out_channels for m in convs)
    model = googlenet_small()
    assert count_parameters(model) == with_bn == 83_330
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == len(convs)
    doc = " ".join(googlenet_small.__doc__.split())
    assert "83,330 parameters" in doc
    assert "82,854" in doc


def test_googlenet_small_trains_a_step_and_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = googlenet_small()
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        assert model.stem[0].weight.grad.abs().sum() > 0  # the gradient reaches the first layer
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_googlenet_small_rejects_bad_sizes():
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        googlenet_small(num_classes=0)
    with pytest.raises(ValueError, match="in_channels must be a positive int"):
        googlenet_small(in_channels=-1)
