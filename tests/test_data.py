"""Datasets: the built-in digits and every local format, made here as small files."""

import gzip
import os
import pickle

import numpy as np
import pytest
import torch

from rnngen.data import DataFormatError, load_dataset
from rnngen.models import PixelGRU


def test_digits_split_and_levels():
    data = load_dataset("digits")
    assert (len(data.train), len(data.test)) == (1438, 359)
    assert data.train.shape == (1, 8, 8) and data.train.levels == 17 and data.train.num_classes == 10
    assert data.train.images.dtype == torch.uint8 and int(data.train.images.max()) == 16
    assert sorted(data.test.labels.unique().tolist()) == list(range(10))
    again = load_dataset("digits")
    assert torch.equal(again.test.images, data.test.images)  # the split is fixed


def test_requantise_and_binarize():
    data = load_dataset("digits", levels=4)
    assert data.train.levels == 4 and int(data.train.images.max()) == 3
    full = load_dataset("digits").train.images.int()
    assert torch.equal(data.train.images.int(), full * 4 // 17)
    binary = load_dataset("digits", binarize=True)
    assert binary.train.levels == 2 and set(binary.train.images.unique().tolist()) == {0, 1}
    with pytest.raises(ValueError, match="levels"):
        load_dataset("digits", levels=18)
    with pytest.raises(ValueError, match="data must be one of"):
        load_dataset("imagenet")


def _write_idx(path, array, magic_dims, compress=False):
    header = bytes([0, 0, 8, magic_dims]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx(tmp_path, compress):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 7), ("t10k", 3)):
        images, labels = rng.integers(0, 256, (n, 28, 28)), rng.integers(0, 10, n)
        suffix = ".gz" if compress else ""
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte{suffix}", images, 3, compress)
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte{suffix}", labels, 1, compress)
        arrays[split] = images, labels
    data = load_dataset(f"mnist:{tmp_path}")
    assert data.train.levels == 256 and data.train.shape == (1, 28, 28)
    assert torch.equal(data.train.images[:, 0], torch.from_numpy(arrays["train"][0].astype(np.uint8)))
    assert data.test.labels.tolist() == arrays["t10k"][1].tolist()
    small = load_dataset(f"mnist:{tmp_path}", binarize=True, image_size=14)
    assert small.train.shape == (1, 14, 14) and int(small.train.images.max()) <= 1


def test_mnist_damaged_files(tmp_path):
    images = np.zeros((4, 28, 28))
    _write_idx(tmp_path / "train-images-idx3-ubyte", images, 3)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4), 1)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(2), 1)
    with pytest.raises(DataFormatError, match="t10k-images"):                     # missing file
        load_dataset(f"mnist:{tmp_path}")
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28)), 3)
    data = (tmp_path / "t10k-images-idx3-ubyte").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(data[:-5])                  # truncated
    with pytest.raises(DataFormatError, match="truncated"):
        load_dataset(f"mnist:{tmp_path}")
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x0d\x03" + data[4:])  # floats, not bytes
    with pytest.raises(DataFormatError, match="not an IDX file"):
        load_dataset(f"mnist:{tmp_path}")
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28)), 3)      # 3 images, 2 labels
    with pytest.raises(DataFormatError, match="2 labels for 3 images"):
        load_dataset(f"mnist:{tmp_path}")
    with pytest.raises(FileNotFoundError):
        load_dataset(f"mnist:{tmp_path / 'nowhere'}")


def _cifar_batch(path, n, seed, protocol=2):
    """Like the real files: pickle protocol 2 (the real ones come from Python 2)."""
    rng = np.random.default_rng(seed)
    batch = {b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), b"labels": rng.integers(0, 10, n).tolist()}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=protocol)
    return batch


class _Call:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


class _Hostile:
    def __reduce__(self):
        return (os.system, ("touch hacked-by-pickle",))


