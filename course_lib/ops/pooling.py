"""Max, average and min pooling, adaptive and global pooling, and the backward passes.

Every operator takes a batch of feature maps ``x: (N, C, H, W)`` and matches
``torch.nn.functional`` exactly (same output sizes, same ``ceil_mode`` and ``count_include_pad``
rules, same tie rule in the max-pooling gradient).

Two versions sit side by side for max and average pooling and their gradients:

* ``*_naive``: the clearest correct version, one explicit loop over the output windows (the loop
  runs over every window position; the batch and the channels are handled at once);
* the plain name: a vectorised version that works on all windows at once through strided views
  of the padded input (no Python loop over windows; at most a loop over the kh*kw entries of a
  window).

Window rule (PyTorch's): output row ``i`` looks at input rows ``i*stride - padding`` up to
``i*stride - padding + kernel_size - 1``; rows outside the input are padding (``-inf`` for max
pooling, ``0`` for average pooling). With ``ceil_mode=True`` one more window is kept at the end
when it still starts inside the input or the left padding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .._validate import check_same_device_dtype, check_tensor, int_or_pair, window_output_size

__all__ = [
    "max_pool2d_naive",
    "max_pool2d",
    "avg_pool2d_naive",
    "avg_pool2d",
    "min_pool2d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "global_avg_pool2d",
    "max_pool2d_backward_naive",
    "max_pool2d_backward",
    "avg_pool2d_backward_naive",
    "avg_pool2d_backward",
]

IntOrPair = int | Sequence[int]
_LAYOUT = "(N, C, H, W)"


# --------------------------------------------------------------------------------------------
# Window geometry
# --------------------------------------------------------------------------------------------


class _Geometry:
    """Kernel, stride, padding and output size of one pooling call, checked."""

    def __init__(
        self,
        x: torch.Tensor,
        kernel_size: IntOrPair,
        stride: IntOrPair | None,
        padding: IntOrPair,
        ceil_mode: bool,
    ) -> None:
        check_tensor(x, "x", ndim=4, layout=_LAYOUT)
        self.kernel_size = int_or_pair(kernel_size, "kernel_size", minimum=1)
        self.stride = (
            self.kernel_size if stride is None else int_or_pair(stride, "stride", minimum=1)
        )
        self.padding = int_or_pair(padding, "padding", minimum=0)
        kh, kw = self.kernel_size
        ph, pw = self.padding
        if 2 * ph > kh or 2 * pw > kw:
            raise ValueError(
                f"padding must be at most half of kernel_size, got padding {self.padding} "
                f"for kernel_size {self.kernel_size}"
            )
        self.in_size = (x.shape[2], x.shape[3])
        H, W = self.in_size
        if kh > H + 2 * ph or kw > W + 2 * pw:
            raise ValueError(
                f"kernel_size {self.kernel_size} is larger than the padded input "
                f"({H + 2 * ph}, {W + 2 * pw}) (input (H, W) = ({H}, {W}), padding {self.padding})"
            )
        self.ceil_mode = bool(ceil_mode)
        sh, sw = self.stride
        self.out_size = (
            window_output_size(H, kh, sh, ph, ceil_mode=self.ceil_mode),
            window_output_size(W, kw, sw, pw, ceil_mode=self.ceil_mode),
        )

    def out_shape(self, x: torch.Tensor) -> tuple[int, int, int, int]:
        return (x.shape[0], x.shape[1], *self.out_size)

    def padded_extent(self) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) padding so that every window lies inside the tensor.

        ``bottom``/``right`` add to ``padding`` the extra rows a ``ceil_mode`` window reaches.
        """
        (H, W), (kh, kw), (sh, sw) = self.in_size, self.kernel_size, self.stride
        (ph, pw), (oh, ow) = self.padding, self.out_size
        bottom = max(ph, (oh - 1) * sh + kh - H - ph)
        right = max(pw, (ow - 1) * sw + kw - W - pw)
        return ph, bottom, pw, right

    def window(self, i: int, j: int) -> tuple[int, int, int, int, int, int]:
        """Bounds of window (i, j): rows h0:h1 and columns w0:w1 clipped to the input, and
        the number of rows and columns it covers inside the padded input (for the average)."""
        (H, W), (kh, kw), (sh, sw), (ph, pw) = (
            self.in_size,
            self.kernel_size,
            self.stride,
            self.padding,
        )
        h0, w0 = i * sh - ph, j * sw - pw
        h1, w1 = min(h0 + kh, H + ph), min(w0 + kw, W + pw)
        rows_padded, cols_padded = h1 - h0, w1 - w0
        return max(h0, 0), min(h1, H), max(w0, 0), min(w1, W), rows_padded, cols_padded

    def divisor(self, x: torch.Tensor, count_include_pad: bool) -> torch.Tensor:
        """(OH, OW) number of elements each average-pooling window divides by."""
        (H, W), (kh, kw), (sh, sw), (ph, pw) = (
            self.in_size,
            self.kernel_size,
            self.stride,
            self.padding,
        )
        oh, ow = self.out_size

        def counts(n_out: int, size: int, k: int, s: int, p: int) -> torch.Tensor:
            start = torch.arange(n_out, device=x.device) * s - p
            end = torch.clamp(start + k, max=size + p)
            if not count_include_pad:
                start, end = start.clamp(min=0), end.clamp(max=size)
            return (end - start).to(x.dtype)

        return torch.outer(counts(oh, H, kh, sh, ph), counts(ow, W, kw, sw, pw))


