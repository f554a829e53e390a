"""Typical buggy answers to the exercises, one mistake each, written the way students write them.

``BUGS`` lists ``(misconception key, test id, function)``: the judge must name that key on the
first failing case of that test. ``MORE`` lists further typical mistakes whose diagnosis is not
fixed in advance (``(function name, buggy function)``); with ``BUGS`` they make the catalogue of
typical mistakes of which at least 95 % must get a named misconception.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np

from course_lib.grading.exercises import ASSIGNMENTS

ROOT = Path(__file__).resolve().parents[2]


def solution_functions() -> dict:
    """The functions of the answer cells of all solution notebooks, in one namespace."""
    namespace: dict = {}
    exec("import numpy as np", namespace)
    for assignment in ASSIGNMENTS:
        path = ROOT / "solutions" / assignment / f"{assignment}.ipynb"
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.metadata.get("nbgrader", {}).get("solution"):
                exec(cell.source, namespace)
    return namespace


S = solution_functions()


def pair(value):
    return (value, value) if np.ndim(value) == 0 else tuple(value)


def relu(v):
    return np.maximum(v, 0.0)


# =============================================================================================
# convolution
# =============================================================================================


def corr2d_flipped(x, k):
    return S["corr2d"](x, k[::-1, ::-1])


def corr2d_one_short(x, k):
    kh, kw = k.shape
    out = np.zeros((x.shape[0] - kh, x.shape[1] - kw))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(x[i : i + kh, j : j + kw] * k)
    return out


def corr2d_flat(x, k):
    return S["corr2d"](x, k).ravel()


def corr2d_transposed(x, k):
    kh, kw = k.shape
    out = np.zeros((x.shape[1] - kw + 1, x.shape[0] - kh + 1))  # (W', H')
    for i in range(x.shape[0] - kh + 1):
        for j in range(x.shape[1] - kw + 1):
            out[j, i] = np.sum(x[i : i + kh, j : j + kw] * k)
    return out


def corr2d_as_list(x, k):
    return S["corr2d"](x, k).tolist()


def corr2d_int_output(x, k):
    return S["corr2d"](x, k).astype(np.int64)


def pad2d_all_axes(x, padding):
    return np.pad(x, max(pair(padding)))


def pad2d_one_side(x, padding):
    ph, pw = pair(padding)
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(2 * ph, 0), (2 * pw, 0)])


def pad2d_float32(x, padding):
    return S["pad2d"](x, padding).astype(np.float32)


def pad2d_swapped(x, padding):
    ph, pw = pair(padding)
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(pw, pw), (ph, ph)])


def pad2d_int_only(x, padding):
    out = np.zeros((*x.shape[:-2], x.shape[-2] + 2 * padding, x.shape[-1] + 2 * padding))
    out[..., padding : padding + x.shape[-2], padding : padding + x.shape[-1]] = x
    return out


def pad2d_returns_input(x, padding):
    if padding == 0 or padding == (0, 0):
        return x  # nothing to do... but not a new array
    return S["pad2d"](x, padding)


def pad2d_height_only(x, padding):
    ph, _ = pair(padding)
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(ph, ph), (0, 0)])


def pad2d_first_axes(x, padding):
    ph, pw = pair(padding)
    return np.pad(x, [(ph, ph), (pw, pw)] + [(0, 0)] * (x.ndim - 2))


def conv_without_bias(x, w, b, stride=1, padding=0):
    return S["conv2d_forward"](x, w, None, stride, padding)


def conv_bias_per_channel(x, w, b, stride=1, padding=0):
    out = S["conv2d_forward"](x, w, None, stride, padding)
    if b is not None:
        for _ in range(x.shape[1]):  # added once per input channel
            out += b[None, :, None, None]
    return out


def conv_stride_ignored(x, w, b, stride=1, padding=0):
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    full = S["conv2d_forward"](x, w, b, 1, padding)
    out_h = (x.shape[2] + 2 * ph - w.shape[2]) // sh + 1
    out_w = (x.shape[3] + 2 * pw - w.shape[3]) // sw + 1
    return full[:, :, :out_h, :out_w].copy()  # windows at i, j instead of i*s, j*s


def conv_pairs_swapped(x, w, b, stride=1, padding=0):
    return S["conv2d_forward"](x, w, b, pair(stride)[::-1], pair(padding)[::-1])


def conv_padding_ignored(x, w, b, stride=1, padding=0):
    return S["conv2d_forward"](x, w, b, stride, 0)


def conv_padding_one_side(x, w, b, stride=1, padding=0):
    ph, pw = pair(padding)
    padded = np.pad(x, ((0, 0), (0, 0), (2 * ph, 0), (2 * pw, 0)))
    return S["conv2d_forward"](padded, w, b, stride, 0)


def conv_first_channel(x, w, b, stride=1, padding=0):
    return S["conv2d_forward"](x[:, :1], w[:, :1], b, stride, padding)


def conv_square_kernel(x, w, b, stride=1, padding=0):
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    k = w.shape[2]  # kh used for both
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out_h = (x.shape[2] + 2 * ph - k) // sh + 1
    out_w = (x.shape[3] + 2 * pw - k) // sw + 1
    out = np.zeros((x.shape[0], w.shape[0], out_h, out_w))
    for n in range(x.shape[0]):
        for f in range(w.shape[0]):
            for i in range(out_h):
                for j in range(out_w):
                    window = padded[n, :, i * sh : i * sh + k, j * sw : j * sw + k]
                    out[n, f, i, j] = np.sum(window * w[f])
    return out if b is None else out + b[None, :, None, None]


def conv_flipped(x, w, b, stride=1, padding=0):
    return S["conv2d_forward"](x, w[..., ::-1, ::-1], b, stride, padding)


def conv_stride_int_only(x, w, b, stride=1, padding=0):
    ph, pw = pair(padding)
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = w.shape[2:]
    out_h = (padded.shape[2] - kh) // stride + 1
    out_w = (padded.shape[3] - kw) // stride + 1
    out = np.zeros((x.shape[0], w.shape[0], out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            window = padded[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            out[:, :, i, j] = np.einsum("nckl,fckl->nf", window, w)
    return out if b is None else out + b[None, :, None, None]


def pool(reduce: str, bug: str | None = None):
    def pool2d(x, kernel_size, stride=None):
        if bug == "int_only":
            kh = kw = kernel_size
        elif bug == "square":
            kh = kw = pair(kernel_size)[0]
        else:
            kh, kw = pair(kernel_size)
        if stride is None:
            stride = (1, 1) if bug == "stride_one" else (kh, kw)
        sh, sw = pair(stride)
        if bug == "swapped":
            kh, kw = kw, kh
        height, width = x.shape[2:]
        if bug == "hw_swapped":
            height, width = width, height
        if bug == "ceil":
            out_h = -(-(height - kh) // sh) + 1
            out_w = -(-(width - kw) // sw) + 1
        elif bug == "one_short":
            out_h, out_w = (height - kh) // sh, (width - kw) // sw
        else:
            out_h, out_w = (height - kh) // sh + 1, (width - kw) // sw + 1
        out = np.zeros((x.shape[0], x.shape[1], out_h, out_w))
        for i in range(out_h):
            for j in range(out_w):
                window = x[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
                if bug == "across_channels":
                    value = (
                        window.max(axis=(1, 2, 3))
                        if reduce == "max"
                        else window.mean(axis=(1, 2, 3))
                    )
                    out[:, :, i, j] = value[:, None]
                elif reduce == "max":
                    out[:, :, i, j] = window.max(axis=(2, 3))
                elif bug == "sum":
                    out[:, :, i, j] = window.sum(axis=(2, 3))
                elif bug == "divide_by_kh":
                    out[:, :, i, j] = window.sum(axis=(2, 3)) / kh
                else:
                    out[:, :, i, j] = window.mean(axis=(2, 3))
        return out

    return pool2d


# =============================================================================================
# output_shapes
# =============================================================================================


def size(bug: str | None = None):
    def conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1):
        k, s, p, d = kernel_size, stride, padding, dilation
        if bug != "unchecked" and (k < 1 or s < 1 or p < 0 or d < 1):
            raise ValueError("out of range")
        if bug == "no_dilation":
            d = 1
        if bug == "padding_once":
            span = n + p - d * (k - 1) - 1
        elif bug == "no_padding":
            span = n - d * (k - 1) - 1
        else:
            span = n + 2 * p - d * (k - 1) - 1
        if bug == "true_division":
            result = span / s + 1
        elif bug == "truncated":
            result = int(span / s) + 1
        elif bug == "ceil":
            result = -(-span // s) + 1
        elif bug == "no_stride":
            result = span + 1
        elif bug == "off_by_one":
            result = span // s
        elif bug == "none":
            result = None
        else:
            result = span // s + 1
        if bug not in ("unchecked", "none") and result < 1:
            raise ValueError("too small")
        return result

    return conv_output_size


def pool_size(bug: str | None = None):
    def pool_output_size(n, kernel_size, stride=None, padding=0):
        if stride is None:
            stride = 1 if bug == "stride_one" else kernel_size
        if kernel_size < 1 or stride < 1 or padding < 0:
            raise ValueError("out of range")
        span = n + 2 * padding - kernel_size
        result = int(span / stride) + 1 if bug == "truncated" else span // stride + 1
        if bug != "unchecked" and result < 1:
            raise ValueError("too small")
        return result

    return pool_output_size


def output_shape(bug: str):
    def conv2d_output_shape(input_shape, out_channels, kernel_size, stride=1, padding=0):
        if bug == "int_only":
            kh = kw = kernel_size
            sh = sw = stride
            ph = pw = padding
        else:
            kh, kw = pair(kernel_size)
            sh, sw = pair(stride)
            ph, pw = pair(padding)
        if bug == "stride_swapped":
            sh, sw = sw, sh
        if bug == "square":
            kw = kh
        c, h, w = input_shape
        size_h = S["conv_output_size"](h, kh, sh, ph)
        size_w = S["conv_output_size"](w, kw, sw, pw)
        if bug == "channels":
            return (c, size_h, size_w)
        if bug == "hw_swapped":
            return (out_channels, size_w, size_h)
        if bug == "list":
            return [out_channels, size_h, size_w]
        return (out_channels, size_h, size_w)

    return conv2d_output_shape


def num_params(bug: str):
    def conv2d_num_params(in_channels, out_channels, kernel_size, bias=True):
        kh, kw = pair(kernel_size)
        if bug == "no_bias":
            return out_channels * in_channels * kh * kw
        if bug == "square":
            return out_channels * in_channels * kh * kh + (out_channels if bias else 0)
        if bug == "no_in_channels":
            return out_channels * kh * kw + (out_channels if bias else 0)
        if bug == "bias_per_input":
            return out_channels * in_channels * kh * kw + (in_channels if bias else 0)
        if bug == "float":
            return float(out_channels * in_channels * kh * kw + (out_channels if bias else 0))
        raise AssertionError(bug)

    return conv2d_num_params


def layers(bug: str):
    def layer_output_shapes(layers, input_shape):
        shape, shapes = tuple(input_shape), []
        for layer in layers:
            kind = type(layer).__name__
            if kind == "Conv2d":
                padding = layer.padding
                if isinstance(padding, str):
                    padding = (0, 0) if (padding == "valid" or bug == "same_ignored") else None
                dilation = (1, 1) if bug == "no_dilation" else layer.dilation
                if padding is None:
                    size = shape[1:]
                else:
                    size = tuple(
                        (n + 2 * p - d * (k - 1) - 1) // s + 1
                        for n, k, s, p, d in zip(
                            shape[1:],
                            layer.kernel_size,
                            layer.stride,
                            padding,
                            dilation,
                            strict=True,
                        )
                    )
                shape = (layer.out_channels, *size)
            elif kind in ("MaxPool2d", "AvgPool2d"):
                k, s = pair(layer.kernel_size), pair(layer.stride)
                p = (0, 0) if bug == "pool_padding_ignored" else pair(layer.padding)
                d = pair(getattr(layer, "dilation", 1))
                if bug == "pool_pairs_swapped":
                    k, s, p, d = k[::-1], s[::-1], p[::-1], d[::-1]
                if bug == "ceil":
                    size = tuple(
                        -(-(n + 2 * pp - dd * (kk - 1) - 1) // ss) + 1
                        for n, kk, ss, pp, dd in zip(shape[1:], k, s, p, d, strict=True)
                    )
                else:
                    size = tuple(
                        (n + 2 * pp - dd * (kk - 1) - 1) // ss + 1
                        for n, kk, ss, pp, dd in zip(shape[1:], k, s, p, d, strict=True)
                    )
                shape = (shape[0], *size)
            elif kind == "AdaptiveAvgPool2d":
                oh, ow = pair(layer.output_size)
                shape = (shape[0], oh or shape[1], ow or shape[2])
            elif kind == "Flatten":
                shape = (int(np.prod(shape)),)
            elif kind == "Linear":
                shape = (layer.out_features,)
            if bug == "batch":
                shapes.append((1, *shape))
            elif bug == "lists":
                shapes.append(list(shape))
            else:
                shapes.append(shape)
        return shapes

    return layer_output_shapes


# =============================================================================================
# backprop
# =============================================================================================


def relu_at_zero(dout, x):
    return np.where(x >= 0, dout, 0.0)


def relu_mask_from_dout(dout, x):
    return np.where(dout > 0, dout, 0.0)


def relu_in_place(dout, x):
    dout[x <= 0] = 0.0
    return dout


def relu_mask_only(dout, x):
    return (x > 0).astype(np.float64)


def max_pool_back(
    tie: str = "first", accumulate: bool = True, offset: bool = True, bug: str | None = None
):
    def max_pool2d_backward(dout, x, kernel_size, stride=None):
        kh, kw = pair(kernel_size)
        if bug == "swapped":
            kh, kw = kw, kh
        sh, sw = pair((kh, kw) if stride is None else stride)
        dx = np.zeros(x.shape)
        for n, c, i, j in np.ndindex(dout.shape):
            window = x[n, c, i * sh : i * sh + kh, j * sw : j * sw + kw]
            hits = np.argwhere(window == window.max())
            if tie != "all":
                hits = hits[:1] if tie == "first" else hits[-1:]
            for a, b in hits:
                r, q = (i * sh + a, j * sw + b) if offset else (a, b)
                if accumulate:
                    dx[n, c, r, q] += dout[n, c, i, j]
                else:
                    dx[n, c, r, q] = dout[n, c, i, j]
        return dx

    return max_pool2d_backward


def max_pool_back_ge_loop(dout, x, kernel_size, stride=None):
    """A scan with >= keeps the last maximum."""
    kh, kw = pair(kernel_size)
    sh, sw = pair((kh, kw) if stride is None else stride)
    dx = np.zeros(x.shape)
    for n, c, i, j in np.ndindex(dout.shape):
        best, where = -np.inf, (0, 0)
        for a in range(kh):
            for b in range(kw):
                if x[n, c, i * sh + a, j * sw + b] >= best:
                    best, where = x[n, c, i * sh + a, j * sw + b], (a, b)
        dx[n, c, i * sh + where[0], j * sw + where[1]] += dout[n, c, i, j]
    return dx


def avg_pool_back(divide: bool = True, accumulate: bool = True, bug: str | None = None):
    def avg_pool2d_backward(dout, x, kernel_size, stride=None):
        kh, kw = pair(kernel_size)
        if bug == "swapped":
            kh, kw = kw, kh
        sh, sw = pair((kh, kw) if stride is None else stride)
        if bug == "stride_one":
            sh = sw = 1
        dx = np.zeros(x.shape)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                share = dout[:, :, i, j] / (kh * kw if divide else 1)
                target = dx[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
                if accumulate:
                    target += share[:, :, None, None]
                else:
                    target[...] = share[:, :, None, None]
        return dx

    return avg_pool2d_backward


def conv_back_dw_last_sample(dout, x, w, b, stride=1, padding=0):
    dx, _, db = S["conv2d_backward"](dout, x, w, b, stride, padding)
    _, dw_last, _ = S["conv2d_backward"](dout[-1:], x[-1:], w, b, stride, padding)
    return dx, dw_last, db


def conv_back_db_axes(dout, x, w, b, stride=1, padding=0):
    dx, dw, _ = S["conv2d_backward"](dout, x, w, b, stride, padding)
    return dx, dw, None if b is None else dout.sum(axis=(1, 2, 3))


def conv_back_padded_dx(dout, x, w, b, stride=1, padding=0):
    ph, pw = pair(padding)
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    _, dw, db = S["conv2d_backward"](dout, x, w, b, stride, padding)
    dx_padded, _, _ = S["conv2d_backward"](dout, padded, w, b, stride, 0)
    return dx_padded, dw, db


def conv_back_dx_overwritten(dout, x, w, b, stride=1, padding=0):
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    _, dw, db = S["conv2d_backward"](dout, x, w, b, stride, padding)
    kh, kw = w.shape[2:]
    dxp = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * ph, x.shape[3] + 2 * pw))
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            contribution = np.einsum("nf,fckl->nckl", dout[:, :, i, j], w)
            dxp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] = contribution
    return dxp[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]], dw, db


def conv_back_db_zeros(dout, x, w, b, stride=1, padding=0):
    dx, dw, db = S["conv2d_backward"](dout, x, w, b, stride, padding)
    return dx, dw, np.zeros(w.shape[0]) if db is None else db


def conv_back_flipped(dout, x, w, b, stride=1, padding=0):
    dx, dw, db = S["conv2d_backward"](dout, x, w[..., ::-1, ::-1], b, stride, padding)
    return dx, dw[..., ::-1, ::-1], db


def conv_back_stride_ignored(dout, x, w, b, stride=1, padding=0):
    ph, pw = pair(padding)
    kh, kw = w.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dpadded, dw = np.zeros(padded.shape), np.zeros(w.shape)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):  # windows one step apart
            dw += np.einsum("nf,nckl->fckl", dout[:, :, i, j], padded[:, :, i : i + kh, j : j + kw])
            dpadded[:, :, i : i + kh, j : j + kw] += np.einsum("nf,fckl->nckl", dout[:, :, i, j], w)
    dx = dpadded[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]]
    return dx, dw, None if b is None else dout.sum(axis=(0, 2, 3))


def conv_back_two_values(dout, x, w, b, stride=1, padding=0):
    dx, dw, _ = S["conv2d_backward"](dout, x, w, b, stride, padding)
    return dx, dw


def numgrad(kind: str = "centred", fixed_h: float | None = None):
    def numerical_gradient(f, x, h=1e-5):
        h = fixed_h or h
        point = x.copy()
        grad = np.zeros(x.shape)
        base = f(point)
        if kind == "first_axis":
            for i in range(x.shape[0]):
                point[i] += h
                plus = f(point)
                point[i] -= 2 * h
                minus = f(point)
                point[i] += h
                grad[i] = (plus - minus) / (2 * h)
            return grad
        for index in np.ndindex(x.shape):
            old = point[index]
            point[index] = old + h
            plus = f(point)
            if kind == "minus_at_x":
                point[index] -= h
            else:
                point[index] = old - h
            minus = f(point)
            if kind != "not_restored":
                point[index] = old
            if kind == "forward":
                grad[index] = (plus - base) / h
            elif kind == "over_h":
                grad[index] = (plus - minus) / h
            else:
                grad[index] = (plus - minus) / (2 * h)
        return grad

    return numerical_gradient


def numgrad_in_place_not_restored(f, x, h=1e-5):
    grad = np.zeros(x.shape)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + h
        plus = f(x)
        x[index] = old - h
        minus = f(x)
        grad[index] = (plus - minus) / (2 * h)
    return grad


def numgrad_flat_loop(f, x, h=1e-5):
    """Loops over x.ravel() of a copy that is not x's memory: nudges nothing (a typical slip)."""
    grad = np.zeros(x.size)
    flat = x.flatten()
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = f(x)
        flat[i] = old - h
        minus = f(x)
        flat[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad.reshape(x.shape)


# =============================================================================================
# architectures
# =============================================================================================


def bn_forward(bug: str | None = None):
    def batchnorm_forward(
        x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5
    ):
        axes = {"axes": (0,), "instance": (2, 3), "layer": (1, 2, 3)}.get(bug, (0, 2, 3))
        c = (1, -1, 1, 1)
        m = x.shape[0] * x.shape[2] * x.shape[3]
        if training or bug == "eval_batch":
            mean = x.mean(axis=axes, keepdims=True)
            var = x.var(axis=axes, ddof=1 if bug == "unbiased" else 0, keepdims=True)
            batch_mean, batch_var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3)) * m / (m - 1)
            if bug == "running_biased":
                batch_var = x.var(axis=(0, 2, 3))
            if bug == "momentum":
                new_mean = momentum * running_mean + (1 - momentum) * batch_mean
                new_var = momentum * running_var + (1 - momentum) * batch_var
            elif bug == "not_updated":
                new_mean, new_var = running_mean.copy(), running_var.copy()
            elif bug == "replaced":
                new_mean, new_var = batch_mean, batch_var
            else:
                new_mean = (1 - momentum) * running_mean + momentum * batch_mean
                new_var = (1 - momentum) * running_var + momentum * batch_var
            if bug == "eval_batch" and not training:
                new_mean, new_var = running_mean.copy(), running_var.copy()
            if bug == "uses_running":
                mean, var = new_mean.reshape(c), new_var.reshape(c)
        else:
            mean, var = running_mean.reshape(c), running_var.reshape(c)
            if bug == "eval_updates":
                new_mean = (1 - momentum) * running_mean + momentum * x.mean(axis=(0, 2, 3))
                new_var = (1 - momentum) * running_var + momentum * x.var(axis=(0, 2, 3), ddof=1)
            elif bug == "alias":
                new_mean, new_var = running_mean, running_var
            else:
                new_mean, new_var = running_mean.copy(), running_var.copy()
        if bug == "eps_outside":
            x_hat = (x - mean) / (np.sqrt(var) + eps)
        else:
            x_hat = (x - mean) / np.sqrt(var + eps)
        if bug == "swapped":
            out = beta.reshape(c) * x_hat + gamma.reshape(c)
        elif bug == "no_affine":
            out = x_hat
        else:
            out = gamma.reshape(c) * x_hat + beta.reshape(c)
        if bug == "only_out":
            return out
        return out, new_mean, new_var

    return batchnorm_forward


