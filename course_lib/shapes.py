"""Output sizes, receptive fields, parameter counts, shape traces and per-layer cost estimates.

Everything here is computed from the settings of the layers (kernel size, stride, padding,
dilation, groups, ...) without running them, so that a chapter can say *why* a feature map has the
size it has. The tests check each formula against actually running the PyTorch layers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ._validate import check_int, int_or_pair, window_output_size

__all__ = [
    "conv_output_size",
    "pool_output_size",
    "ReceptiveFieldRow",
    "receptive_field",
    "count_parameters",
    "layer_parameters",
    "TraceRow",
    "shape_trace",
    "format_trace",
    "LayerCost",
    "layer_costs",
    "SummaryRow",
    "model_summary",
    "format_summary",
    "count_multiply_adds",
]


# --------------------------------------------------------------------------------------------
# Output sizes
# --------------------------------------------------------------------------------------------


def conv_output_size(
    n: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """Size of a convolution's output along one axis.

    ``floor((n + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``, the rule of
    ``torch.nn.Conv2d``. With ``dilation=1`` this is the familiar ``(n - k + 2p) / s + 1``.

    >>> conv_output_size(28, kernel_size=5, padding=2)
    28
    >>> conv_output_size(7, kernel_size=3, stride=2)
    3
    """
    n = check_int(n, "n (input size)", minimum=1)
    kernel_size = check_int(kernel_size, "kernel_size", minimum=1)
    stride = check_int(stride, "stride", minimum=1)
    padding = check_int(padding, "padding", minimum=0)
    dilation = check_int(dilation, "dilation", minimum=1)
    effective = dilation * (kernel_size - 1) + 1
    padded = n + 2 * padding
    if effective > padded:
        raise ValueError(
            f"kernel {kernel_size} (dilated {effective}) is larger than the padded input {padded}"
        )
    return window_output_size(n, kernel_size, stride, padding, dilation)


def pool_output_size(
    n: int,
    kernel_size: int,
    stride: int | None = None,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Size of a pooling layer's output along one axis (``MaxPool2d`` / ``AvgPool2d`` rule).

    ``stride`` defaults to ``kernel_size``. With ``ceil_mode=True`` the division is rounded up,
    but a last window that would start beyond the input and its left padding is dropped, as in
    PyTorch; so with ``ceil_mode`` a window may hang over the right edge of the padded input.
    ``padding`` may be at most half the kernel size (PyTorch's limit).

    >>> pool_output_size(28, kernel_size=2)
    14
    >>> pool_output_size(5, kernel_size=2, ceil_mode=True)
    3
    """
    n = check_int(n, "n (input size)", minimum=1)
    kernel_size = check_int(kernel_size, "kernel_size", minimum=1)
    stride = kernel_size if stride is None else check_int(stride, "stride", minimum=1)
    padding = check_int(padding, "padding", minimum=0)
    dilation = check_int(dilation, "dilation", minimum=1)
    if 2 * padding > kernel_size:
        raise ValueError(
            f"padding must be at most half of kernel_size, got padding {padding} "
            f"for kernel_size {kernel_size}"
        )
    effective = dilation * (kernel_size - 1) + 1
    padded = n + 2 * padding
    span = padded - effective
    if (span < 0 and not ceil_mode) or span <= -stride:
        # with ceil_mode a window may hang over the right edge, if it starts inside
        raise ValueError(
            f"kernel {kernel_size} (dilated {effective}) is larger than the padded input {padded}"
        )
    return window_output_size(n, kernel_size, stride, padding, dilation, bool(ceil_mode))


# --------------------------------------------------------------------------------------------
# Module iteration helpers
# --------------------------------------------------------------------------------------------


def _leaf_modules(layers: nn.Module | Iterable[nn.Module], prefix: str = ""):
    """Yield ``(dotted_name, module)`` for a Sequential (nested ones flattened) or a list."""
    if isinstance(layers, nn.Sequential):
        items = list(layers.named_children())
    elif isinstance(layers, nn.Module):
        items = [(prefix or type(layers).__name__, layers)]
        prefix = ""
    else:
        items = [(str(i), m) for i, m in enumerate(layers)]
    for name, module in items:
        full = f"{prefix}.{name}" if prefix else name
        if isinstance(module, nn.Sequential):
            yield from _leaf_modules(module, full)
        else:
            if not isinstance(module, nn.Module):
                raise TypeError(f"expected torch.nn.Module layers, got {type(module).__name__}")
            yield full, module


_ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Tanh,
    nn.Sigmoid,
    nn.Softplus,
    nn.Softmax,
    nn.LogSoftmax,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.AlphaDropout,
    nn.Identity,
    nn.LocalResponseNorm,
)


def _module_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------------------------
# Receptive fields
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceptiveFieldRow:
    """Receptive field after one layer, per axis ``(height, width)``.

    ``receptive_field``: how many input pixels one output unit sees; ``jump``: the distance in
    input pixels between neighbouring output units (the product of the strides so far);
    ``start``: the input coordinate of the centre of the first output unit's receptive field
    (negative when it lies in the padding); ``output_size``: the feature-map size when an
    ``input_size`` was given, else ``None``.
    """

    name: str
    type: str
    receptive_field: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]
    output_size: tuple[int, int] | None = None


