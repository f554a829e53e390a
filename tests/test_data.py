"""Fashion-MNIST from the Debian package's idx files, the digits and the sample images."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib import data
from course_lib.data import (
    DEFAULT_FASHION_MNIST_DIR,
    FASHION_MNIST_CLASSES,
    fashion_mnist_loaders,
    load_digits_images,
    load_fashion_mnist,
    read_idx,
    sample_image,
)

HAVE_FASHION_MNIST = (DEFAULT_FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file()
needs_fashion_mnist = pytest.mark.skipif(
    not HAVE_FASHION_MNIST, reason="Debian's dataset-fashion-mnist is not installed"
)


def write_idx(path: Path, array: np.ndarray, magic: int | None = None, compress: bool = True):
    magic = 0x0800 + array.ndim if magic is None else magic
    payload = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.astype(np.uint8).tobytes()
    if compress:
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def make_fake_dataset(folder: Path, n: int = 12, train: bool = True) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    prefix = "train" if train else "t10k"
    write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return images, labels


@needs_fashion_mnist
@pytest.mark.parametrize(("train", "n"), [(True, 60000), (False, 10000)])
def test_real_files_shapes_ranges_and_dtypes(train, n):
    images, labels = load_fashion_mnist(train=train).tensors
    assert images.shape == (n, 1, 28, 28)
    assert images.dtype == torch.float32
    assert labels.shape == (n,)
    assert labels.dtype == torch.int64
    assert float(images.min()) == 0.0
    assert float(images.max()) == 1.0
    assert set(labels.unique().tolist()) == set(range(10))
    # Fashion-MNIST is balanced: every class has a tenth of the images
    assert torch.bincount(labels).tolist() == [n // 10] * 10


@needs_fashion_mnist
def test_parsed_arrays_are_cached_per_process():
    path = DEFAULT_FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz"
    assert read_idx(path) is read_idx(path)


def test_class_names():
    assert len(FASHION_MNIST_CLASSES) == 10
    assert FASHION_MNIST_CLASSES[0] == "T-shirt/top"
    assert FASHION_MNIST_CLASSES[9] == "Ankle boot"


def test_root_argument_reads_our_own_files(tmp_path):
    images, labels = make_fake_dataset(tmp_path, train=False)
    x, y = load_fashion_mnist(tmp_path, train=False).tensors
    np.testing.assert_allclose(x[:, 0].numpy() * 255, images, atol=1e-4)
    np.testing.assert_array_equal(y.numpy(), labels)


def test_environment_variable_points_to_the_data(tmp_path, monkeypatch):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    _, labels = make_fake_dataset(folder, n=5)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    _, y = load_fashion_mnist(train=True).tensors
    np.testing.assert_array_equal(y.numpy(), labels)


def test_uncompressed_idx_files_are_read_too(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a-idx3-ubyte", array, compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3-ubyte"), array)


def test_missing_folder_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEFAULT_FASHION_MNIST_DIR", tmp_path / "nowhere")
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist()
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "download=True" in message
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_fashion_mnist(root=tmp_path / "empty", train=False)


@pytest.mark.parametrize(
    ("corruption", "message"),
    [
        ("magic", "magic number"),
        ("truncated", "header says"),
        ("not-gzip", "cannot decompress"),
        ("wrong-kind", "expected 2051"),
        ("empty", "no magic number"),
    ],
)
def test_corrupt_idx_files_give_a_clear_error(tmp_path, corruption, message):
    images, labels = make_fake_dataset(tmp_path, n=4)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    if corruption == "magic":
        write_idx(path, images, magic=0x00000903)
    elif corruption == "truncated":
        raw = gzip.decompress(path.read_bytes())
        path.write_bytes(gzip.compress(raw[:-100]))
    elif corruption == "not-gzip":
        path.write_bytes(b"this is not a gzip file at all")
    elif corruption == "wrong-kind":  # a labels file where the images should be
        write_idx(path, labels)
    else:
        path.write_bytes(gzip.compress(b""))
    with pytest.raises(ValueError, match=message) as info:
        load_fashion_mnist(tmp_path)
    assert "corrupt idx file" in str(info.value)
    assert "train-images-idx3-ubyte.gz" in str(info.value)


def test_image_and_label_counts_must_agree(tmp_path):
    make_fake_dataset(tmp_path, n=4)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(3, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"4 images but .* 3 labels"):
        load_fashion_mnist(tmp_path)


def test_loaders_split_normalise_and_are_reproducible(tmp_path):
    make_fake_dataset(tmp_path, n=40, train=True)
    make_fake_dataset(tmp_path, n=10, train=False)
    loaders = fashion_mnist_loaders(batch_size=8, val_fraction=0.25, seed=3, root=tmp_path)
    x_train = loaders.train.dataset.tensors[0]
    assert len(loaders.train.dataset) == 30
    assert len(loaders.val.dataset) == 10
    assert len(loaders.test.dataset) == 10
    # normalised with the statistics of the training split
    assert abs(float(x_train.mean())) < 1e-5
    assert abs(float(x_train.std()) - 1.0) < 1e-4
    raw, _ = load_fashion_mnist(tmp_path).tensors
    assert 0.0 < loaders.mean < 1.0
    assert loaders.std > 0
    # train and validation do not overlap and together hold all 40 images
    val_raw = loaders.val.dataset.tensors[0] * loaders.std + loaders.mean
    train_raw = x_train * loaders.std + loaders.mean
    both = torch.cat([train_raw, val_raw]).flatten(1)
    assert torch.allclose(both.sum(1).sort().values, raw.flatten(1).sum(1).sort().values, atol=1e-2)
    again = fashion_mnist_loaders(batch_size=8, val_fraction=0.25, seed=3, root=tmp_path)
    assert torch.equal(again.val.dataset.tensors[1], loaders.val.dataset.tensors[1])
    other = fashion_mnist_loaders(batch_size=8, val_fraction=0.25, seed=4, root=tmp_path)
    assert not torch.equal(other.val.dataset.tensors[0], loaders.val.dataset.tensors[0])
    x, y = next(iter(loaders.train))
    assert x.shape == (8, 1, 28, 28)
    assert y.dtype == torch.int64


def test_loaders_limit_and_argument_checks(tmp_path):
    make_fake_dataset(tmp_path, n=40, train=True)
    make_fake_dataset(tmp_path, n=10, train=False)
    loaders = fashion_mnist_loaders(batch_size=4, limit=20, val_fraction=0.1, root=tmp_path)
    assert len(loaders.train.dataset) + len(loaders.val.dataset) == 20
    with pytest.raises(ValueError, match="val_fraction"):
        fashion_mnist_loaders(val_fraction=1.5, root=tmp_path)
    with pytest.raises(ValueError, match="batch_size"):
        fashion_mnist_loaders(batch_size=0, root=tmp_path)


def test_digits_images():
    images, labels = load_digits_images().tensors
    assert images.shape == (1797, 1, 8, 8)
    assert images.dtype == torch.float32
    assert float(images.min()) == 0.0
    assert float(images.max()) == 1.0
    assert labels.dtype == torch.int64
    assert set(labels.tolist()) == set(range(10))


def test_sample_images():
    camera = sample_image()
    assert camera.shape == (1, 512, 512)
    assert camera.dtype == torch.float32
    assert 0.0 <= float(camera.min()) < float(camera.max()) <= 1.0
    colour = sample_image("astronaut")
    assert colour.shape[0] == 3
    assert sample_image("astronaut", gray=True).shape == (1, *colour.shape[1:])
    with pytest.raises(ValueError, match="no image called"):
        sample_image("not_an_image")