def bn_backward(bug: str | None = None):
    def batchnorm_backward(dout, x, gamma, eps=1e-5):
        axes = (0, 2, 3)
        m = x.shape[0] if bug == "count" else x.shape[0] * x.shape[2] * x.shape[3]
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, ddof=1 if bug == "unbiased" else 0, keepdims=True)
        std = np.sqrt(var) + eps if bug == "eps_outside" else np.sqrt(var + eps)
        x_hat = (x - mean) / std
        dbeta = dout.sum(axis=axes)
        dgamma = (dout * (x if bug == "dgamma_x" else x_hat)).sum(axis=axes)
        g = 1.0 if bug == "no_gamma" else gamma.reshape(1, -1, 1, 1)
        if bug == "constant":
            dx = g * dout / std
        elif bug == "no_variance_term":
            dx = g / std * (dout - dout.sum(axis=axes, keepdims=True) / m)
        else:
            dx = (
                g
                / std
                * (dout - dbeta.reshape(1, -1, 1, 1) / m - x_hat * dgamma.reshape(1, -1, 1, 1) / m)
            )
            if bug == "dgamma_x":
                dx = (
                    g
                    / std
                    * (
                        dout
                        - dbeta.reshape(1, -1, 1, 1) / m
                        - x_hat * (dout * x_hat).sum(axis=axes, keepdims=True) / m
                    )
                )
        if bug == "swapped":
            return dx, dbeta, dgamma
        if bug == "axes":
            return dx, (dout * x_hat).sum(axis=(0,)), dout.sum(axis=(0,))
        return dx, dgamma, dbeta

    return batchnorm_backward