def _window(module: nn.Module) -> tuple[tuple[int, int], ...] | None:
    """(kernel, stride, padding, dilation) pairs of a sliding-window module, else None."""
    if isinstance(module, nn.Conv2d):
        if isinstance(module.padding, str):
            if module.padding == "valid":
                padding = (0, 0)
            else:  # 'same' (stride 1): total padding d*(k-1), the smaller half on the left
                padding = tuple(
                    d * (k - 1) // 2
                    for k, d in zip(module.kernel_size, module.dilation, strict=True)
                )
        else:
            padding = int_or_pair(module.padding, "padding", minimum=0)
        return (
            int_or_pair(module.kernel_size, "kernel_size", minimum=1),
            int_or_pair(module.stride, "stride", minimum=1),
            padding,
            int_or_pair(module.dilation, "dilation", minimum=1),
        )
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        kernel = int_or_pair(module.kernel_size, "kernel_size", minimum=1)
        stride = (
            kernel
            if module.stride in (None, ())
            else int_or_pair(module.stride, "stride", minimum=1)
        )
        dilation = (
            int_or_pair(module.dilation, "dilation", minimum=1)
            if isinstance(module, nn.MaxPool2d)
            else (1, 1)
        )
        return kernel, stride, int_or_pair(module.padding, "padding", minimum=0), dilation
    return None


def _window_output(module: nn.Module, size: tuple[int, int]) -> tuple[int, int]:
    """Output (height, width) of a Conv2d / MaxPool2d / AvgPool2d for an input of ``size``."""
    if isinstance(module, nn.Conv2d) and module.padding == "same":
        return size
    kernel, stride, padding, dilation = _window(module)  # type: ignore[misc]
    out = []
    for axis in range(2):
        if isinstance(module, nn.Conv2d):
            n = conv_output_size(
                size[axis], kernel[axis], stride[axis], padding[axis], dilation[axis]
            )
        else:
            n = pool_output_size(
                size[axis],
                kernel[axis],
                stride[axis],
                padding[axis],
                dilation[axis],
                bool(module.ceil_mode),
            )
        out.append(n)
    return (out[0], out[1])


