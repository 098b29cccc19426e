"""Readers for the on-disk formats. Each returns a dict with ``train`` and ``test`` as
(uint8 images [N, C, H, W], int64 labels [N] or None), ``levels`` of the stored values and,
where known, ``num_classes`` and ``class_names``. A wrong or damaged file raises
:class:`DataFormatError` naming the file and what is wrong with it."""

from __future__ import annotations

import gzip
import io
import os
import pickle
from importlib import resources

import numpy as np
import torch


class DataFormatError(ValueError):
    """A data file is missing, truncated or not in the expected format."""


# ----------------------------------------------------------------------------------- digits

def read_digits() -> dict:
    with resources.files(__package__).joinpath("digits.npz").open("rb") as f:
        arrays = np.load(f)
        images, labels = arrays["images"], arrays["labels"]
    images = torch.from_numpy(images).to(torch.uint8)[:, None]      # [1797, 1, 8, 8], 0..16
    labels = torch.from_numpy(labels).to(torch.int64)
    test = torch.arange(len(labels)) % 5 == 4                        # the documented fixed split
    return {"train": (images[~test], labels[~test]), "test": (images[test], labels[test]),
            "levels": 17, "num_classes": 10, "class_names": tuple(str(d) for d in range(10))}


# -------------------------------------------------------------- MNIST, built in (9,000 images)

MNIST_TEST = 1000  # the built-in MNIST's last 1,000 images (8000..8999) are its test split


def read_mnist_builtin() -> dict:
    """9,000 MNIST training digits shipped inside this package (data/mnist-9k.npz; CC BY-SA 3.0,
    see data/NOTICE-mnist.md), in a fixed random order: images 0..7999 train, 8000..8999 test."""
    with resources.files(__package__).joinpath("mnist-9k.npz").open("rb") as f:
        arrays = np.load(f)
        images, labels = arrays["images"], arrays["labels"]
    if images.shape != (9000, 28, 28) or labels.shape != (9000,):
        raise DataFormatError(f"mnist-9k.npz: expected images [9000, 28, 28] and labels [9000], got "
                              f"{list(images.shape)} and {list(labels.shape)}")
    images = torch.from_numpy(images.astype(np.uint8))[:, None]
    labels = torch.from_numpy(labels.astype(np.int64))
    cut = len(labels) - MNIST_TEST
    return {"train": (images[:cut], labels[:cut]), "test": (images[cut:], labels[cut:]),
            "levels": 256, "num_classes": 10, "class_names": tuple(str(d) for d in range(10))}


# ---------------------------------------------------------------------- MNIST (IDX files)

_IDX_NAMES = {
    ("train", "images"): ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    ("train", "labels"): ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    ("test", "images"): ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def _find(directory: str, names) -> str:
    for name in names:
        for candidate in (name, name + ".gz"):
            path = os.path.join(directory, candidate)
            if os.path.isfile(path):
                return path
    raise DataFormatError(f"{directory}: no {names[0]} (or .gz) found")


def _read_bytes(path: str) -> bytes:
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataFormatError(f"{path}: cannot be read ({exc})") from None


def read_idx(path: str, ndim: int) -> np.ndarray:
    """One IDX file of unsigned bytes with ``ndim`` dimensions (3 for images, 1 for labels)."""
    data = _read_bytes(path)
    if len(data) < 4 + 4 * ndim:
        raise DataFormatError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    zero, dtype_code, dims = data[0:2], data[2], data[3]
    if zero != b"\0\0" or dtype_code != 0x08 or dims != ndim:
        raise DataFormatError(f"{path}: not an IDX file of unsigned bytes with {ndim} dimension(s) "
                              f"(magic {data[:4].hex()}, want 000008{ndim:02x})")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = memoryview(data)[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)):
        raise DataFormatError(f"{path}: header says {shape} = {int(np.prod(shape))} bytes of data, "
                              f"the file holds {len(body)} (truncated or corrupt)")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def read_idx_dir(directory: str) -> dict:
    out = {"levels": 256, "num_classes": 10}
    for split in ("train", "test"):
        images = read_idx(_find(directory, _IDX_NAMES[(split, "images")]), 3)
        labels_path = _find(directory, _IDX_NAMES[(split, "labels")])
        labels = read_idx(labels_path, 1)
        if len(labels) != len(images):
            raise DataFormatError(f"{labels_path}: {len(labels)} labels for {len(images)} images")
        if labels.size and labels.max() > 9:
            raise DataFormatError(f"{labels_path}: label {labels.max()} out of range 0..9")
        out[split] = (torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64)))
    return out