def fold(bug: str | None = None):
    def fold_batchnorm(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
        if bug == "no_sqrt":
            scale = gamma / (running_var + eps)
        elif bug == "eps_outside":
            scale = gamma / (np.sqrt(running_var) + eps)
        else:
            scale = gamma / np.sqrt(running_var + eps)
        w_folded = w * scale if bug == "last_axis" else w * scale[:, None, None, None]
        if b is None and bug == "none":
            return w_folded, None
        bias = np.zeros(w.shape[0]) if b is None else b
        if bug == "not_scaled":
            b_folded = bias - running_mean + beta
        elif bug == "ignore_b":
            b_folded = beta - scale * running_mean
        elif bug == "beta_scaled":
            b_folded = scale * (bias - running_mean + beta)
        else:
            b_folded = scale * (bias - running_mean) + beta
        return w_folded, b_folded

    return fold_batchnorm


def residual(bug: str | None = None):
    conv2d = S["conv2d"]

    def residual_block_forward(x, w1, w2, stride=1, w_proj=None):
        pad = 0 if bug == "no_padding" else 1
        if bug == "flipped":
            w1, w2 = w1[..., ::-1, ::-1], w2[..., ::-1, ::-1]
        first, second = (1, stride) if bug == "stride_second" else (stride, 1)
        h = conv2d(x, w1, first, pad)
        if bug != "no_inner_relu":
            h = relu(h)
        y = conv2d(h, w2, second, pad)
        if w_proj is None or bug == "ignore_proj":
            shortcut = x
        else:
            shortcut = conv2d(x, w_proj, stride, 0)
        if bug not in ("unchecked", "ignore_proj") and shortcut.shape != y.shape:
            raise ValueError("shapes differ")
        if bug == "relu_before_add":
            return relu(y) + shortcut
        if bug == "no_final_relu":
            return y + shortcut
        return relu(y + shortcut)

    return residual_block_forward


def dense(bug: str | None = None):
    conv2d = S["conv2d"]

    def dense_block_forward(x, weights):
        features = [x]
        for w in weights:
            if bug == "flipped":
                w = w[..., ::-1, ::-1]
            stacked = np.concatenate(features[::-1] if bug == "reversed" else features, axis=1)
            if bug == "no_relu":
                new = conv2d(stacked, w, 1, 1)
            elif bug == "relu_after":
                new = relu(conv2d(stacked, w, 1, 1))
            elif bug == "relu_kept":
                features = [relu(f) for f in features]
                new = conv2d(np.concatenate(features, axis=1), w, 1, 1)
            else:
                new = conv2d(relu(stacked), w, 1, 1)
            features.append(new)
        if bug == "new_only":
            return np.concatenate(features[1:], axis=1)
        if bug == "reversed":
            return np.concatenate(features[::-1], axis=1)
        if bug == "alias" and not weights:
            return x
        return np.concatenate(features, axis=1)

    return dense_block_forward


# =============================================================================================
# detection
# =============================================================================================


def iou(bug: str | None = None):
    def box_iou(boxes1, boxes2):
        one = 1.0 if bug == "plus_one" else 0.0
        a, b = boxes1, boxes2
        if bug == "xywh":
            area1, area2 = a[:, 2] * a[:, 3], b[:, 2] * b[:, 3]
            a = np.concatenate([a[:, :2], a[:, :2] + a[:, 2:]], axis=1)
            b = np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)
        else:
            area1 = (a[:, 2] - a[:, 0] + one) * (a[:, 3] - a[:, 1] + one)
            area2 = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
        out = np.zeros((len(a), len(b)))
        for i in range(len(a)):
            for j in range(len(b)):
                if bug == "enclosing":
                    w = max(a[i, 2], b[j, 2]) - min(a[i, 0], b[j, 0])
                    h = max(a[i, 3], b[j, 3]) - min(a[i, 1], b[j, 1])
                else:
                    w = min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0]) + one
                    h = min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1]) + one
                inter = w * h if bug == "unclamped" else max(w, 0.0) * max(h, 0.0)
                if bug == "sum":
                    out[i, j] = inter / (area1[i] + area2[j])
                elif bug == "min":
                    out[i, j] = inter / min(area1[i], area2[j])
                else:
                    out[i, j] = inter / (area1[i] + area2[j] - inter)
        if bug == "transposed":
            return out.T
        if bug == "list":
            return out.tolist()
        return out

    return box_iou


