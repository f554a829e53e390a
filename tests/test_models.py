"""LeNet-5 and the notes' Fashion-MNIST network: shapes, parameter counts, initialisation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib import count_parameters, shape_trace
from course_lib.models import fashion_mnist_cnn, init_weights, lenet5

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