_STOP = (nn.Flatten, nn.Linear, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def receptive_field(
    layers: nn.Module | Iterable[nn.Module], input_size: int | tuple[int, int] | None = None
) -> list[ReceptiveFieldRow]:
    """Receptive field, jump and start offset after every layer of a stack.

    ``layers``: an ``nn.Sequential`` (nested ones are flattened) or a list of modules: ``Conv2d``,
    ``MaxPool2d``, ``AvgPool2d``, ``ZeroPad2d`` and layers that work pixel by pixel (activations,
    batch normalisation, dropout, ``Identity``), which pass the receptive field through. The
    rows stop at the first layer that mixes all positions (``Flatten``, ``Linear``, adaptive
    pooling): from there on every unit sees the whole input.

    The recurrence, per axis, with the effective kernel ``k_eff = dilation*(k - 1) + 1``::

        r_out = r_in + (k_eff - 1) * j_in
        j_out = j_in * stride
        start_out = start_in + ((k_eff - 1) / 2 - padding) * j_in

    starting from ``r = 1, j = 1, start = 0`` (the centre of the first input pixel).
    """
    size: tuple[int, int] | None = None
    if input_size is not None:
        size = int_or_pair(input_size, "input_size", minimum=1)
    r, j, start = [1, 1], [1, 1], [0.0, 0.0]
    rows: list[ReceptiveFieldRow] = []
    for name, module in _leaf_modules(layers):
        if isinstance(module, _STOP):
            break
        window = _window(module)
        if window is not None:
            kernel, stride, padding, dilation = window
            if size is not None:
                size = _window_output(module, size)
            for axis in range(2):
                k_eff = dilation[axis] * (kernel[axis] - 1) + 1
                start[axis] += ((k_eff - 1) / 2 - padding[axis]) * j[axis]
                r[axis] += (k_eff - 1) * j[axis]
                j[axis] *= stride[axis]
        elif isinstance(module, nn.ZeroPad2d):
            left, right, top, bottom = module.padding
            start[0] -= top * j[0]
            start[1] -= left * j[1]
            if size is not None:
                size = (size[0] + top + bottom, size[1] + left + right)
        elif not isinstance(module, (*_ELEMENTWISE, nn.BatchNorm2d)):
            raise TypeError(
                f"receptive_field does not know layer {name!r} of type {type(module).__name__}; "
                "expected Conv2d, MaxPool2d, AvgPool2d, ZeroPad2d or a pixel-wise layer"
            )
        rows.append(
            ReceptiveFieldRow(
                name=name,
                type=type(module).__name__,
                receptive_field=(r[0], r[1]),
                jump=(j[0], j[1]),
                start=(start[0], start[1]),
                output_size=size,
            )
        )
    return rows


# --------------------------------------------------------------------------------------------
# Parameter counts
# --------------------------------------------------------------------------------------------


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (shared parameters counted once).

    ``trainable_only=True`` counts only those with ``requires_grad`` (e.g. after freezing a
    backbone for transfer learning).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(module).__name__}")
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def layer_parameters(module: nn.Module) -> dict[str, int]:
    """Parameters per layer: ``{dotted_name: count}`` for each sub-module that owns parameters.

    Only the parameters a module holds itself are counted (not those of its children), so the
    values add up to ``count_parameters(module)`` when no parameter is shared.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(module).__name__}")
    counts: dict[str, int] = {}
    for name, sub in module.named_modules():
        own = sum(p.numel() for p in sub.parameters(recurse=False))
        if own:
            counts[name or type(module).__name__] = own
    return counts


# --------------------------------------------------------------------------------------------
# Shape traces
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceRow:
    """One layer of a shape trace.

    ``output_shape`` has the batch axis when the trace's input shape had one. ``activations``:
    elements of the output; ``macs``: multiply-adds (convolutions and linear layers; other
    layers count 0); ``bytes_per_element``: the element size used for the memory figures.
    """

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    activations: int
    macs: int
    bytes_per_element: int = 4

    @property
    def activation_bytes(self) -> int:
        """Memory for this layer's output."""
        return self.activations * self.bytes_per_element

    @property
    def parameter_bytes(self) -> int:
        """Memory for this layer's parameters."""
        return self.params * self.bytes_per_element


def _layer_error(name: str, module: nn.Module, message: str) -> ValueError:
    return ValueError(f"layer {name!r} ({type(module).__name__}): {message}")


def _need_4d(name: str, module: nn.Module, shape: tuple[int, ...]) -> None:
    if len(shape) != 4:
        raise _layer_error(
            name, module, f"expects input (N, C, H, W), but the incoming shape is {shape}"
        )


def _conv_shape(name: str, module: nn.Conv2d, shape: tuple[int, ...]) -> tuple[int, ...]:
    _need_4d(name, module, shape)
    n, c, h, w = shape
    if c != module.in_channels:
        raise _layer_error(
            name, module, f"in_channels is {module.in_channels} but the input has {c} channels"
        )
    try:
        out_h, out_w = _window_output(module, (h, w))
    except ValueError as error:
        raise _layer_error(name, module, str(error)) from None
    return (n, module.out_channels, out_h, out_w)