def nms_bug(bug: str | None = None):
    box_iou = iou("plus_one") if bug == "plus_one" else S["box_iou"]

    def nms(boxes, scores, iou_threshold):
        if bug == "index":
            order = np.arange(len(scores))
        elif bug == "reversed":
            order = np.argsort(scores)[::-1]
        else:
            order = np.argsort(-scores, kind="stable")
        overlaps = box_iou(boxes, boxes)
        suppressed = np.zeros(len(boxes), dtype=bool)
        keep = []
        for i in order:
            if suppressed[i] and bug != "still_suppress":
                continue
            if not suppressed[i]:
                keep.append(i)
            if bug == "ge":
                over = overlaps[i] >= iou_threshold
            elif bug == "inverted":
                over = overlaps[i] < iou_threshold
            else:
                over = overlaps[i] > iou_threshold
            over[i] = True
            suppressed |= over
        if bug == "sorted_output":
            keep = sorted(keep)
        if bug == "no_dtype":
            return np.array(keep)
        return np.array(keep, dtype=np.int64)

    return nms


def batched(bug: str | None = None):
    def batched_nms(boxes, scores, labels, iou_threshold):
        if bug == "labels_ignored":
            return S["nms"](boxes, scores, iou_threshold)
        keep = []
        for label in np.unique(labels):
            members = np.flatnonzero(labels == label)
            chosen = S["nms"](boxes[members], scores[members], iou_threshold)
            keep.extend(chosen if bug == "local" else members[chosen])
        if bug in ("grouped", "local"):
            return np.array(keep, dtype=np.int64)
        keep = np.array(sorted(keep), dtype=np.int64)
        if bug == "reversed":
            return keep[np.argsort(scores[keep])[::-1]]
        return keep[np.argsort(-scores[keep], kind="stable")]

    return batched_nms


