"""Data sets of the course, offline first.

Fashion-MNIST is read from the idx files that Debian's ``dataset-fashion-mnist`` package installs
(``/usr/share/datasets/fashion-mnist``), from a folder you name, or from the folder in the
``COURSE_DATA_DIR`` environment variable. Only when none of those has the files and you ask for
it (``download=True``) does it fall back to torchvision's downloader.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from ._validate import check_positive_int

__all__ = [
    "FASHION_MNIST_CLASSES",
    "DEFAULT_FASHION_MNIST_DIR",
    "read_idx",
    "load_fashion_mnist",
    "FashionMNISTLoaders",
    "fashion_mnist_loaders",
    "load_digits_images",
    "sample_image",
]

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

DEFAULT_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MAGIC_IMAGES = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_MAGIC_LABELS = 2049  # 0x00000801: unsigned bytes, 1 dimension
_INSTALL_HINT = (
    "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
    "or pass download=True"
)

_CACHE: dict[tuple[str, int, int], np.ndarray] = {}


def read_idx(path: str | os.PathLike[str], expected_magic: int | None = None) -> np.ndarray:
    """Read an idx file (optionally gzip-compressed) into a ``uint8`` array.

    The idx format: a 4-byte big-endian magic number (two zero bytes, a type byte ``0x08`` for
    unsigned bytes, the number of dimensions), one 4-byte big-endian size per dimension, then
    the data. Raises ``ValueError`` saying what is wrong when the file is corrupt or truncated.
    Parsed arrays are cached in memory for the life of the process.
    """
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key in _CACHE:
        array = _CACHE[key]
    else:
        array = _parse_idx(path)
        _CACHE[key] = array
    if expected_magic is not None:
        magic = 0x0800 + array.ndim
        if magic != expected_magic:
            raise ValueError(
                f"corrupt idx file {path}: magic number {magic} (0x{magic:08x}), "
                f"expected {expected_magic} (0x{expected_magic:08x})"
            )
    return array


def _parse_idx(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                raw = handle.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"corrupt idx file {path}: cannot decompress ({error})") from None
    if len(raw) < 4:
        raise ValueError(f"corrupt idx file {path}: only {len(raw)} bytes, no magic number")
    zero1, zero2, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    magic = struct.unpack(">I", raw[:4])[0]
    if zero1 != 0 or zero2 != 0 or type_code != 0x08 or not 1 <= ndim <= 4:
        raise ValueError(
            f"corrupt idx file {path}: magic number {magic} (0x{magic:08x}) is not an idx "
            "file of unsigned bytes (expected 0x0000080N with N the number of dimensions)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"corrupt idx file {path}: header cut short ({len(raw)} bytes)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise ValueError(
            f"corrupt idx file {path}: header says {dims} = {expected} bytes of data, "
            f"found {len(raw) - header}"
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    array.setflags(write=False)
    return array


def _candidate_dirs(root: str | os.PathLike[str] | None) -> list[Path]:
    if root is not None:
        base = Path(root)
        return [base, base / "fashion-mnist"]
    dirs = []
    env = os.environ.get("COURSE_DATA_DIR")
    if env:
        dirs += [Path(env), Path(env) / "fashion-mnist"]
    dirs.append(DEFAULT_FASHION_MNIST_DIR)
    return dirs


def _find_file(directory: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def load_fashion_mnist(
    root: str | os.PathLike[str] | None = None, train: bool = True, download: bool = False
) -> TensorDataset:
    """Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017) as a ``TensorDataset``.

    Returns ``(images, labels)``: images ``(N, 1, 28, 28)`` float32 in ``[0, 1]``, labels
    ``(N,)`` int64 in ``0..9`` (names in :data:`FASHION_MNIST_CLASSES`); N is 60000 for
    ``train=True`` and 10000 for the test set.

    Looks in ``root`` (or ``root/fashion-mnist``) when given, else in ``$COURSE_DATA_DIR`` and
    then in Debian's folder. ``download=True`` falls back to torchvision's downloader (needs the
    internet) when the files are not found.
    """
    images_stem, labels_stem = _FILES[bool(train)]
    searched = _candidate_dirs(root)
    for directory in searched:
        images_path = _find_file(directory, images_stem)
        labels_path = _find_file(directory, labels_stem)
        if images_path is not None and labels_path is not None:
            images = read_idx(images_path, _MAGIC_IMAGES)
            labels = read_idx(labels_path, _MAGIC_LABELS)
            if images.shape[0] != labels.shape[0]:
                raise ValueError(
                    f"{images_path} has {images.shape[0]} images but {labels_path} has "
                    f"{labels.shape[0]} labels"
                )
            return _to_dataset(images, labels)
    if download:
        return _download_fashion_mnist(root, train)
    where = ", ".join(str(d) for d in searched)
    raise FileNotFoundError(
        f"Fashion-MNIST files ({images_stem}.gz, {labels_stem}.gz) not found in {where}; "
        + _INSTALL_HINT
    )


def _to_dataset(images: np.ndarray, labels: np.ndarray) -> TensorDataset:
    x = torch.from_numpy(images.copy()).to(torch.float32).div_(255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return TensorDataset(x, y)


def _download_fashion_mnist(root: str | os.PathLike[str] | None, train: bool) -> TensorDataset:
    """The online path: torchvision downloads the files into ``root`` (or a user cache)."""
    from torchvision.datasets import FashionMNIST

    target = Path(root) if root is not None else Path.home() / ".cache" / "course_lib"
    dataset = FashionMNIST(str(target), train=train, download=True)
    return _to_dataset(dataset.data.numpy(), dataset.targets.numpy())


class FashionMNISTLoaders(NamedTuple):
    """Train, validation and test loaders, and the normalisation computed on the train split."""

    train: DataLoader
    val: DataLoader
    test: DataLoader
    mean: float
    std: float


def fashion_mnist_loaders(
    batch_size: int = 64,
    val_fraction: float = 0.1,
    seed: int = 0,
    normalize: bool = True,
    limit: int | None = None,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> FashionMNISTLoaders:
    """Fashion-MNIST loaders with a fixed-seed train/validation split.

    The 60000 training images are shuffled with ``seed`` and split into ``val_fraction`` for
    validation and the rest for training; the test loader holds the 10000 test images.
    ``limit`` keeps only that many (shuffled) training images before the split, for quick
    examples. With ``normalize=True`` every image is standardised with the mean and standard
    deviation of the *training split's* pixels (never of validation or test data).
    Batches: x ``(B, 1, 28, 28)`` float32, y ``(B,)`` int64. Only the train loader shuffles.
    """
    check_positive_int(batch_size, "batch_size")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    x_all, y_all = load_fashion_mnist(root, train=True, download=download).tensors
    x_test, y_test = load_fashion_mnist(root, train=False, download=download).tensors
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(x_all.shape[0], generator=generator)
    if limit is not None:
        if limit < 2:
            raise ValueError(f"limit must be at least 2 (one train and one val image), got {limit}")
        order = order[:limit]
    n_val = max(1, round(len(order) * val_fraction))
    if n_val >= len(order):
        raise ValueError(f"val_fraction {val_fraction} leaves no training images")
    val_idx, train_idx = order[:n_val], order[n_val:]
    x_train, y_train = x_all[train_idx], y_all[train_idx]
    x_val, y_val = x_all[val_idx], y_all[val_idx]
    mean, std = 0.0, 1.0
    if normalize:
        mean = float(x_train.mean())
        std = float(x_train.std())
        x_train = (x_train - mean) / std
        x_val = (x_val - mean) / std
        x_test = (x_test - mean) / std
    loader_generator = torch.Generator().manual_seed(seed)
    return FashionMNISTLoaders(
        train=DataLoader(
            TensorDataset(x_train, y_train),
            batch_size=batch_size,
            shuffle=True,
            generator=loader_generator,
        ),
        val=DataLoader(TensorDataset(x_val, y_val), batch_size=batch_size),
        test=DataLoader(TensorDataset(x_test, y_test), batch_size=batch_size),
        mean=mean,
        std=std,
    )


def load_digits_images() -> TensorDataset:
    """scikit-learn's handwritten digits (8×8, 1797 images, bundled with scikit-learn).

    Returns ``(images, labels)``: images ``(1797, 1, 8, 8)`` float32 in ``[0, 1]`` (the original
    values 0..16 divided by 16), labels ``(1797,)`` int64 in ``0..9``.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    y = torch.from_numpy(digits.target.astype(np.int64))
    return TensorDataset(x, y)


def sample_image(name: str = "camera", gray: bool = False) -> torch.Tensor:
    """A test image from ``skimage.data`` as a float32 tensor in ``[0, 1]``.

    Returns ``(1, H, W)`` for a grayscale image and ``(3, H, W)`` for a colour one
    (``gray=True`` converts colour to one channel). ``"camera"`` is 512×512 grayscale;
    ``"astronaut"`` and ``"coffee"`` are colour images shipped with scikit-image.
    """
    import skimage.data
    from skimage.color import rgb2gray
    from skimage.util import img_as_float32

    loader = getattr(skimage.data, name, None)
    if loader is None or name.startswith("_") or not callable(loader):
        raise ValueError(f"skimage.data has no image called {name!r}")
    image = img_as_float32(loader())
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    if image.ndim == 3 and gray:
        image = rgb2gray(image).astype(np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(image))
    if tensor.dim() == 2:
        return tensor.unsqueeze(0)
    if tensor.dim() == 3:
        return tensor.permute(2, 0, 1).contiguous()
    raise ValueError(f"skimage.data.{name} is not a 2-D image (shape {tuple(image.shape)})")