def _pool_shape(
    name: str, module: nn.MaxPool2d | nn.AvgPool2d, shape: tuple[int, ...]
) -> tuple[int, ...]:
    _need_4d(name, module, shape)
    n, c, h, w = shape
    try:
        out_h, out_w = _window_output(module, (h, w))
    except ValueError as error:
        raise _layer_error(name, module, str(error)) from None
    return (n, c, out_h, out_w)


def _adaptive_shape(
    name: str, module: nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d, shape: tuple[int, ...]
) -> tuple[int, ...]:
    _need_4d(name, module, shape)
    n, c, h, w = shape
    size = module.output_size
    pair = (size, size) if isinstance(size, int) or size is None else tuple(size)
    out_h = h if pair[0] is None else int(pair[0])
    out_w = w if pair[1] is None else int(pair[1])
    return (n, c, out_h, out_w)


def _flatten_shape(module: nn.Flatten, shape: tuple[int, ...]) -> tuple[int, ...]:
    start = module.start_dim % len(shape)
    end = module.end_dim % len(shape)
    return (*shape[:start], math.prod(shape[start : end + 1]), *shape[end + 1 :])


def _trace_one(name: str, module: nn.Module, shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    """Output shape (with batch) and multiply-adds of one module."""
    if isinstance(module, nn.Conv2d):
        out = _conv_shape(name, module, shape)
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        return out, math.prod(out) * per_output
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        return _pool_shape(name, module, shape), 0
    if isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
        return _adaptive_shape(name, module, shape), 0
    if isinstance(module, nn.BatchNorm2d):
        _need_4d(name, module, shape)
        if shape[1] != module.num_features:
            raise _layer_error(
                name,
                module,
                f"num_features is {module.num_features} but the input has {shape[1]} channels",
            )
        return shape, 0
    if isinstance(module, nn.LayerNorm):
        normalized = tuple(module.normalized_shape)
        if shape[len(shape) - len(normalized) :] != normalized:
            raise _layer_error(
                name,
                module,
                f"normalized_shape is {normalized} but the incoming shape is {shape}",
            )
        return shape, 0
    if isinstance(module, nn.Flatten):
        return _flatten_shape(module, shape), 0
    if isinstance(module, nn.Linear):
        if shape[-1] != module.in_features:
            raise _layer_error(
                name,
                module,
                f"in_features is {module.in_features} but the incoming shape {shape} has "
                f"{shape[-1]} features",
            )
        out = (*shape[:-1], module.out_features)
        return out, math.prod(out) * module.in_features
    if isinstance(module, nn.ZeroPad2d):
        _need_4d(name, module, shape)
        left, right, top, bottom = module.padding
        n, c, h, w = shape
        return (n, c, h + top + bottom, w + left + right), 0
    if isinstance(module, _ELEMENTWISE):
        return shape, 0
    raise TypeError(
        f"shape_trace does not support layer {name!r} of type {type(module).__name__}; "
        "supported: Conv2d, MaxPool2d, AvgPool2d, adaptive pooling, BatchNorm2d, LayerNorm, "
        "activations, Dropout, Flatten, Linear, ZeroPad2d, Identity"
    )


def shape_trace(
    model: nn.Module | Iterable[nn.Module],
    input_shape: Sequence[int],
    bytes_per_element: int = 4,
) -> list[TraceRow]:
    """Layer-by-layer output shapes of a stack, computed from the layers' settings.

    model: an ``nn.Sequential`` (nested Sequentials are flattened and named ``"features.0"``)
    or a list of modules. input_shape: ``(C, H, W)`` or ``(N, C, H, W)`` (any shape whose
    first layer accepts it, e.g. ``(N, F)`` for a ``Linear``). Nothing is run, so it also
    works for models on the ``meta`` device.

    Raises ``ValueError`` naming the layer when a shape does not fit (e.g. a ``Linear`` with
    ``in_features=400`` after a ``Flatten`` that gives 576 features) and ``TypeError`` naming
    the type of an unsupported module.
    """
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be positive sizes, got {tuple(input_shape)}")
    check_int(bytes_per_element, "bytes_per_element", minimum=1)
    batched = len(shape) != 3
    current = shape if batched else (1, *shape)
    rows: list[TraceRow] = []
    for name, module in _leaf_modules(model):
        current, macs = _trace_one(name, module, current)
        shown = current if batched else current[1:]
        rows.append(
            TraceRow(
                name=name,
                type=type(module).__name__,
                output_shape=shown,
                params=_module_parameters(module),
                activations=math.prod(shown),
                macs=macs,
                bytes_per_element=bytes_per_element,
            )
        )
    return rows


def _human(value: int) -> str:
    return f"{value:,}"


def format_trace(rows: Sequence[TraceRow]) -> str:
    """A plain-text table of a shape trace, with a line of totals.

    The totals add up every row's parameters and multiply-adds; the activation total adds the
    outputs of all rows (an in-place ReLU would in practice share memory with its input).
    """
    header = ("layer", "type", "output shape", "params", "activations", "mult-adds")
    lines = [
        (
            r.name,
            r.type,
            " × ".join(str(s) for s in r.output_shape),
            _human(r.params),
            _human(r.activations),
            _human(r.macs),
        )
        for r in rows
    ]
    totals = (
        "total",
        "",
        "",
        _human(sum(r.params for r in rows)),
        _human(sum(r.activations for r in rows)),
        _human(sum(r.macs for r in rows)),
    )
    table = [header, *lines, totals]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]

    def render(row: tuple[str, ...]) -> str:
        left = [row[i].ljust(widths[i]) for i in range(3)]
        right = [row[i].rjust(widths[i]) for i in range(3, len(header))]
        return "  ".join(left + right).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(header), rule, *(render(r) for r in lines), rule, render(totals)])