def match(bug: str | None = None):
    def match_detections(pred_boxes, pred_scores, gt_boxes, iou_threshold=0.5):
        flags = np.zeros(len(pred_boxes), dtype=bool)
        if len(pred_boxes) == 0 or len(gt_boxes) == 0:
            return flags
        overlaps = S["box_iou"](pred_boxes, gt_boxes)
        matched = np.zeros(len(gt_boxes), dtype=bool)
        order = (
            np.arange(len(pred_boxes))
            if bug == "index"
            else np.argsort(-pred_scores, kind="stable")
        )
        in_order = []
        for p in order:
            hit = False
            if bug == "best_overall":
                g = np.argmax(overlaps[p])
                hit = overlaps[p, g] >= iou_threshold and not matched[g]
            elif bug == "first_above":
                for g in range(len(gt_boxes)):
                    if not matched[g] and overlaps[p, g] >= iou_threshold:
                        hit = True
                        break
            else:
                candidates = overlaps[p] if bug == "reuse" else np.where(matched, -1.0, overlaps[p])
                g = np.argmax(candidates)
                hit = (
                    candidates[g] > iou_threshold
                    if bug == "strict"
                    else candidates[g] >= iou_threshold
                )
            if hit:
                matched[g] = True
            flags[p] = hit
            in_order.append(hit)
        return np.array(in_order) if bug == "sorted_flags" else flags

    return match_detections