def _check_dout(dout: torch.Tensor, x: torch.Tensor, geometry: _Geometry) -> None:
    check_tensor(dout, "dout", ndim=4, layout=_LAYOUT)
    check_same_device_dtype(x=x, dout=dout)
    expected = geometry.out_shape(x)
    if tuple(dout.shape) != expected:
        raise ValueError(
            f"dout has shape {tuple(dout.shape)} but the pooling output for x of shape "
            f"{tuple(x.shape)} has shape {expected}"
        )


def _pad(x: torch.Tensor, geometry: _Geometry, value: float) -> torch.Tensor:
    """x padded with ``value`` so that every window, ``ceil_mode`` ones included, lies inside."""
    top, bottom, left, right = geometry.padded_extent()
    if top or bottom or left or right:
        return F.pad(x, (left, right, top, bottom), value=value)
    return x


def _offset(t: torch.Tensor, dim: int, offset: int, count: int, stride: int) -> torch.Tensor:
    """Entry ``offset`` of each of ``count`` windows along ``dim``: a strided view of ``t``."""
    return t.narrow(dim, offset, (count - 1) * stride + 1)[
        (slice(None),) * dim + (slice(None, None, stride),)
    ]


def _reduce_windows(
    x_padded: torch.Tensor,
    geometry: _Geometry,
    combine: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Combine the entries of every window with ``combine`` (``torch.maximum`` or ``torch.add``).

    A window's max (or sum) is the max (or sum) over its rows of the max (or sum) over its
    columns, so the work is done in two passes: across the kw columns of the window for every
    input row, then across the kh rows. Each step combines strided views holding one entry of
    every window at once. Returns a new (N, C, OH, OW) tensor.
    """
    (kh, kw), (sh, sw), (oh, ow) = geometry.kernel_size, geometry.stride, geometry.out_size
    across_columns = _offset(x_padded, 3, 0, ow, sw)  # (N, C, Hp, OW)
    for b in range(1, kw):
        across_columns = combine(across_columns, _offset(x_padded, 3, b, ow, sw))
    out = _offset(across_columns, 2, 0, oh, sh)  # (N, C, OH, OW)
    for a in range(1, kh):
        out = combine(out, _offset(across_columns, 2, a, oh, sh))
    if kh == 1 and kw == 1:  # out is still a view of the input: copy it
        return out.clone(memory_format=torch.contiguous_format)
    return out.contiguous()


# --------------------------------------------------------------------------------------------
# Max pooling
# --------------------------------------------------------------------------------------------


def max_pool2d_naive(
    x: torch.Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
) -> torch.Tensor:
    """2-D max pooling, one window at a time (the reference version).

    x: (N, C, H, W); kernel_size, stride, padding: int or (height, width); stride defaults to
    kernel_size; padding counts as ``-inf`` (it never wins). Returns (N, C, OH, OW) with
    ``OH = floor((H + 2*padding - kernel_size) / stride) + 1`` (``ceil`` with ``ceil_mode``).
    """
    g = _Geometry(x, kernel_size, stride, padding, ceil_mode)
    out = x.new_empty(g.out_shape(x))
    for i in range(g.out_size[0]):
        for j in range(g.out_size[1]):
            h0, h1, w0, w1, _, _ = g.window(i, j)
            # Only the part of the window inside the input: padding is -inf and never wins.
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].amax(dim=(2, 3))
    return out


def max_pool2d(
    x: torch.Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
) -> torch.Tensor:
    """2-D max pooling, all windows at once; same arguments and result as
    :func:`max_pool2d_naive` and ``F.max_pool2d``.

    x: (N, C, H, W) -> (N, C, OH, OW).
    """
    g = _Geometry(x, kernel_size, stride, padding, ceil_mode)
    return _reduce_windows(_pad(x, g, float("-inf")), g, torch.maximum)


def min_pool2d(
    x: torch.Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
) -> torch.Tensor:
    """2-D min pooling: the smallest value of each window, ``-max_pool2d(-x)``.

    x: (N, C, H, W) -> (N, C, OH, OW); padding counts as ``+inf`` (it never wins).
    """
    check_tensor(x, "x", ndim=4, layout=_LAYOUT)
    return -max_pool2d(-x, kernel_size, stride, padding, ceil_mode)


def max_pool2d_backward_naive(
    dout: torch.Tensor,
    x: torch.Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
) -> torch.Tensor:
    """Gradient of :func:`max_pool2d` with respect to x, one window at a time.

    dout: (N, C, OH, OW), the gradient of the loss with respect to the pooled output;
    x: (N, C, H, W), the input of the forward pass. Returns dx: (N, C, H, W).

    Each window sends its ``dout`` to the position of its maximum; when several entries tie,
    to the first of them in row-major order within the window (PyTorch's rule). Windows that
    overlap add their contributions.
    """
    g = _Geometry(x, kernel_size, stride, padding, ceil_mode)
    _check_dout(dout, x, g)
    N, C, H, W = x.shape
    dx = x.new_zeros(N, C, H, W)
    dx_flat = dx.view(N, C, H * W)  # shares memory with dx
    for i in range(g.out_size[0]):
        for j in range(g.out_size[1]):
            h0, h1, w0, w1, _, _ = g.window(i, j)
            window = x[:, :, h0:h1, w0:w1].reshape(N, C, -1)
            first_max = window.argmax(dim=2)  # argmax returns the first maximum
            rows = h0 + first_max // (w1 - w0)
            cols = w0 + first_max % (w1 - w0)
            position = (rows * W + cols).unsqueeze(2)  # (N, C, 1) flat index into H*W
            dx_flat.scatter_add_(2, position, dout[:, :, i, j].unsqueeze(2))
    return dx


def max_pool2d_backward(
    dout: torch.Tensor,
    x: torch.Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
) -> torch.Tensor:
    """Gradient of :func:`max_pool2d` with respect to x, all windows at once.

    dout: (N, C, OH, OW); x: (N, C, H, W) -> dx: (N, C, H, W). Same rule and result as
    :func:`max_pool2d_backward_naive`: first maximum in row-major order, overlaps add up.
    (For inputs holding NaN the choice of entry is not PyTorch's.)
    """
    g = _Geometry(x, kernel_size, stride, padding, ceil_mode)
    _check_dout(dout, x, g)
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (oh, ow) = g.kernel_size, g.stride, g.out_size
    top, bottom, left, right = g.padded_extent()
    x_padded = _pad(x, g, float("-inf"))
    Hp, Wp = x_padded.shape[2:]
    device = x.device

    # 1. The maximum of every window (the forward pass).
    best = _reduce_windows(x_padded, g, torch.maximum)  # (N, C, OH, OW)

    # 2. Which entry of each window holds it first in row-major order: visit the kh*kw
    #    entries from last to first and mark the windows where the entry equals the maximum;
    #    the last mark written is the first maximum. Padding cells never count (PyTorch's
    #    rule, which matters only when a whole window is -inf).
    first = torch.zeros(best.shape, dtype=torch.int32, device=device)
    rows = torch.arange(oh, device=device) * sh  # top row of each window, padded coordinates
    cols = torch.arange(ow, device=device) * sw
    for k in reversed(range(kh * kw)):
        a, b = divmod(k, kw)
        is_max = _offset(_offset(x_padded, 2, a, oh, sh), 3, b, ow, sw) == best
        if top or bottom or left or right:
            row_inside = (rows + a >= top) & (rows + a < top + H)
            col_inside = (cols + b >= left) & (cols + b < left + W)
            is_max &= row_inside.view(oh, 1) & col_inside.view(1, ow)
        first.masked_fill_(is_max, k)

    # 3. Send each window's dout to that entry: flat index into the padded (Hp, Wp) plane.
    window_corner = rows.view(oh, 1) * Wp + cols.view(1, ow)  # (OH, OW)
    entry_offset = torch.tensor([a * Wp + b for a in range(kh) for b in range(kw)], device=device)
    position = (window_corner + entry_offset[first]).reshape(N, C, oh * ow)
    dx_padded = x.new_zeros(N, C, Hp * Wp)
    dx_padded.scatter_add_(2, position, dout.reshape(N, C, oh * ow))
    return dx_padded.view(N, C, Hp, Wp)[:, :, top : top + H, left : left + W].contiguous()


# --------------------------------------------------------------------------------------------
# Average pooling
# --------------------------------------------------------------------------------------------


def avg_pool2d_naive(
    x: torch.Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> torch.Tensor:
    """2-D average pooling, one window at a time (the reference version).

    x: (N, C, H, W) -> (N, C, OH, OW). Padding counts as zeros. Each window's sum is divided by
    the number of its cells inside the padded input (``count_include_pad=True``) or inside the
    input only (``count_include_pad=False``); cells a ``ceil_mode`` window reaches past the
    padding are never counted.
    """
    g = _Geometry(x, kernel_size, stride, padding, ceil_mode)
    out = x.new_empty(g.out_shape(x))
    for i in range(g.out_size[0]):
        for j in range(g.out_size[1]):
            h0, h1, w0, w1, rows_padded, cols_padded = g.window(i, j)
            total = x[:, :, h0:h1, w0:w1].sum(dim=(2, 3))
            count = rows_padded * cols_padded if count_include_pad else (h1 - h0) * (w1 - w0)
            out[:, :, i, j] = total / count
    return out


def avg_pool2d(
    x: torch.Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> torch.Tensor:
    """2-D average pooling, all windows at once; same arguments and result as
    :func:`avg_pool2d_naive` and ``F.avg_pool2d``.

    x: (N, C, H, W) -> (N, C, OH, OW).
    """
    g = _Geometry(x, kernel_size, stride, padding, ceil_mode)
    total = _reduce_windows(_pad(x, g, 0.0), g, torch.add)
    return total / g.divisor(x, count_include_pad)


def avg_pool2d_backward_naive(
    dout: torch.Tensor,
    x: torch.Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> torch.Tensor:
    """Gradient of :func:`avg_pool2d` with respect to x, one window at a time.

    dout: (N, C, OH, OW); x: (N, C, H, W) (only its shape is used) -> dx: (N, C, H, W).
    Each window spreads ``dout / count`` evenly over its input cells; overlaps add up.
    """
    g = _Geometry(x, kernel_size, stride, padding, ceil_mode)
    _check_dout(dout, x, g)
    dx = x.new_zeros(x.shape)
    for i in range(g.out_size[0]):
        for j in range(g.out_size[1]):
            h0, h1, w0, w1, rows_padded, cols_padded = g.window(i, j)
            count = rows_padded * cols_padded if count_include_pad else (h1 - h0) * (w1 - w0)
            dx[:, :, h0:h1, w0:w1] += (dout[:, :, i, j] / count)[:, :, None, None]
    return dx


def avg_pool2d_backward(
    dout: torch.Tensor,
    x: torch.Tensor,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> torch.Tensor:
    """Gradient of :func:`avg_pool2d` with respect to x, vectorised.

    dout: (N, C, OH, OW); x: (N, C, H, W) (only its shape is used) -> dx: (N, C, H, W).
    Instead of looping over windows it loops over the kh*kw offsets inside a window: offset
    (a, b) of every window at once is the strided slice ``a::stride_h, b::stride_w`` of the
    padded input, which receives ``dout / count``.
    """
    g = _Geometry(x, kernel_size, stride, padding, ceil_mode)
    _check_dout(dout, x, g)
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (oh, ow) = g.kernel_size, g.stride, g.out_size
    top, bottom, left, right = g.padded_extent()
    share = dout / g.divisor(x, count_include_pad)
    dx_padded = x.new_zeros(N, C, H + top + bottom, W + left + right)
    for a in range(kh):
        for b in range(kw):
            _offset(_offset(dx_padded, 2, a, oh, sh), 3, b, ow, sw).add_(share)
    return dx_padded[:, :, top : top + H, left : left + W].contiguous()


# --------------------------------------------------------------------------------------------
# Adaptive and global pooling
# --------------------------------------------------------------------------------------------


def _adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's bins: bin i covers [floor(i*size/out), ceil((i+1)*size/out))."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def _adaptive_pool(x: torch.Tensor, output_size: IntOrPair, reduce: str) -> torch.Tensor:
    check_tensor(x, "x", ndim=4, layout=_LAYOUT)
    out_h, out_w = int_or_pair(output_size, "output_size", minimum=1)
    N, C, H, W = x.shape
    if H < 1 or W < 1:
        raise ValueError(f"expected x with non-empty H and W, got shape {tuple(x.shape)}")
    out = x.new_empty(N, C, out_h, out_w)
    for i, (h0, h1) in enumerate(_adaptive_bins(H, out_h)):
        for j, (w0, w1) in enumerate(_adaptive_bins(W, out_w)):
            cell = x[:, :, h0:h1, w0:w1]
            out[:, :, i, j] = cell.amax(dim=(2, 3)) if reduce == "max" else cell.mean(dim=(2, 3))
    return out


def adaptive_avg_pool2d(x: torch.Tensor, output_size: IntOrPair) -> torch.Tensor:
    """Average pooling to a fixed output size, whatever the input size.

    x: (N, C, H, W) -> (N, C, out_h, out_w). Output row i averages input rows
    ``floor(i*H/out_h)`` to ``ceil((i+1)*H/out_h) - 1`` (PyTorch's rule; bins may overlap).
    """
    return _adaptive_pool(x, output_size, "mean")


def adaptive_max_pool2d(x: torch.Tensor, output_size: IntOrPair) -> torch.Tensor:
    """Max pooling to a fixed output size, with the bins of :func:`adaptive_avg_pool2d`.

    x: (N, C, H, W) -> (N, C, out_h, out_w).
    """
    return _adaptive_pool(x, output_size, "max")


def global_avg_pool2d(x: torch.Tensor) -> torch.Tensor:
    """Global average pooling: the mean of each feature map.

    x: (N, C, H, W) -> (N, C). The spatial axes are dropped (not kept as (N, C, 1, 1)), so the
    result can feed a linear layer directly; ``adaptive_avg_pool2d(x, 1)`` keeps them.
    """
    check_tensor(x, "x", ndim=4, layout=_LAYOUT)
    return x.mean(dim=(2, 3))