@dataclass(frozen=True)
class LayerCost:
    """Memory and compute of one layer: bytes of its output and of its parameters, and MACs."""

    name: str
    type: str
    activation_bytes: int
    parameter_bytes: int
    macs: int


def layer_costs(
    model: nn.Module | Sequence[TraceRow],
    input_shape: Sequence[int] | None = None,
    bytes_per_element: int = 4,
) -> list[LayerCost]:
    """Per-layer memory and multiply-adds, from a model and an input shape or from trace rows.

    ``activation_bytes = activations × bytes_per_element`` (the memory the forward pass keeps
    for the backward pass), ``parameter_bytes = params × bytes_per_element``.
    """
    if isinstance(model, nn.Module):
        if input_shape is None:
            raise ValueError("pass input_shape, e.g. (3, 224, 224), together with a model")
        rows = shape_trace(model, input_shape, bytes_per_element)
    else:
        rows = [
            TraceRow(
                r.name, r.type, r.output_shape, r.params, r.activations, r.macs, bytes_per_element
            )
            for r in model
        ]
    return [LayerCost(r.name, r.type, r.activation_bytes, r.parameter_bytes, r.macs) for r in rows]


# --------------------------------------------------------------------------------------------
# Any model: shapes by running it
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SummaryRow:
    """One module of a model summary: its name, type, output shape and parameters, and the
    multiply-adds of the convolutions and linear layers inside it (for the whole input batch,
    every time they run)."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    macs: int = 0


def _run_macs(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-adds of one run of a Conv2d or Linear layer that produced ``output``."""
    if isinstance(module, nn.Conv2d):
        return (
            output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
        )
    return output.numel() * module.in_features


def _check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be (N, C, ...) with positive sizes, got {shape}")
    return shape


def _run_on_zeros(model: nn.Module, shape: tuple[int, ...], hooks: list) -> None:
    """Run ``model`` once on zeros of ``shape`` in eval mode without gradients, on the device
    and dtype of its parameters; then remove ``hooks`` and restore the model's mode."""
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.float32
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(shape, device=device, dtype=dtype))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)