def ap(bug: str | None = None):
    def average_precision(scores, is_true_positive, num_ground_truth):
        if num_ground_truth < 1 and bug != "unchecked":
            raise ValueError("no objects")
        order = np.arange(len(scores)) if bug == "index" else np.argsort(-scores, kind="stable")
        if bug == "reversed":
            order = np.argsort(scores)[::-1]
        hits = np.asarray(is_true_positive, dtype=float)[order]
        if len(hits) == 0:
            return 0.0
        tp = np.cumsum(hits)
        precision = tp / np.arange(1, len(hits) + 1)
        recall = tp / (len(hits) if bug == "over_detections" else num_ground_truth)
        if bug != "no_envelope":
            precision = np.maximum.accumulate(precision[::-1])[::-1]
        if bug == "eleven":
            return float(
                np.mean(
                    [
                        precision[recall >= t].max() if (recall >= t).any() else 0.0
                        for t in np.linspace(0, 1, 11)
                    ]
                )
            )
        if bug == "trapezoid":
            return float(np.trapezoid(precision, recall))  # the points joined by straight lines
        steps = np.diff(np.concatenate([[0.0], recall]))
        if bug == "array":
            return np.array([np.sum(steps * precision)])
        return float(np.sum(steps * precision))

    return average_precision


def encode(bug: str | None = None):
    def encode_boxes(anchors, boxes):
        if bug == "swapped":
            anchors, boxes = boxes, anchors
        one = 1.0 if bug == "plus_one" else 0.0
        wa, ha = anchors[:, 2] - anchors[:, 0] + one, anchors[:, 3] - anchors[:, 1] + one
        w, h = boxes[:, 2] - boxes[:, 0] + one, boxes[:, 3] - boxes[:, 1] + one
        if bug == "corners":
            cxa, cya, cx, cy = anchors[:, 0], anchors[:, 1], boxes[:, 0], boxes[:, 1]
        else:
            cxa, cya = anchors[:, 0] + wa / 2, anchors[:, 1] + ha / 2
            cx, cy = boxes[:, 0] + w / 2, boxes[:, 1] + h / 2
        if bug == "not_normalised":
            tx, ty = cx - cxa, cy - cya
        elif bug == "wh_swapped":
            tx, ty = (cx - cxa) / ha, (cy - cya) / wa
        else:
            tx, ty = (cx - cxa) / wa, (cy - cya) / ha
        tw, th = (w / wa, h / ha) if bug == "no_log" else (np.log(w / wa), np.log(h / ha))
        if bug == "rows":
            return np.stack([tx, ty, tw, th])
        return np.stack([tx, ty, tw, th], axis=1)

    return encode_boxes


def decode(bug: str | None = None):
    def decode_boxes(anchors, deltas):
        if bug == "swapped":
            anchors, deltas = deltas, anchors
        wa, ha = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
        cxa, cya = anchors[:, 0] + wa / 2, anchors[:, 1] + ha / 2
        tx, ty, tw, th = deltas.T
        if bug == "not_scaled":
            cx, cy = cxa + tx, cya + ty
        else:
            cx, cy = cxa + tx * wa, cya + ty * ha
        w, h = (wa * tw, ha * th) if bug == "no_exp" else (wa * np.exp(tw), ha * np.exp(th))
        if bug == "centres":
            return np.stack([cx, cy, w, h], axis=1)
        half = 1.0 if bug == "whole" else 0.5
        return np.stack([cx - half * w, cy - half * h, cx + half * w, cy + half * h], axis=1)

    return decode_boxes


# =============================================================================================
# the catalogue
# =============================================================================================

