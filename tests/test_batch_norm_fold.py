"""Folding batch normalisation into the preceding convolution: same outputs, clear refusals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib import fold_batch_norm


def _trained_looking_bn(channels: int, dtype: torch.dtype, gen: torch.Generator) -> nn.BatchNorm2d:
    """A BatchNorm2d with random (non-default) gamma, beta and running statistics, in eval mode."""
    bn = nn.BatchNorm2d(channels, eps=1e-3, dtype=dtype)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(channels, generator=gen, dtype=dtype))
        bn.bias.copy_(torch.randn(channels, generator=gen, dtype=dtype))
        bn.running_mean.copy_(torch.randn(channels, generator=gen, dtype=dtype) * 3)
        bn.running_var.copy_(torch.rand(channels, generator=gen, dtype=dtype) * 4 + 0.05)
    return bn.eval()


def _random_conv(conv: nn.Conv2d, gen: torch.Generator) -> nn.Conv2d:
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen, dtype=conv.weight.dtype))
        if conv.bias is not None:
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=gen, dtype=conv.bias.dtype))
    return conv


@pytest.mark.parametrize("conv_bias", [True, False], ids=["conv-bias", "no-conv-bias"])
@pytest.mark.parametrize(
    "settings",
    [
        dict(in_channels=3, out_channels=5, kernel_size=3, padding=1),
        dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=2, dilation=(1, 2)),
        dict(in_channels=4, out_channels=8, kernel_size=3, groups=2, padding="same"),
        dict(
            in_channels=6,
            out_channels=6,
            kernel_size=3,
            groups=6,
            padding=1,
            padding_mode="reflect",
        ),
    ],
    ids=["3x3", "strided-dilated", "grouped-same", "depthwise-reflect"],
)
def test_folded_conv_matches_conv_then_bn_in_eval_mode(conv_bias, settings, gen):
    dtype = torch.float64
    conv = _random_conv(nn.Conv2d(**settings, bias=conv_bias, dtype=dtype), gen)
    bn = _trained_looking_bn(settings["out_channels"], dtype, gen)
    folded = fold_batch_norm(conv, bn)
    assert isinstance(folded, nn.Conv2d) and folded.bias is not None
    assert folded.weight.shape == conv.weight.shape and folded.weight.dtype == dtype
    for attribute in ("stride", "padding", "dilation", "groups", "padding_mode", "kernel_size"):
        assert getattr(folded, attribute) == getattr(conv, attribute)
    x = torch.randn(4, settings["in_channels"], 11, 9, generator=gen, dtype=dtype)
    with torch.no_grad():
        expected = bn(conv(x))
        got = folded(x)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_fold_leaves_the_layers_unchanged_and_ignores_bn_training_flag(gen):
    conv = _random_conv(nn.Conv2d(2, 3, 3, dtype=torch.float64), gen)
    bn = _trained_looking_bn(3, torch.float64, gen)
    before = {k: v.clone() for k, v in {**conv.state_dict(), **bn.state_dict()}.items()}
    folded_eval = fold_batch_norm(conv, bn)
    bn.train()
    folded_train = fold_batch_norm(conv, bn)
    after = {**conv.state_dict(), **bn.state_dict()}
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(folded_eval.weight, folded_train.weight)
    assert torch.equal(folded_eval.bias, folded_train.bias)


def test_fold_without_affine_parameters_uses_gamma_one_beta_zero(gen):
    conv = _random_conv(nn.Conv2d(3, 4, 3, bias=False, dtype=torch.float64), gen)
    bn = nn.BatchNorm2d(4, affine=False, dtype=torch.float64)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([1.0, -2.0, 0.5, 0.0]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25, 1.0, 9.0]))
    bn.eval()
    folded = fold_batch_norm(conv, bn)
    scale = 1 / torch.sqrt(bn.running_var + bn.eps)
    torch.testing.assert_close(folded.weight, conv.weight * scale.view(-1, 1, 1, 1))
    torch.testing.assert_close(folded.bias, -bn.running_mean * scale)
    x = torch.randn(2, 3, 7, 7, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), bn(conv(x)), rtol=1e-12, atol=1e-12)


def test_fold_of_a_float32_network_stays_float32_and_close(gen):
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
    bn.train()
    with torch.no_grad():  # a few training-mode passes give bn real running statistics
        for _ in range(5):
            bn(conv(torch.randn(16, 3, 8, 8, generator=gen) * 2 + 1))
    bn.eval()
    folded = fold_batch_norm(conv, bn)
    assert folded.weight.dtype == torch.float32 and folded.bias.dtype == torch.float32
    x = torch.randn(4, 3, 8, 8, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), bn(conv(x)), rtol=1e-4, atol=1e-5)


def test_fold_mismatched_channels_is_refused():
    with pytest.raises(ValueError, match=r"bn normalises 5 channels but conv has out_channels = 4"):
        fold_batch_norm(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(5))


def test_fold_without_running_statistics_is_refused():
    bn = nn.BatchNorm2d(4, track_running_stats=False)  # in training mode, as created
    with pytest.raises(ValueError, match=r"\(in training mode\) has no running statistics"):
        fold_batch_norm(nn.Conv2d(3, 4, 3), bn)
    with pytest.raises(ValueError, match=r"\(in evaluation mode\) has no running statistics"):
        fold_batch_norm(nn.Conv2d(3, 4, 3), bn.eval())


@pytest.mark.parametrize(
    ("conv", "bn", "message"),
    [
        (nn.Linear(3, 4), nn.BatchNorm2d(4), r"expected conv to be a torch.nn.Conv2d, got Linear"),
        (
            nn.Conv2d(3, 4, 3),
            nn.BatchNorm1d(4),
            r"expected bn to be a torch.nn.BatchNorm2d, got "
            r"BatchNorm1d",
        ),
        (nn.Conv2d(3, 4, 3), None, r"expected bn to be a torch.nn.BatchNorm2d, got NoneType"),
    ],
)
def test_fold_wrong_layer_types_are_refused(conv, bn, message):
    with pytest.raises(TypeError, match=message):
        fold_batch_norm(conv, bn)


def test_fold_lazy_conv_is_refused():
    with pytest.raises(ValueError, match=r"conv is a lazy module"):
        fold_batch_norm(nn.LazyConv2d(4, 3), nn.BatchNorm2d(4))


def test_fold_negative_running_variance_is_refused():
    bn = nn.BatchNorm2d(2).eval()
    with torch.no_grad():
        bn.running_var.copy_(torch.tensor([1.0, -0.5]))
    with pytest.raises(ValueError, match=r"running_var has negative entries"):
        fold_batch_norm(nn.Conv2d(1, 2, 3), bn)