def model_summary(model: nn.Module, input_shape: Sequence[int], depth: int = 1) -> list[SummaryRow]:
    """Output shape and parameter count of each module of ``model`` down to ``depth`` levels.

    model: any ``nn.Module`` (branches, shortcuts and concatenations included, where
    :func:`shape_trace` needs a plain stack). input_shape: ``(N, C, H, W)``. The model is run
    once on zeros under ``torch.no_grad()`` and in eval mode (its mode is restored), on the
    device of its parameters: put it on the ``meta`` device to get the shapes of a large model
    without memory or arithmetic. Rows come in the order the modules first run; a module run
    several times is listed once, with its first output.
    """
    check_int(depth, "depth", minimum=1)
    shape = _check_input_shape(input_shape)
    wanted = {
        name: module
        for name, module in model.named_modules()
        if name
        and (
            name.count(".") + 1 == depth
            or (name.count(".") + 1 < depth and not any(True for _ in module.children()))
        )
    }
    if not wanted:  # a bare layer (no sub-modules) is its own one row
        wanted = {"": model}
    rows: dict[str, SummaryRow] = {}
    macs = dict.fromkeys(wanted, 0)

    def record(name: str, module: nn.Module, output: object) -> None:
        if name in rows or not isinstance(output, torch.Tensor):
            return
        rows[name] = SummaryRow(
            name or type(module).__name__,
            type(module).__name__,
            tuple(output.shape),
            _module_parameters(module),
        )

    def owner(leaf: str) -> str | None:
        """The summarised module that ``leaf`` belongs to."""
        for name in wanted:
            if name == "" or leaf == name or leaf.startswith(name + "."):
                return name
        return None

    def add_macs(name: str | None, module: nn.Module, output: torch.Tensor) -> None:
        if name is not None:
            macs[name] += _run_macs(module, output)

    hooks = [
        module.register_forward_hook(lambda m, _inputs, out, name=name: record(name, m, out))
        for name, module in wanted.items()
    ]
    for leaf, module in model.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            name = owner(leaf)
            hooks.append(
                module.register_forward_hook(
                    lambda m, _inputs, out, name=name: add_macs(name, m, out)
                )
            )
    _run_on_zeros(model, shape, hooks)
    return [dataclasses.replace(row, macs=macs[name]) for name, row in rows.items()]


def count_multiply_adds(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-adds of the convolutions and linear layers of one forward pass of ``model``.

    model: any ``nn.Module``, a bare ``nn.Conv2d`` or ``nn.Linear`` included. input_shape:
    ``(N, C, H, W)`` (``(N, in_features)`` for a bare linear layer); the count is for the whole
    batch, and a layer that runs twice counts twice. Found by running the model once on zeros
    (use the ``meta`` device for large models). Other layers
    (normalisation, activations, pooling, additions) are left out, as is usual: they cost
    little next to the convolutions. A convolution's count is output elements times
    ``C_in / groups * kh * kw``; a linear layer's, output elements times ``in_features``.
    """
    shape = _check_input_shape(input_shape)
    total = 0

    def add(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        total += _run_macs(module, output)

    # model.modules() includes the model itself, so a bare nn.Conv2d or nn.Linear is counted.
    hooks = [
        module.register_forward_hook(add)
        for module in model.modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
    ]
    _run_on_zeros(model, shape, hooks)
    return total


def format_summary(rows: Sequence[SummaryRow]) -> str:
    """A text table of :func:`model_summary` rows with a total of the parameters."""
    width = max([len(r.name) for r in rows] + [5])
    type_width = max([len(r.type) for r in rows] + [4])
    lines = [
        f"{'layer':<{width}}  {'type':<{type_width}}  {'output shape':<22}  {'params':>12}  "
        f"{'mult-adds':>15}"
    ]
    for row in rows:
        lines.append(
            f"{row.name:<{width}}  {row.type:<{type_width}}  {row.output_shape!s:<22}  "
            f"{row.params:>12,}  {row.macs:>15,}"
        )
    lines.append(
        f"{'total':<{width}}  {'':<{type_width}}  {'':<22}  {sum(r.params for r in rows):>12,}  "
        f"{sum(r.macs for r in rows):>15,}"
    )
    return "\n".join(lines)