BUGS = [
    # convolution
    ("kernel_flipped", "test_corr2d", corr2d_flipped),
    ("size_off_by_one", "test_corr2d", corr2d_one_short),
    ("wrong_shape", "test_corr2d", corr2d_flat),
    ("hw_swapped", "test_corr2d", corr2d_transposed),
    ("not_an_array", "test_corr2d", corr2d_as_list),
    ("padding_wrong_axes", "test_pad2d", pad2d_all_axes),
    ("padding_one_side", "test_pad2d_pair", pad2d_one_side),
    ("wrong_dtype", "test_pad2d", pad2d_float32),
    ("pair_swapped", "test_pad2d", pad2d_swapped),
    ("pair_not_handled", "test_pad2d", pad2d_int_only),
    ("output_aliases_input", "test_pad2d", pad2d_returns_input),
    ("bias_missing", "test_conv2d_forward", conv_without_bias),
    ("bias_repeated", "test_conv2d_forward", conv_bias_per_channel),
    ("channels_not_summed", "test_conv2d_forward", conv_first_channel),
    ("square_kernel", "test_conv2d_forward", conv_square_kernel),
    ("stride_ignored", "test_conv2d_forward_stride", conv_stride_ignored),
    ("pair_swapped", "test_conv2d_forward_stride", conv_pairs_swapped),
    ("pair_not_handled", "test_conv2d_forward_stride", conv_stride_int_only),
    ("padding_ignored", "test_conv2d_forward_padding", conv_padding_ignored),
    ("padding_one_side", "test_conv2d_forward_padding", conv_padding_one_side),
    ("ceil_not_floor", "test_max_pool2d_forward", pool("max", "ceil")),
    ("pool_across_channels", "test_max_pool2d_forward", pool("max", "across_channels")),
    ("pool_across_channels", "test_avg_pool2d_forward", pool("avg", "across_channels")),
    ("square_kernel", "test_max_pool2d_forward", pool("max", "square")),
    ("pair_not_handled", "test_max_pool2d_forward", pool("max", "int_only")),
    ("pair_swapped", "test_max_pool2d_forward_overlap", pool("max", "swapped")),
    ("avg_wrong_divisor", "test_avg_pool2d_forward", pool("avg", "sum")),
    # output_shapes
    ("dilation_ignored", "test_conv_output_size", size("no_dilation")),
    ("padding_counted_once", "test_conv_output_size", size("padding_once")),
    ("padding_ignored", "test_conv_output_size", size("no_padding")),
    ("true_division", "test_conv_output_size", size("true_division")),
    ("ceil_not_floor", "test_conv_output_size", size("ceil")),
    ("stride_ignored", "test_conv_output_size", size("no_stride")),
    ("size_off_by_one", "test_conv_output_size", size("off_by_one")),
    ("not_an_int", "test_conv_output_size", size("none")),
    ("no_value_error", "test_conv_output_size_errors", size("unchecked")),
    ("truncated_division", "test_conv_output_size_errors", size("truncated")),
    ("truncated_division", "test_pool_output_size_errors", pool_size("truncated")),
    ("pool_stride_default", "test_pool_output_size", pool_size("stride_one")),
    ("channels_wrong", "test_conv2d_output_shape", output_shape("channels")),
    ("hw_swapped", "test_conv2d_output_shape", output_shape("hw_swapped")),
    ("pair_swapped", "test_conv2d_output_shape", output_shape("stride_swapped")),
    ("pair_not_handled", "test_conv2d_output_shape", output_shape("int_only")),
    ("not_a_tuple", "test_conv2d_output_shape", output_shape("list")),
    ("num_params_bias", "test_conv2d_num_params", num_params("no_bias")),
    ("square_kernel", "test_conv2d_num_params", num_params("square")),
    ("num_params_kernel", "test_conv2d_num_params", num_params("no_in_channels")),
    ("batch_axis_included", "test_layer_output_shapes", layers("batch")),
    ("not_a_shape_list", "test_layer_output_shapes", layers("lists")),
    ("same_padding_ignored", "test_layer_output_shapes_padding", layers("same_ignored")),
    ("dilation_ignored", "test_layer_output_shapes_padding", layers("no_dilation")),
    ("padding_ignored", "test_layer_output_shapes_padding", layers("pool_padding_ignored")),
    ("pair_swapped", "test_layer_output_shapes_padding", layers("pool_pairs_swapped")),
    ("ceil_not_floor", "test_layer_output_shapes", layers("ceil")),
    # backprop
    ("relu_at_zero", "test_relu_backward", relu_at_zero),
    ("relu_wrong_mask", "test_relu_backward", relu_mask_from_dout),
    ("input_modified", "test_relu_backward", relu_in_place),
    ("tie_all_maxima", "test_max_pool2d_backward_ties", max_pool_back("all")),
    ("tie_last_maximum", "test_max_pool2d_backward_ties", max_pool_back("last")),
    ("overlap_overwritten", "test_max_pool2d_backward_ties", max_pool_back("first", False)),
    ("argmax_not_offset", "test_max_pool2d_backward", max_pool_back(offset=False)),
    ("pair_swapped", "test_max_pool2d_backward", max_pool_back(bug="swapped")),
    ("overlap_overwritten", "test_avg_pool2d_backward", avg_pool_back(accumulate=False)),
    ("avg_grad_not_divided", "test_avg_pool2d_backward", avg_pool_back(divide=False)),
    ("stride_ignored", "test_avg_pool2d_backward", avg_pool_back(bug="stride_one")),
    ("dw_not_summed_over_batch", "test_conv2d_backward", conv_back_dw_last_sample),
    ("db_wrong_axes", "test_conv2d_backward", conv_back_db_axes),
    ("db_not_none", "test_conv2d_backward", conv_back_db_zeros),
    ("padding_not_removed", "test_conv2d_backward_stride", conv_back_padded_dx),
    ("overlap_overwritten", "test_conv2d_backward", conv_back_dx_overwritten),
    ("kernel_flipped", "test_conv2d_backward", conv_back_flipped),
    ("stride_ignored", "test_conv2d_backward_stride", conv_back_stride_ignored),
    ("not_a_tuple", "test_conv2d_backward", conv_back_two_values),
    ("forward_difference", "test_numerical_gradient_step", numgrad("forward")),
    ("forward_difference", "test_numerical_gradient", numgrad("forward")),
    ("centred_over_h", "test_numerical_gradient", numgrad("over_h")),
    ("h_ignored", "test_numerical_gradient_step", numgrad("centred", fixed_h=1e-5)),
    ("input_modified", "test_numerical_gradient", numgrad_in_place_not_restored),
    ("first_axis_only", "test_numerical_gradient", numgrad("first_axis")),
    ("x_not_restored", "test_numerical_gradient", numgrad("not_restored")),
    ("minus_at_x", "test_numerical_gradient", numgrad("minus_at_x")),
    # architectures
    ("bn_wrong_axes", "test_batchnorm_forward", bn_forward("axes")),
    ("bn_wrong_axes", "test_batchnorm_forward", bn_forward("instance")),
    ("eps_outside_sqrt", "test_batchnorm_forward", bn_forward("eps_outside")),
    ("bn_unbiased_normalisation", "test_batchnorm_forward", bn_forward("unbiased")),
    ("running_var_biased", "test_batchnorm_forward_running", bn_forward("running_biased")),
    ("momentum_reversed", "test_batchnorm_forward_running", bn_forward("momentum")),
    ("running_not_updated", "test_batchnorm_forward_running", bn_forward("not_updated")),
    ("running_replaced", "test_batchnorm_forward_running", bn_forward("replaced")),
    ("eval_uses_batch_statistics", "test_batchnorm_forward_eval", bn_forward("eval_batch")),
    ("eval_updates_running", "test_batchnorm_forward_eval", bn_forward("eval_updates")),
    ("output_aliases_input", "test_batchnorm_forward_eval", bn_forward("alias")),
    ("training_uses_running", "test_batchnorm_forward", bn_forward("uses_running")),
    ("gamma_beta_swapped", "test_batchnorm_forward", bn_forward("swapped")),
    ("not_a_tuple", "test_batchnorm_forward", bn_forward("only_out")),
    ("bn_backward_constant_statistics", "test_batchnorm_backward", bn_backward("constant")),
    ("bn_backward_term_missing", "test_batchnorm_backward", bn_backward("no_variance_term")),
    ("bn_unbiased_normalisation", "test_batchnorm_backward", bn_backward("unbiased")),
    ("eps_outside_sqrt", "test_batchnorm_backward_eps", bn_backward("eps_outside")),
    ("gamma_missing_in_dx", "test_batchnorm_backward", bn_backward("no_gamma")),
    ("bn_count_wrong", "test_batchnorm_backward", bn_backward("count")),
    ("dgamma_uses_x", "test_batchnorm_backward", bn_backward("dgamma_x")),
    ("dgamma_dbeta_swapped", "test_batchnorm_backward", bn_backward("swapped")),
    ("bn_grad_wrong_axes", "test_batchnorm_backward", bn_backward("axes")),
    ("fold_scale_wrong_axis", "test_fold_batchnorm", fold("last_axis")),
    ("fold_no_sqrt", "test_fold_batchnorm", fold("no_sqrt")),
    ("eps_outside_sqrt", "test_fold_batchnorm", fold("eps_outside")),
    ("fold_bias_not_scaled", "test_fold_batchnorm", fold("not_scaled")),
    ("fold_bias_ignored", "test_fold_batchnorm", fold("ignore_b")),
    ("fold_beta_scaled", "test_fold_batchnorm", fold("beta_scaled")),
    ("fold_bias_none", "test_fold_batchnorm", fold("none")),
    ("final_relu_missing", "test_residual_block_forward", residual("no_final_relu")),
    ("relu_before_add", "test_residual_block_forward", residual("relu_before_add")),
    ("inner_relu_missing", "test_residual_block_forward", residual("no_inner_relu")),
    ("stride_on_second_conv", "test_residual_block_forward_projection", residual("stride_second")),
    ("projection_ignored", "test_residual_block_forward_projection", residual("ignore_proj")),
    ("shortcut_unchecked", "test_residual_block_forward_errors", residual("unchecked")),
    ("conv_padding_missing", "test_residual_block_forward", residual("no_padding")),
    ("kernel_flipped", "test_residual_block_forward", residual("flipped")),
    ("dense_order_reversed", "test_dense_block_forward", dense("reversed")),
    ("dense_relu_missing", "test_dense_block_forward", dense("no_relu")),
    ("dense_relu_after_conv", "test_dense_block_forward", dense("relu_after")),
    ("dense_relu_kept", "test_dense_block_forward", dense("relu_kept")),
    ("dense_missing_features", "test_dense_block_forward", dense("new_only")),
    ("kernel_flipped", "test_dense_block_forward", dense("flipped")),
    ("output_aliases_input", "test_dense_block_forward_layers", dense("alias")),
    # detection
    ("iou_plus_one", "test_box_iou", iou("plus_one")),
    ("iou_unclamped", "test_box_iou", iou("unclamped")),
    ("iou_wrong_denominator", "test_box_iou", iou("sum")),
    ("iou_wrong_denominator", "test_box_iou", iou("min")),
    ("iou_enclosing_box", "test_box_iou", iou("enclosing")),
    ("iou_transposed", "test_box_iou", iou("transposed")),
    ("iou_xywh", "test_box_iou", iou("xywh")),
    ("not_an_array", "test_box_iou", iou("list")),
    ("nms_greater_equal", "test_nms_rules", nms_bug("ge")),
    ("not_sorted_by_score", "test_nms", nms_bug("index")),
    ("ties_reversed", "test_nms_rules", nms_bug("reversed")),
    ("nms_suppressed_still_suppress", "test_nms_rules", nms_bug("still_suppress")),
    ("nms_index_order", "test_nms", nms_bug("sorted_output")),
    ("nms_inverted", "test_nms", nms_bug("inverted")),
    ("empty_float_array", "test_nms_rules", nms_bug("no_dtype")),
    ("iou_plus_one", "test_nms", nms_bug("plus_one")),
    ("batched_labels_ignored", "test_batched_nms", batched("labels_ignored")),
    ("batched_grouped_by_label", "test_batched_nms", batched("grouped")),
    ("batched_local_indices", "test_batched_nms", batched("local")),
    ("ties_reversed", "test_batched_nms", batched("reversed")),
    ("match_gt_reused", "test_match_detections_rules", match("reuse")),
    ("match_strict", "test_match_detections_rules", match("strict")),
    ("match_best_overall", "test_match_detections_rules", match("best_overall")),
    ("match_first_above", "test_match_detections_rules", match("first_above")),
    ("match_flags_sorted", "test_match_detections", match("sorted_flags")),
    ("not_sorted_by_score", "test_match_detections", match("index")),
    ("ap_no_envelope", "test_average_precision", ap("no_envelope")),
    ("ap_recall_denominator", "test_average_precision", ap("over_detections")),
    ("ap_eleven_point", "test_average_precision", ap("eleven")),
    ("ap_trapezoid", "test_average_precision", ap("trapezoid")),
    ("not_sorted_by_score", "test_average_precision", ap("index")),
    ("ties_reversed", "test_average_precision_rules", ap("reversed")),
    ("ap_num_ground_truth_unchecked", "test_average_precision_rules", ap("unchecked")),
    ("not_a_float", "test_average_precision", ap("array")),
    ("encode_arguments_swapped", "test_encode_boxes", encode("swapped")),
    ("encode_corners", "test_encode_boxes", encode("corners")),
    ("encode_not_normalised", "test_encode_boxes", encode("not_normalised")),
    ("encode_no_log", "test_encode_boxes", encode("no_log")),
    ("width_height_swapped", "test_encode_boxes", encode("wh_swapped")),
    ("transposed_output", "test_encode_boxes", encode("rows")),
    ("iou_plus_one", "test_encode_boxes", encode("plus_one")),
    ("decode_no_exp", "test_decode_boxes", decode("no_exp")),
    ("decode_centre_format", "test_decode_boxes", decode("centres")),
    ("decode_not_scaled", "test_decode_boxes", decode("not_scaled")),
    ("decode_half_missing", "test_decode_boxes", decode("whole")),
    ("decode_arguments_swapped", "test_decode_boxes", decode("swapped")),
]

