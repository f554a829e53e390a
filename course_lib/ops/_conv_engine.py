"""The fast convolution engine behind :func:`course_lib.conv2d`, its gradients and
:func:`course_lib.conv_transpose2d`: matrix products (GEMMs), never PyTorch's own convolution
routines. Its functions take arguments already checked by the public operators.

How the fast ``conv2d`` works
-----------------------------
Pad the input and lay out each padded channel plane of each sample as one long row of
``H_pad * W_pad`` pixels. For a kernel tap ``(ki, kj)`` the pixels it multiplies, for all output
positions of a sample, are this row shifted by ``ki * W_pad + kj``: a slice of memory, no copy.
So a sample's output is a sum over the ``kh * kw`` taps of ``weight[:, :, ki, kj] @
shifted_rows``, GEMMs of shape ``(C_out, C_in) @ (C_in, H_pad * W_pad)``, one batched GEMM per
tap for a piece of several samples, accumulated in place. The slices also produce values at the
padding positions to the right of and below each sample's outputs; those are thrown away when
the result is cropped out (and the bias added). A stride ``s`` first splits the padded input into
``s * s`` *phases* (every ``s``-th row and column starting at each offset), inside which every
tap is again a plain shift. When ``C_in / groups`` is small (or there are groups) the per-tap
GEMMs are too thin to be efficient, so the windows are first copied into column matrices
(im2col) and multiplied in one batched GEMM per piece of samples, which writes straight into the
(N, C_out, H_out, W_out) result. With a stride ``sw`` the columns of the padded input are first
split into ``sw`` phases, so that the im2col copy reads contiguous runs of memory rather than
every ``sw``-th value. The backward pass and ``conv_transpose2d`` run the taps the other way:
``weight_tap.T @ dout`` added back onto the shifted slices.

The buffers and the views into them form a *plan* for one problem size, kept and reused when
the same sizes come back (:mod:`course_lib.ops._workspace`): the padding is zeroed once, and a
small convolution does not spend as long in Python working out views as in arithmetic.
``python -m benchmarks conv`` times all this against ``torch.nn.functional.conv2d``.

The entry points are :func:`conv2d_forward`, :func:`conv2d_gradients` and
:func:`conv_transpose2d_forward`; everything else here is internal.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from course_lib._validate import window_output_size
from course_lib.ops._workspace import buffers_nbytes, reuse
from course_lib.ops.padding import Padding4

__all__ = ["conv2d_forward", "conv2d_gradients", "conv_transpose2d_forward"]

# Below this many input channels per group a tap's GEMM is too thin: use one im2col GEMM.
_COLUMNS_BELOW_CHANNELS = 16
# The work is done in pieces of about this many bytes of operands: they stay in the CPU caches,
# and few large GEMM calls keep the cost of starting the threads low.
_CHUNK_BYTES = 16 * 2**20
_MIN_CHUNK = 512


@dataclass(frozen=True)
class _Geometry:
    """Sizes shared by the fast forward and backward passes.

    The padded input is split into ``sh * sw`` phases; each phase holds, per channel, one long
    row: the ``phase_h * phase_w`` pixels of sample 0, then of sample 1, and so on, then ``tail``
    zeros so that every shifted slice stays inside the row. Outputs are computed on the same
    grid of ``width = N * phase_h * phase_w`` positions; only rows ``i < out_h`` and columns
    ``j < out_w`` of each sample are kept, the rest is discarded.
    """

    n_batch: int
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    stride: tuple[int, int]
    pads: Padding4
    phase_h: int
    phase_w: int
    # one entry per kernel tap (ki, kj), in weight order: (row phase, column phase, shift)
    taps: tuple[tuple[int, int, int], ...]

    @property
    def width(self) -> int:
        return self.n_batch * self.phase_h * self.phase_w

    @property
    def tail(self) -> int:
        return max(shift for _, _, shift in self.taps)


@functools.lru_cache(maxsize=256)
def _geometry(
    n_batch: int,
    in_hw: tuple[int, int],
    kernel_hw: tuple[int, int],
    stride: tuple[int, int],
    pads: Padding4,
    dilation: tuple[int, int],
    out_hw: tuple[int, int] | None = None,
) -> _Geometry:
    (sh, sw), (dh, dw) = stride, dilation
    padded_h = in_hw[0] + pads[0] + pads[1]
    padded_w = in_hw[1] + pads[2] + pads[3]
    if out_hw is None:
        out_hw = (
            window_output_size(in_hw[0], kernel_hw[0], sh, (pads[0], pads[1]), dh),
            window_output_size(in_hw[1], kernel_hw[1], sw, (pads[2], pads[3]), dw),
        )
    phase_h, phase_w = -(-padded_h // sh), -(-padded_w // sw)
    taps = []
    for ki in range(kernel_hw[0]):
        row_shift, row_phase = divmod(ki * dh, sh)
        for kj in range(kernel_hw[1]):
            col_shift, col_phase = divmod(kj * dw, sw)
            taps.append((row_phase, col_phase, row_shift * phase_w + col_shift))
    return _Geometry(n_batch, in_hw, out_hw, stride, pads, phase_h, phase_w, tuple(taps))


def _phase_body(phases: torch.Tensor, geom: _Geometry) -> torch.Tensor:
    """phases: (sh, sw, C, width + tail) -> view (sh, sw, C, N, phase_h, phase_w)."""
    sh, sw, channels = phases.shape[:3]
    body = phases[..., : geom.width]
    return body.view(sh, sw, channels, geom.n_batch, geom.phase_h, geom.phase_w)


def _axis_phases(size: int, pad: int, stride: int):
    """How ``size`` pixels with ``pad`` padding before them lie in the ``stride`` phases of one
    axis: padded position ``p = i + pad`` goes to phase ``p % stride`` at ``p // stride``.

    Yields, for each phase that holds pixels, ``(phase, which input positions, where they go)``.
    """
    for phase in range(stride):
        first = (phase - pad) % stride  # the first input position whose padded one is in phase
        if first >= size:
            continue
        count = len(range(first, size, stride))
        start = (first + pad) // stride
        yield phase, slice(first, None, stride), slice(start, start + count)


def _phase_slices(geom: _Geometry):
    """For each phase (a, b) that holds input pixels: (a, b, which input rows and columns,
    where they go in the phase). Padded row ``r + top`` lies in phase ``(r + top) % sh``."""
    (sh, sw), (top, _, left, _) = geom.stride, geom.pads
    height, width = geom.in_hw
    columns = list(_axis_phases(width, left, sw))
    for a, rows, phase_rows in _axis_phases(height, top, sh):
        for b, cols, phase_cols in columns:
            yield a, b, (rows, cols), (phase_rows, phase_cols)


def _to_phases(x: torch.Tensor, geom: _Geometry) -> torch.Tensor:
    """x: (N, C, H, W) -> zero-padded phases (sh, sw, C, width + tail).

    ``phases[a, b, c, n, u, v]`` (viewed through :func:`_phase_body`) is pixel
    ``(u * sh + a, v * sw + b)`` of the padded image of sample n, channel c.
    """
    phases = x.new_zeros(*geom.stride, x.shape[1], geom.width + geom.tail)
    body = _phase_body(phases, geom)
    for a, b, (rows, cols), (phase_rows, phase_cols) in _phase_slices(geom):
        body[a, b, :, :, phase_rows, phase_cols] = x[:, :, rows, cols].transpose(0, 1)
    return phases


def _from_phases(phases: torch.Tensor, geom: _Geometry) -> torch.Tensor:
    """Inverse of :func:`_to_phases`, dropping the padding: -> (N, C, H, W)."""
    body = _phase_body(phases, geom)
    x = phases.new_empty(geom.n_batch, phases.shape[2], *geom.in_hw)
    for a, b, (rows, cols), (phase_rows, phase_cols) in _phase_slices(geom):
        x[:, :, rows, cols] = body[a, b, :, :, phase_rows, phase_cols].transpose(0, 1)
    return x  # every pixel of x lies in exactly one phase, so all of x is written


def _use_columns(channels_per_group: int) -> bool:
    return channels_per_group < _COLUMNS_BELOW_CHANNELS


def _chunks(geom: _Geometry, bytes_per_column: int):
    """Split the grid into pieces whose operands fit in the CPU caches."""
    step = max(_MIN_CHUNK, _CHUNK_BYTES // max(1, bytes_per_column))
    for start in range(0, geom.width, step):
        yield start, min(geom.width, start + step)


def _columns(
    phases: torch.Tensor, geom: _Geometry, kernel_hw: tuple[int, int], start: int, stop: int
) -> torch.Tensor:
    """im2col of grid columns [start, stop): phases (sh, sw, C, ...) -> (C, kh*kw, stop - start)."""
    channels = phases.shape[2]
    kh, kw = kernel_hw
    if geom.stride == (1, 1):
        # One phase: every tap is a shift, so the columns are one strided view, copied once.
        plane = phases[0, 0]
        row_step = geom.taps[kw][2] if kh > 1 else 0
        col_step = geom.taps[1][2] if kw > 1 else 0
        view = plane.as_strided(
            (channels, kh, kw, stop - start),
            (plane.stride(0), row_step, col_step, 1),
            plane.storage_offset() + start,
        )
        return view.reshape(channels, kh * kw, stop - start).contiguous()
    columns = phases.new_empty(channels, kh * kw, stop - start)
    for k, (a, b, shift) in enumerate(geom.taps):
        columns[:, k] = phases[a, b, :, start + shift : stop + shift]
    return columns


def _balanced(n_batch: int, most: int) -> int:
    """Samples per piece: at most ``most`` (but at least 1), with pieces of nearly equal size."""
    n_pieces = -(-n_batch // max(1, most))
    return -(-n_batch // n_pieces)


def _column_tap_groups(kw: int, dw: int, sw: int):
    """The kernel columns grouped by the column phase they read.

    Kernel column ``kj`` of output column ``j`` reads padded column ``j*sw + kj*dw``, which is
    position ``j + q`` of phase ``b`` with ``(q, b) = divmod(kj*dw, sw)``. The ``kj`` of one
    phase are evenly spaced and so are their ``q``: each group is one strided view. Yields
    ``(b, kj slice, how many, first q, step of q)``.
    """
    for b in range(sw):
        kjs = [kj for kj in range(kw) if (kj * dw) % sw == b]
        if not kjs:
            continue
        q0 = kjs[0] * dw // sw
        kj_step = kjs[1] - kjs[0] if len(kjs) > 1 else 1
        q_step = kjs[1] * dw // sw - q0 if len(kjs) > 1 else 1
        yield b, slice(kjs[0], kjs[-1] + 1, kj_step), len(kjs), q0, q_step


class _ColumnsPlan:
    """conv2d by im2col for one problem size: the buffers and the views into them.

    1. A piece of ``n`` samples is zero-padded and its columns split by phase into the buffer
       ``x_phases`` of shape (n, C_in, H_pad, sw, ceil(W_pad / sw)): entry ``[s, c, r, b, v]``
       is padded pixel ``(r, v*sw + b)``. (With stride 1 there is one phase and this is just the
       padded input.) Now every kernel column reads, along an output row, consecutive entries of
       one phase, so the copy below moves contiguous runs of memory instead of every sw-th
       value, which is about twice as fast.
    2. The windows are copied into the buffer ``columns``: per sample, the column matrix with
       row ``(c, ki, kj)`` and column ``(i, j)``, entry ``x_padded[s, c, i*sh + ki*dh, j*sw +
       kj*dw]``; one strided view of ``x_phases`` per column phase.
    3. Viewed as (n * groups, C_in/groups * kh * kw, H_out * W_out), one batched GEMM computes
       ``weight (C_out/groups, C_in/groups * kh * kw) @ columns`` per (sample, group): a
       (C_out/groups, H_out * W_out) matrix, exactly the memory of ``out[sample, group's
       channels]`` in the (N, C_out, H_out, W_out) result. So the GEMM writes the result in
       place. The bias rides along as one more column of the weight matrix, facing a row of
       ones appended to each column matrix.

    The padding of ``x_phases`` and the row of ones are written once, when the plan is built;
    only the pixels and the windows are written on each call. A sample whose columns do not
    fit in a piece is done in bands of output rows.
    """

    def __init__(
        self,
        x_shape: tuple[int, int, int, int],
        like: torch.Tensor,
        weight_shape: tuple[int, int, int, int],
        has_bias: bool,
        geom: _Geometry,
        dilation: tuple[int, int],
        groups: int,
    ) -> None:
        n_batch, c_in, height, width = x_shape
        c_out, c_per_group, kh, kw = weight_shape
        sw, dw = geom.stride[1], dilation[1]
        top, bottom, left, right = geom.pads
        out_h, out_w = geom.out_hw
        self.geom, self.dilation, self.groups = geom, dilation, groups
        self.kernel = (c_per_group, kh, kw)
        self.filters_per_group = c_out // groups
        self.window_depth = c_per_group * kh * kw  # rows of a column matrix from the windows
        self.depth = self.window_depth + has_bias  # the GEMM's inner dimension, per group
        self.out_shape = (n_batch, c_out, out_h, out_w)

        # Piece size: the columns of a piece take about _CHUNK_BYTES.
        row_bytes = groups * self.depth * out_w * like.element_size()
        self.rows_per_piece = min(out_h, max(1, _CHUNK_BYTES // row_bytes))
        self.whole_samples = self.rows_per_piece == out_h
        self.samples_per_piece = _balanced(n_batch, _CHUNK_BYTES // (row_bytes * out_h))
        matrices = self.samples_per_piece * groups
        self.columns = like.new_empty(matrices, self.depth, self.rows_per_piece * out_w)
        if has_bias and self.whole_samples:
            self.columns[:, self.window_depth].fill_(1)
        phase_w = -(-(width + left + right) // sw)
        self.x_phases = like.new_zeros(
            self.samples_per_piece, c_in, height + top + bottom, sw, phase_w
        )
        # (target in x_phases, input columns) per column phase
        self.fills = [
            (self.x_phases[:, :, top : top + height, b, positions], cols)
            for b, cols, positions in _axis_phases(width, left, sw)
        ]
        self.tap_groups = list(_column_tap_groups(kw, dw, sw))
        self.copies = self._im2col_pairs(self.columns, 0, out_h) if self.whole_samples else []
        self.weight_matrix = like.new_empty(groups, self.filters_per_group, self.depth)
        self.weights = (
            self.weight_matrix.expand(self.samples_per_piece, -1, -1) if groups == 1 else None
        )

    @property
    def nbytes(self) -> int:
        return buffers_nbytes(self.columns, self.x_phases, self.weight_matrix)

    def _im2col_pairs(self, matrices: torch.Tensor, first_row: int, n_rows: int):
        """(target in matrices, strided view of x_phases) per column phase, for output rows
        [first_row, first_row + n_rows): windows[s, g, c, ki, kj, i, j] = x_padded[s, g *
        C_in/groups + c, (first_row + i)*sh + ki*dh, j*sw + kj*dw]."""
        sh, dh = self.geom.stride[0], self.dilation[0]
        c_per_group, kh, kw = self.kernel
        groups, out_w = self.groups, self.geom.out_hw[1]
        n = matrices.shape[0] // groups
        window_rows = matrices[:, : self.window_depth].view(
            n, groups, c_per_group, kh, kw, n_rows, out_w
        )
        sn, sc, sy, sb, _ = self.x_phases.stride()
        base = self.x_phases.storage_offset() + first_row * sh * sy
        return [
            (
                window_rows[:, :, :, :, kj_slice],
                self.x_phases.as_strided(
                    (n, groups, c_per_group, kh, count, n_rows, out_w),
                    (sn, c_per_group * sc, sc, dh * sy, q_step, sh * sy, 1),
                    base + b * sb + q0,
                ),
            )
            for b, kj_slice, count, q0, q_step in self.tap_groups
        ]

    def run(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        groups, per_group = self.groups, self.filters_per_group
        n_batch, c_out, out_h, out_w = self.out_shape
        spp = self.samples_per_piece
        # The weight matrices (with the bias as one more column) in a buffer of the plan, seen
        # repeated per sample: a view when groups == 1, a copy otherwise.
        self.weight_matrix[:, :, : self.window_depth] = weight.reshape(
            groups, per_group, self.window_depth
        )
        if bias is not None:
            self.weight_matrix[:, :, self.window_depth] = bias.view(groups, per_group)
        weights = self.weights
        if weights is None:
            weights = self.weight_matrix.unsqueeze(0).expand(spp, -1, -1, -1)
            weights = weights.reshape(spp * groups, per_group, self.depth)
        out = x.new_empty(self.out_shape)
        if self.whole_samples:
            out_matrices = out.view(n_batch * groups, per_group, out_h * out_w)
            if n_batch == spp:  # one piece: no slicing
                for target, cols in self.fills:
                    target.copy_(x[:, :, :, cols])
                for target, source in self.copies:
                    target.copy_(source)  # the im2col copy
                torch.bmm(weights, self.columns, out=out_matrices)  # straight into `out`
                return out
            for first in range(0, n_batch, spp):
                n = min(spp, n_batch - first)
                batch = n * groups
                for target, cols in self.fills:
                    target[:n] = x[first : first + n, :, :, cols]
                for target, source in self.copies:
                    target[:n] = source[:n]
                torch.bmm(
                    weights[:batch],
                    self.columns[:batch],
                    out=out_matrices[first * groups : first * groups + batch],
                )
            return out
        # Bands of output rows, one sample at a time (samples_per_piece is 1 here).
        for first in range(n_batch):
            for target, cols in self.fills:
                target[0] = x[first, :, :, cols]
            for first_row in range(0, out_h, self.rows_per_piece):
                n_rows = min(out_h - first_row, self.rows_per_piece)
                positions = n_rows * out_w
                matrices = self.columns.view(-1)[: groups * self.depth * positions]
                matrices = matrices.view(groups, self.depth, positions)
                if bias is not None:
                    matrices[:, self.window_depth].fill_(1)
                for target, source in self._im2col_pairs(matrices, first_row, n_rows):
                    target.copy_(source)
                band = torch.bmm(weights[:groups], matrices)
                out[first, :, first_row : first_row + n_rows] = band.view(c_out, n_rows, out_w)
        return out


class _ShiftedPlan:
    """conv2d (groups=1) by shifted GEMMs for one problem size: buffers and views.

    A piece of ``n`` samples is zero-padded and split into phases in a buffer laid out (n, sh,
    sw, C_in, phase_h * phase_w), plus ``tail`` zeros at the end: every (sample, phase,
    channel) is one contiguous plane. For a tap ``(a, b, shift)``, the planes of phase (a, b)
    read ``shift`` positions further on are, per sample, a (C_in, phase_h * phase_w) matrix with
    unit steps: a view, no copy. One batched GEMM per tap, ``weight_tap (C_out, C_in) @
    shifted_planes``, accumulates into ``grid`` of shape (n, C_out, phase_h * phase_w).
    Positions with ``i >= H_out`` or ``j >= W_out`` (their windows run off the sample) are
    dropped when ``grid`` is cropped into the result, and the bias is added in the same pass.
    The padding and the tail are zeroed once, when the plan is built.
    """

    def __init__(
        self, x_shape: tuple[int, int, int, int], like: torch.Tensor, c_out: int, geom: _Geometry
    ) -> None:
        n_batch, c_in = x_shape[:2]
        sh, sw = geom.stride
        self.geom, self.c_in, self.c_out = geom, c_in, c_out
        self.plane = plane = geom.phase_h * geom.phase_w
        self.sample_size = sample_size = sh * sw * c_in * plane
        per_sample_bytes = (sample_size + c_out * plane) * like.element_size()
        self.samples_per_piece = spp = _balanced(n_batch, _CHUNK_BYTES // per_sample_bytes)
        # The padding and the tail stay zero; the pixels are rewritten for every piece. A phase
        # that holds no pixel (possible for tiny inputs) is all padding.
        self.flat = like.new_zeros(spp * sample_size + geom.tail)
        phases = self.flat[: spp * sample_size].view(spp, sh, sw, c_in, geom.phase_h, geom.phase_w)
        self.fills = [
            (phases[:, a, b, :, phase_rows, phase_cols], (rows, cols))
            for a, b, (rows, cols), (phase_rows, phase_cols) in _phase_slices(geom)
        ]
        self.grid = like.new_empty(spp, c_out, plane)
        base = self.flat.storage_offset()
        self.shifted = [
            self.flat.as_strided(
                (spp, c_in, plane), (sample_size, plane, 1), base + (a * sw + b) * c_in * plane + s
            )
            for a, b, s in geom.taps
        ]

    @property
    def nbytes(self) -> int:
        return buffers_nbytes(self.flat, self.grid)

    def run(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        geom, c_in, c_out = self.geom, self.c_in, self.c_out
        n_batch = x.shape[0]
        out_h, out_w = geom.out_hw
        kh, kw = weight.shape[2:]
        spp = self.samples_per_piece
        # weight per tap: (kh*kw, C_out, C_in), each a contiguous matrix
        weight_taps = weight.permute(2, 3, 0, 1).reshape(kh * kw, c_out, c_in).contiguous()
        out = x.new_empty(n_batch, c_out, out_h, out_w)
        for first in range(0, n_batch, spp):
            n = min(spp, n_batch - first)
            samples = slice(first, first + n)
            for target, (rows, cols) in self.fills:
                target[:n] = x[samples, :, rows, cols]
            grid = self.grid[:n]
            for k, shifted in enumerate(self.shifted):
                weight_tap = weight_taps[k].expand(n, c_out, c_in)  # the same matrix per sample
                if k == 0:
                    torch.bmm(weight_tap, shifted[:n], out=grid)
                else:
                    grid.baddbmm_(weight_tap, shifted[:n])
            kept = grid.view(n, c_out, geom.phase_h, geom.phase_w)[:, :, :out_h, :out_w]
            if bias is None:
                out[samples] = kept
            else:
                torch.add(kept, bias.view(1, c_out, 1, 1), out=out[samples])
        return out


def conv2d_forward(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: tuple[int, int],
    pads: Padding4,
    dilation: tuple[int, int],
    groups: int,
) -> torch.Tensor:
    """conv2d on validated arguments. x: (N, C_in, H, W) -> (N, C_out, H_out, W_out).

    Shifted GEMMs when each tap's GEMM is thick enough (many input channels, no groups) and a
    sample fits in a piece; im2col otherwise. The plan for these sizes is reused when they come
    back (:mod:`course_lib.ops._workspace`).
    """
    n_batch, c_in, height, width = x.shape
    c_out, _, kh, kw = weight.shape
    geom = _geometry(n_batch, (height, width), (kh, kw), stride, pads, dilation)
    plane = geom.phase_h * geom.phase_w
    sample_bytes = (stride[0] * stride[1] * c_in + c_out) * plane * x.element_size()
    shape = (n_batch, c_in, height, width)
    if groups == 1 and not _use_columns(c_in) and sample_bytes <= _CHUNK_BYTES:
        plan = reuse(
            ("conv2d.shifted", shape, c_out, geom, x.dtype, x.device),
            lambda: _ShiftedPlan(shape, x, c_out, geom),
            _plan_bytes,
        )
    else:
        has_bias = bias is not None
        plan = reuse(
            (
                "conv2d.columns",
                shape,
                tuple(weight.shape),
                has_bias,
                geom,
                dilation,
                groups,
                x.dtype,
                x.device,
            ),
            lambda: _ColumnsPlan(shape, x, tuple(weight.shape), has_bias, geom, dilation, groups),
            _plan_bytes,
        )
    return plan.run(x, weight, bias)


def _plan_bytes(plan: _ColumnsPlan | _ShiftedPlan) -> int:
    return plan.nbytes


def _output_grid(dout: torch.Tensor, geom: _Geometry, groups: int) -> torch.Tensor:
    """dout: (N, C_out, H_out, W_out) -> (groups, C_out/groups, width), zeros off the outputs."""
    c_out = dout.shape[1]
    grid = dout.new_empty(c_out, geom.n_batch, geom.phase_h, geom.phase_w)
    out_h, out_w = geom.out_hw
    grid[:, :, out_h:].zero_()
    grid[:, :, :out_h, out_w:].zero_()
    grid[:, :, :out_h, :out_w] = dout.transpose(0, 1)
    return grid.view(groups, c_out // groups, geom.width)


def _input_grad_fast(
    dout_grid: torch.Tensor, weight: torch.Tensor, geom: _Geometry, groups: int
) -> torch.Tensor:
    """Gradient of conv2d w.r.t. its input, i.e. a transposed convolution.

    dout_grid: (groups, C_out/groups, width) from :func:`_output_grid`,
    weight: (C_out, C_in/groups, kh, kw) -> dx: (N, C_in, H, W).
    Every tap scatters ``weight_tap.T @ dout`` back onto the shifted slice it was read from.
    """
    c_out, c_per_group, kh, kw = weight.shape
    filters_per_group = c_out // groups
    c_in = c_per_group * groups
    size = dout_grid.element_size()
    d_phases = dout_grid.new_zeros(*geom.stride, c_in, geom.width + geom.tail)
    if _use_columns(c_per_group):
        # (groups, C_in/groups * kh*kw, C_out/groups)
        weight_t = weight.reshape(groups, filters_per_group, -1).transpose(1, 2)
        for start, stop in _chunks(geom, (c_in * kh * kw + c_out) * size):
            d_columns = torch.bmm(weight_t, dout_grid[:, :, start:stop])
            d_columns = d_columns.view(c_in, kh * kw, stop - start)
            for k, (a, b, shift) in enumerate(geom.taps):
                d_phases[a, b, :, start + shift : stop + shift] += d_columns[:, k]
    else:
        # weight per tap, transposed: (groups, kh*kw, C_in/groups, C_out/groups)
        weight_taps_t = (
            weight.view(groups, filters_per_group, c_per_group, kh * kw)
            .permute(0, 3, 2, 1)
            .contiguous()
        )
        d_flat = d_phases.view(*geom.stride, groups, c_per_group, -1)
        for start, stop in _chunks(geom, (c_per_group + filters_per_group) * size):
            for g in range(groups):
                dout_part = dout_grid[g, :, start:stop]
                for k, (a, b, shift) in enumerate(geom.taps):
                    target = d_flat[a, b, g, :, start + shift : stop + shift]
                    target.addmm_(weight_taps_t[g, k], dout_part)
    return _from_phases(d_phases, geom)


def _weight_grad_fast(
    dout_grid: torch.Tensor,
    phases: torch.Tensor,
    weight_shape: torch.Size,
    geom: _Geometry,
    groups: int,
) -> torch.Tensor:
    """dw from the output gradient on the grid and the input's phases.

    dout_grid: (groups, C_out/groups, width), phases: (sh, sw, C_in, width + tail)
    -> dw: (C_out, C_in/groups, kh, kw). For each tap, ``dw_tap = dout @ shifted_input.T``
    (the sum over the batch and the positions is the GEMM's inner dimension).
    """
    c_out, c_per_group, kh, kw = weight_shape
    filters_per_group = c_out // groups
    c_in = c_per_group * groups
    size = dout_grid.element_size()
    if _use_columns(c_per_group):
        dw = dout_grid.new_zeros(groups, filters_per_group, c_per_group * kh * kw)
        for start, stop in _chunks(geom, (c_in * kh * kw + c_out) * size):
            columns = _columns(phases, geom, (kh, kw), start, stop)
            columns = columns.view(groups, c_per_group * kh * kw, stop - start)
            dw.baddbmm_(dout_grid[:, :, start:stop], columns.transpose(1, 2))
        return dw.view(c_out, c_per_group, kh, kw)
    dw_taps = dout_grid.new_zeros(groups, kh * kw, filters_per_group, c_per_group)
    flat = phases.view(*geom.stride, groups, c_per_group, -1)
    for start, stop in _chunks(geom, (c_per_group + filters_per_group) * size):
        for g in range(groups):
            dout_part = dout_grid[g, :, start:stop]
            for k, (a, b, shift) in enumerate(geom.taps):
                shifted = flat[a, b, g, :, start + shift : stop + shift]
                dw_taps[g, k].addmm_(dout_part, shifted.t())
    return dw_taps.permute(0, 2, 3, 1).reshape(c_out, c_per_group, kh, kw)


# --------------------------------------------------------------------------------------------
# Gradients and the transposed convolution, on checked arguments
# --------------------------------------------------------------------------------------------


def conv2d_gradients(
    dout: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: tuple[int, int],
    pads: Padding4,
    dilation: tuple[int, int],
    groups: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """dx and dw of conv2d. dout: (N, C_out, H_out, W_out), x: (N, C_in, H, W),
    weight: (C_out, C_in/groups, kh, kw) -> dx: (N, C_in, H, W), dw: (C_out, C_in/groups, kh, kw).
    """
    geom = _geometry(
        x.shape[0],
        (x.shape[2], x.shape[3]),
        (weight.shape[2], weight.shape[3]),
        stride,
        pads,
        dilation,
    )
    dout_grid = _output_grid(dout, geom, groups)
    dx = _input_grad_fast(dout_grid, weight, geom, groups)
    dw = _weight_grad_fast(dout_grid, _to_phases(x, geom), weight.shape, geom, groups)
    return dx, dw


def conv_transpose2d_forward(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: tuple[int, int],
    pads: Padding4,
    dilation: tuple[int, int],
    groups: int,
    out_hw: tuple[int, int],
) -> torch.Tensor:
    """conv_transpose2d without the bias, as the input gradient of a conv2d that maps an input
    of size ``out_hw`` to x's size. x: (N, C_in, H, W), weight: (C_in, C_out/groups, kh, kw)
    -> (N, C_out, *out_hw)."""
    kernel_hw = (weight.shape[2], weight.shape[3])
    geom = _geometry(
        x.shape[0], out_hw, kernel_hw, stride, pads, dilation, out_hw=(x.shape[2], x.shape[3])
    )
    return _input_grad_fast(_output_grid(x, geom, groups), weight, geom, groups)