def test_cifar10_batches(tmp_path, monkeypatch):
    batches = [_cifar_batch(tmp_path / f"data_batch_{i}", 4, i, protocol) for i, protocol in ((1, 2), (2, 5))]
    test = _cifar_batch(tmp_path / "test_batch", 3, 9)
    data = load_dataset(f"cifar10:{tmp_path}")
    assert len(data.train) == 8 and data.train.shape == (3, 32, 32) and data.class_names[0] == "airplane"
    first = batches[0][b"data"][0].reshape(3, 32, 32)
    assert torch.equal(data.train.images[0], torch.from_numpy(first))
    assert data.test.labels.tolist() == test[b"labels"]
    grey = load_dataset(f"cifar10:{tmp_path}", channels=1, levels=16)
    assert grey.train.shape == (1, 32, 32) and int(grey.train.images.max()) <= 15

    # A batch that would run code when unpickled is refused, and the code does not run.
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "data_batch_2", "wb") as f:
        pickle.dump({b"data": _Hostile(), b"labels": [0]}, f)
    with pytest.raises(DataFormatError, match="refusing to load"):
        load_dataset(f"cifar10:{tmp_path}")
    assert not (tmp_path / "hacked-by-pickle").exists()
    # Nor may a batch make numpy read raw bytes as object pointers (a crash, or worse).
    with open(tmp_path / "data_batch_2", "wb") as f:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8),
                     b"labels": _Call(np.ndarray, ((1,), np.dtype("O"), b"A" * 8))}, f, protocol=4)
    with pytest.raises(DataFormatError, match="data_batch_2"):
        load_dataset(f"cifar10:{tmp_path}")
    with open(tmp_path / "data_batch_2", "wb") as f:
        pickle.dump({b"data": np.zeros((1, 3072), dtype=object), b"labels": [0]}, f, protocol=4)
    with pytest.raises(DataFormatError, match="array of u1"):
        load_dataset(f"cifar10:{tmp_path}")
    (tmp_path / "data_batch_2").write_bytes(b"garbage")
    with pytest.raises(DataFormatError, match="data_batch_2"):
        load_dataset(f"cifar10:{tmp_path}")


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        os.makedirs(tmp_path / cls)
        for i in range(10):
            pixels = rng.integers(0, 256, (20, 24, 3)).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / cls / f"{i}.png")
    data = load_dataset(f"folder:{tmp_path}", channels=3, image_size=8, levels=16)
    assert (len(data.train), len(data.test)) == (18, 2)
    assert data.train.shape == (3, 8, 8) and data.class_names == ("cat", "dog") and data.train.num_classes == 2
    grey = load_dataset(f"folder:{tmp_path}")
    assert grey.train.shape == (1, 20, 24) and grey.train.levels == 256

    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(DataFormatError, match="broken.png"):
        load_dataset(f"folder:{tmp_path}")
    with pytest.raises(DataFormatError, match="no image files"):
        os.makedirs(tmp_path / "empty")
        load_dataset(f"folder:{tmp_path / 'empty'}")


def test_builtin_mnist_split():
    data = load_dataset("mnist")
    assert (len(data.train), len(data.test)) == (8000, 1000)
    assert data.train.shape == (1, 28, 28) and data.train.levels == 256 and data.train.num_classes == 10
    assert sorted(data.test.labels.unique().tolist()) == list(range(10))
    with np.load(os.path.join(os.path.dirname(__import__("rnngen").data.__file__), "mnist-9k.npz")) as raw:
        assert torch.equal(data.test.images[:, 0], torch.from_numpy(raw["images"][8000:]))  # the documented split
        assert data.train.labels.tolist() == raw["labels"][:8000].tolist()


def test_stochastic_binarization_is_fixed_and_follows_intensity():
    grey = load_dataset("mnist")
    binary = load_dataset("mnist", binarize=True)
    assert binary.train.levels == 2 and set(binary.train.images.unique().tolist()) == {0, 1}
    assert torch.equal(binary.test.images, load_dataset("mnist", binarize="stochastic").test.images)  # one fixed draw
    p = grey.train.images.float() / 255
    # Pixels of full ink are always 1 and background always 0; in between, 1 as often as the intensity.
    assert bool((binary.train.images[p == 1] == 1).all()) and bool((binary.train.images[p == 0] == 0).all())
    middle = (p > 0.3) & (p < 0.7)
    assert abs(binary.train.images[middle].float().mean() - p[middle].mean()) < 0.01
    threshold = load_dataset("mnist", binarize="threshold")
    assert torch.equal(threshold.train.images, (grey.train.images >= 128).to(torch.uint8))
    with pytest.raises(ValueError, match="binarize must be"):
        load_dataset("mnist", binarize="otsu")


def test_256_levels_from_uint8_images():
    """uint8 images of 256 levels (MNIST, CIFAR-10) are accepted: the range check compares Python
    ints (a uint8 tensor compared with 256 wraps it to 0 and refused every image)."""
    model = PixelGRU(4, levels=256, hidden_size=8, backend="reference")
    images = torch.randint(0, 256, (3, 1, 4, 4), dtype=torch.uint8)
    images[0, 0, 0, 0] = 255
    assert model(images).shape == (3,)
    assert model.complete(images, torch.ones(4, 4, dtype=torch.bool)).equal(images.long())
    with pytest.raises(ValueError, match=r"values must be in 0\.\.255, got 300\.\.300"):
        model(torch.full((1, 1, 4, 4), 300))