#: More typical mistakes, without a fixed diagnosis: (function, buggy version).
MORE = [
    ("corr2d", corr2d_int_output),
    ("pad2d", pad2d_height_only),
    ("pad2d", pad2d_first_axes),
    ("conv2d_forward", conv_flipped),
    ("max_pool2d_forward", pool("max", "hw_swapped")),
    ("max_pool2d_forward", pool("max", "stride_one")),
    ("max_pool2d_forward", pool("max", "one_short")),
    ("avg_pool2d_forward", pool("avg", "divide_by_kh")),
    ("avg_pool2d_forward", pool("avg", "square")),
    ("avg_pool2d_forward", pool("avg", "ceil")),
    ("pool_output_size", pool_size("unchecked")),
    ("conv2d_output_shape", output_shape("square")),
    ("conv2d_num_params", num_params("bias_per_input")),
    ("conv2d_num_params", num_params("float")),
    ("relu_backward", relu_mask_only),
    ("max_pool2d_backward", max_pool_back_ge_loop),
    ("max_pool2d_backward", max_pool_back("all", False)),
    ("avg_pool2d_backward", avg_pool_back(bug="swapped")),
    ("avg_pool2d_backward", avg_pool_back(divide=False, accumulate=False)),
    ("numerical_gradient", numgrad_flat_loop),
    ("batchnorm_forward", bn_forward("layer")),
    ("batchnorm_forward", bn_forward("no_affine")),
    ("batchnorm_backward", bn_backward("eps_outside")),
    ("nms", nms_bug("ge")),
    ("nms", nms_bug("reversed")),
    ("nms", nms_bug("still_suppress")),
    ("match_detections", match("reuse")),
    ("match_detections", match("strict")),
    ("average_precision", ap("reversed")),
    ("encode_boxes", encode("plus_one")),
]