# -------------------------------------------------------------------- CIFAR-10 (python)

class _Recorded:
    """Stands in for a numpy object while unpickling: keeps the arguments and state it was
    given and builds nothing (numpy itself is never called on the file's contents)."""

    def __init__(self, *args):
        self.args, self.state = args, None

    def __setstate__(self, state):
        self.state = state


class _DtypeRecord(_Recorded):
    pass


class _ArrayRecord(_Recorded):
    pass


class _NdarrayMarker:
    pass


def _frombuffer_record(buffer, dtype, shape, order):  # pickle protocol 5's form of an array
    record = _ArrayRecord()
    record.state = (1, shape, dtype, order == "F", bytes(buffer))
    return record


def _latin1(text, encoding="latin1"):  # how protocol-2 pickles written by Python 3 carry bytes
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing to decode {encoding!r}")
    return text.encode("latin1")


class _PlainData(pickle.Unpickler):
    """Unpickles CIFAR's batch dicts without running code and without letting numpy interpret
    the file: an array becomes an :class:`_ArrayRecord` of its raw bytes, shape and dtype name,
    which :func:`_array` then checks and converts. Any other global is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _ArrayRecord,
        ("numpy._core.multiarray", "_reconstruct"): _ArrayRecord,
        ("numpy.core.numeric", "_frombuffer"): _frombuffer_record,
        ("numpy._core.numeric", "_frombuffer"): _frombuffer_record,
        ("numpy", "ndarray"): _NdarrayMarker,
        ("numpy", "dtype"): _DtypeRecord,
        ("_codecs", "encode"): _latin1,
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _array(value, path: str, field: str, kinds: tuple[str, ...]) -> np.ndarray:
    """A recorded array (or a list of ints) as a numpy array of one of the dtype names ``kinds``."""
    if isinstance(value, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise DataFormatError(f"{path}: {field!r} must be a list of ints")
        return np.asarray(value, dtype=np.int64)
    try:
        _, shape, dtype, fortran, raw = value.state
        name = dtype.args[0]
        byte_order = dtype.state[1] if dtype.state else "|"
    except (AttributeError, TypeError, ValueError, IndexError):
        raise DataFormatError(f"{path}: {field!r} is not an array") from None
    if (not isinstance(value, _ArrayRecord) or not isinstance(dtype, _DtypeRecord) or name not in kinds
            or byte_order not in ("<", "|", "=") or fortran or not isinstance(raw, (bytes, bytearray))
            or not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape)):
        raise DataFormatError(f"{path}: {field!r} must be a C-ordered array of {' or '.join(kinds)}")
    dt = np.dtype(name).newbyteorder("<")
    if len(raw) != int(np.prod(shape)) * dt.itemsize:
        raise DataFormatError(f"{path}: {field!r} holds {len(raw)} bytes for shape {shape}")
    return np.frombuffer(raw, dtype=dt).reshape(shape).astype(dt.newbyteorder("="))


def _read_cifar_batch(path: str) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        with open(path, "rb") as f:
            batch = _PlainData(io.BytesIO(f.read()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, OSError, RecursionError, MemoryError) as exc:
        raise DataFormatError(f"{path}: not a CIFAR-10 python batch ({exc})") from None
    if not isinstance(batch, dict):
        raise DataFormatError(f"{path}: not a CIFAR-10 python batch (a {type(batch).__name__}, not a dict)")
    data, labels = batch.get(b"data", batch.get("data")), batch.get(b"labels", batch.get("labels"))
    data = _array(data, path, "data", ("u1",))
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DataFormatError(f"{path}: 'data' must be a uint8 array [N, 3072], got shape {list(data.shape)}")
    labels = _array(labels if labels is not None else [], path, "labels", ("i8", "i4", "u1")).astype(np.int64)
    if labels.shape != (data.shape[0],) or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise DataFormatError(f"{path}: 'labels' must be {data.shape[0]} values in 0..9")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())   # stored as R plane, G, B
    return images, torch.from_numpy(labels)


def read_cifar10(directory: str) -> dict:
    nested = os.path.join(directory, "cifar-10-batches-py")
    if os.path.isdir(nested) and not os.path.isfile(os.path.join(directory, "test_batch")):
        directory = nested
    train_files = sorted(f for f in os.listdir(directory) if f.startswith("data_batch_"))
    if not train_files:
        raise DataFormatError(f"{directory}: no data_batch_* files (CIFAR-10 python version)")
    if not os.path.isfile(os.path.join(directory, "test_batch")):
        raise DataFormatError(f"{directory}: no test_batch file (CIFAR-10 python version)")
    parts = [_read_cifar_batch(os.path.join(directory, f)) for f in train_files]
    names = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    return {"train": (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])),
            "test": _read_cifar_batch(os.path.join(directory, "test_batch")),
            "levels": 256, "num_classes": 10, "class_names": names}


# ------------------------------------------------------------------------ image folders

_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def _image_files(directory: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        found.extend(os.path.join(root, f) for f in sorted(files) if f.lower().endswith(_IMAGE_EXTENSIONS))
    return found


def _load_image(path: str, mode: str, size: tuple[int, int] | None):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert(mode)
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BOX if
                                     image.size[0] >= size[1] else Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataFormatError(f"{path}: not a readable image ({exc})") from None
    return array[:, :, None] if array.ndim == 2 else array


def read_folder(directory: str, channels: int = 1, image_size: tuple[int, int] | None = None) -> dict:
    split_dirs = [os.path.join(directory, s) for s in ("train", "test")]
    if all(os.path.isdir(d) for d in split_dirs):
        groups = {"train": _image_files(split_dirs[0]), "test": _image_files(split_dirs[1])}
        roots = {"train": split_dirs[0], "test": split_dirs[1]}
    else:
        files = _image_files(directory)
        groups = {"train": [f for i, f in enumerate(files) if i % 10 != 9],
                  "test": [f for i, f in enumerate(files) if i % 10 == 9]}
        roots = {"train": directory, "test": directory}
    if not groups["train"]:
        raise DataFormatError(f"{directory}: no image files ({', '.join(_IMAGE_EXTENSIONS)})")
    if not groups["test"]:
        raise DataFormatError(f"{directory}: no test images (need at least 10 images, or train/ and test/)")

    # Classes: the first path component under the split root, when every image has one.
    def class_of(path: str, root: str) -> str | None:
        parts = os.path.relpath(path, root).split(os.sep)
        return parts[0] if len(parts) > 1 else None

    classes = {s: [class_of(f, roots[s]) for f in groups[s]] for s in groups}
    labelled = all(c is not None for s in classes for c in classes[s])
    names = tuple(sorted({c for s in classes for c in classes[s]})) if labelled else None

    mode = "L" if channels == 1 else "RGB"
    if image_size is None:  # the first image's size for all
        first = _load_image(groups["train"][0], mode, None)
        image_size = first.shape[:2]
    out = {"levels": 256, "num_classes": len(names) if names else None, "class_names": names}
    for split, files in groups.items():
        arrays = np.stack([_load_image(f, mode, image_size) for f in files])     # [N, H, W, C]
        images = torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous()
        labels = torch.tensor([names.index(c) for c in classes[split]]) if names else None
        out[split] = (images, labels)
    return out
