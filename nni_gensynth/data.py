"""Datasets for trials, as a `DataSplit` of training, validation and test tensors.

Why three splits: trials report validation accuracy (`accuracy`) and the tuner learns and
selects on it; test accuracy (`test_accuracy`) is measured once per trained network and never
given to the tuner, so the accuracy quoted for the network finally chosen is not inflated by
having picked the best of many on the same images.

Sources, through `load_dataset(source, image_size=..., channels=...)`:
- None or "digits": scikit-learn's digits, embedded (1797 8x8 grey images), split 60/20/20 per
  class with a fixed seed: 1079 train, 359 validation, 359 test, the same on every call.
- a CIFAR-10 folder (the extracted `cifar-10-batches-py` of the official python tarball, or its
  parent): validation is 10% of data_batch_1..5 per class with a fixed seed, test is test_batch:
  45000 train, 5000 validation, 10000 test.
- a folder in torchvision's ImageFolder layout: root/<class>/**/<image>.png|.jpg|.jpeg, read with
  Pillow; class index = position of the folder name in sorted order. Optional root/train/,
  root/val/, root/test/ (each in ImageFolder layout, class folders named as in train/) fix the
  splits; then root holds nothing else. Images are converted to RGB (channels=3) or grey
  (otherwise), resized bilinearly to image_size x image_size; with image_size=None they must all
  have the same size.
- an .npz file with `x` and `y`, or with `x_train`, `y_train` and optionally `x_val`, `y_val`,
  `x_test`, `y_test` (given splits); optional `class_names` (strings: fixes the class count, so
  larger labels are errors) and `layout`. Layout of x: 3-D is (N, H, W) grey; 4-D is (N, H, W, C)
  when the last axis has at most 4 entries, else (N, C, H, W) when axis 1 has at most 4 entries;
  `layout` ("NHW", "NHWC" or "NCHW") overrides the guess (needed for images narrower than 5
  pixels in NCHW). Labels are integer class indices 0..K-1 (integral floats are accepted).
- "package.module:function": called with no arguments; returns a DataSplit (used as it is,
  apart from channels and image size) or a mapping with the .npz keys above.

Missing splits are carved from the training data per class with a fixed seed: a source with
training data only is split 60/20/20; a source with train and one of val/test gets the missing
one as 10% of train. Each class gives round(n_c * fraction), at least 1, images to a carved
split, test first, so every split holds every class.

Preparation: pixels become float32 (N, C, H, W); grey is repeated to `channels`, colour is
averaged to grey for channels=1; all splits are standardised with the training split's mean and
std (one scalar each, training statistics only); then resized bilinearly to image_size.

Bad data raises `DatasetError` (a ValueError) naming the file, key, split or class at fault.
"""
from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .defaults import DEFAULT_CHANNELS, DEFAULT_IMAGE_SIZE

SPLITS = ("train", "val", "test")
SPLIT_SEED = 0
POOL_FRACTIONS = {"test": 0.2, "val": 0.2}  # training data only: 60/20/20
CARVE_FRACTION = 0.1  # train plus one of val/test: the missing one is 10% of train
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
NPZ_LAYOUTS = ("NHW", "NHWC", "NCHW")
ARRAY_KEYS = frozenset({"x", "y", "x_train", "y_train", "x_val", "y_val", "x_test", "y_test",
                        "layout", "class_names"})
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

Labelled = tuple[torch.Tensor, torch.Tensor]  # (x float32 (N, C, H, W), y int64 (N,))


class DatasetError(ValueError):
    """Unusable data; the message names the file, key, split or class at fault."""


@dataclass(frozen=True)
class DataSplit:
    """Training, validation and test tensors: x as float32 (N, C, H, W), y as int64 (N,).

    Validation is what trials report as `accuracy` and the tuner learns from; test is
    reported separately and never given to the tuner. `class_names` is empty when unknown.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    class_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_structure(self)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """Shape of one input batch of size 1: (1, C, H, W)."""
        return (1, *self.x_train.shape[1:])

    @property
    def sizes(self) -> dict[str, int]:
        """Number of images per split: {"train": n, "val": n, "test": n}."""
        return {which: len(self.split(which)[0]) for which in SPLITS}

    def split(self, which: str) -> Labelled:
        """(x, y) of split "train", "val" or "test"."""
        if which not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {which!r}")
        return getattr(self, f"x_{which}"), getattr(self, f"y_{which}")


# --- checks ---------------------------------------------------------------------------------

def _class_label(k: int, class_names: Sequence[str]) -> str:
    """'class 3' or 'class 3 (cat)' for messages."""
    return f"class {k} ({class_names[k]})" if k < len(class_names) else f"class {k}"


def _check_structure(data: DataSplit) -> None:
    """Cheap consistency of a DataSplit: dtypes, ranks, lengths, image shapes, label range."""
    where = f"DataSplit {data.name!r}"
    if isinstance(data.num_classes, bool) or not isinstance(data.num_classes, int) or data.num_classes < 2:
        raise DatasetError(f"{where}: num_classes must be an int >= 2, got {data.num_classes!r}")
    if data.class_names and len(data.class_names) != data.num_classes:
        raise DatasetError(f"{where}: {len(data.class_names)} class_names for {data.num_classes} classes")
    image_shape = tuple(data.x_train.shape[1:]) if isinstance(data.x_train, torch.Tensor) else None
    for which in SPLITS:
        x, y = data.split(which)
        if not (isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.dim() == 4):
            raise DatasetError(f"{where}: x_{which} must be a float32 tensor (N, C, H, W), got "
                               f"{getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}")
        if not (isinstance(y, torch.Tensor) and y.dtype == torch.int64 and y.dim() == 1):
            raise DatasetError(f"{where}: y_{which} must be an int64 tensor (N,), got "
                               f"{getattr(y, 'dtype', type(y).__name__)} {tuple(getattr(y, 'shape', ()))}")
        if len(x) != len(y) or len(x) == 0:
            raise DatasetError(f"{where}: the {which} split has {len(x)} images and {len(y)} labels; "
                               f"it needs as many of each, at least one")
        if tuple(x.shape[1:]) != image_shape:
            raise DatasetError(f"{where}: {which} images are {tuple(x.shape[1:])}, training images {image_shape}")
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= data.num_classes:
            raise DatasetError(f"{where}: y_{which} has label {low if low < 0 else high}, "
                               f"outside 0..{data.num_classes - 1}")


def _check_classes(labels: Mapping[str, torch.Tensor], num_classes: int, class_names: Sequence[str],
                   where: str) -> None:
    """At least two classes, and every class present in every split."""
    if num_classes < 2:
        raise DatasetError(f"{where}: only one class ({_class_label(0, class_names)}); a classifier needs two or more")
    for which, y in labels.items():
        counts = torch.bincount(y, minlength=num_classes)
        missing = [_class_label(k, class_names) for k in (counts == 0).nonzero().flatten().tolist()]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise DatasetError(f"{where}: the {which} split has no images of {shown}; every split needs "
                               f"every class (add images, or fix the split folders or arrays)")


def _check_pixels(x: torch.Tensor, what: str) -> None:
    """No NaN or infinite pixels; the message gives the first bad image's index."""
    if x.is_floating_point():
        bad = (~torch.isfinite(x)).flatten(1).any(dim=1).nonzero().flatten()
        if len(bad):
            raise DatasetError(f"{what}: image {int(bad[0])} has NaN or infinite pixels "
                               f"({len(bad)} such images)")


def _check_size(image_size: Optional[int], channels: int) -> None:
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int)
                                   or image_size < 1):
        raise ValueError(f"image_size must be a positive int or None, got {image_size!r}")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be a positive int, got {channels!r}")


# --- splitting and preparation --------------------------------------------------------------

def _carve(y: torch.Tensor, fractions: Mapping[str, float], seed: int, class_names: Sequence[str],
           where: str) -> dict[str, torch.Tensor]:
    """Indices per split: from each class, round(n_c * fraction) (at least 1) shuffled images
    go to each carved split in order, the rest to "train". Index tensors are sorted."""
    rng = np.random.default_rng(seed)
    labels = y.numpy()
    parts: dict[str, list[np.ndarray]] = {name: [] for name in ("train", *fractions)}
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        members = members[rng.permutation(len(members))]
        counts = {name: max(1, math.floor(len(members) * f + 0.5)) for name, f in fractions.items()}
        if sum(counts.values()) >= len(members):
            raise DatasetError(f"{where}: {_class_label(int(k), class_names)} has {len(members)} training "
                               f"image(s), too few to carve {' and '.join(fractions)} from them (needs at "
                               f"least {len(fractions) + 1}); add images or give fixed splits")
        start = 0
        for name, count in counts.items():
            parts[name].append(members[start:start + count])
            start += count
        parts["train"].append(members[start:])
    return {name: torch.from_numpy(np.sort(np.concatenate(p))) for name, p in parts.items()}


def _complete(given: Mapping[str, Labelled], num_classes: int, class_names: Sequence[str],
              where: str) -> dict[str, Labelled]:
    """All three splits: the given ones, and the missing ones carved from train (module docstring)."""
    if "train" not in given:
        raise DatasetError(f"{where}: has {sorted(given)} split(s) but no training split")
    if num_classes < 2:
        raise DatasetError(f"{where}: only one class ({_class_label(0, class_names)}); a classifier needs two or more")
    missing = [which for which in ("test", "val") if which not in given]
    if not missing:
        return dict(given)
    fractions = POOL_FRACTIONS if len(missing) == 2 else {missing[0]: CARVE_FRACTION}
    x, y = given["train"]
    splits = dict(given)
    for which, index in _carve(y, fractions, SPLIT_SEED, class_names, where).items():
        splits[which] = (x[index], y[index])
    return splits


def _to_channels(x: torch.Tensor, channels: int, where: str) -> torch.Tensor:
    """Grey repeated to `channels`, or any number of channels averaged to grey."""
    have = x.shape[1]
    if have == channels:
        return x
    if have == 1:
        return x.repeat(1, channels, 1, 1)
    if channels == 1:
        return x.mean(dim=1, keepdim=True)
    raise DatasetError(f"{where}: cannot make {channels}-channel images from {have}-channel ones "
                       f"(grey converts to any count, anything converts to grey)")


def _resize(x: torch.Tensor, image_size: Optional[int]) -> torch.Tensor:
    """Bilinear resize to image_size x image_size; None keeps the size."""
    if image_size is not None and tuple(x.shape[-2:]) != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return x.contiguous()


def _prepare(name: str, splits: Mapping[str, Labelled], num_classes: int, class_names: Sequence[str],
             image_size: Optional[int], channels: int, where: str) -> DataSplit:
    """Check classes, convert channels, standardise with training statistics, resize."""
    _check_classes({which: splits[which][1] for which in SPLITS}, num_classes, class_names, where)
    xs = {which: _to_channels(splits[which][0], channels, where) for which in SPLITS}
    mean, std = float(xs["train"].mean()), float(xs["train"].std(correction=0)) or 1.0
    xs = {which: _resize((x - mean) / std, image_size) for which, x in xs.items()}
    return DataSplit(name, xs["train"], splits["train"][1], xs["val"], splits["val"][1], xs["test"],
                     splits["test"][1], num_classes, tuple(class_names))


def _conform(data: DataSplit, image_size: Optional[int], channels: int, where: str) -> DataSplit:
    """A ready DataSplit checked and brought to `channels` and `image_size` (not re-standardised)."""
    for which in SPLITS:
        _check_pixels(data.split(which)[0], f"{where}: x_{which}")
    _check_classes({which: data.split(which)[1] for which in SPLITS}, data.num_classes, data.class_names, where)
    xs = {f"x_{which}": _resize(_to_channels(data.split(which)[0], channels, where), image_size)
          for which in SPLITS}
    return replace(data, **xs)


# --- embedded digits ------------------------------------------------------------------------

def load_digits(image_size: Optional[int] = DEFAULT_IMAGE_SIZE, channels: int = DEFAULT_CHANNELS) -> DataSplit:
    """scikit-learn's digits split 60/20/20 per class with a fixed seed (1079 / 359 / 359)."""
    from sklearn.datasets import load_digits as _sk_digits

    _check_size(image_size, channels)
    bunch = _sk_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32)[:, None, :, :])
    y = torch.from_numpy(bunch.target.astype(np.int64))
    names = tuple(str(k) for k in range(10))
    splits = _complete({"train": (x, y)}, 10, names, "digits")
    return _prepare("digits", splits, 10, names, image_size, channels, "digits")


# --- CIFAR-10 python batches ----------------------------------------------------------------

def _read_cifar_batch(path: Path) -> Labelled:
    # The official CIFAR-10 python batches are pickles. This reads the user's own local copy,
    # never anything received over a network or from a device; point `--data` only at a copy
    # you trust, since unpickling can run code.
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 batch {path} not found (expected the extracted "
                                f"cifar-10-batches-py folder of the official python tarball)")
    try:
        batch = np.load(path, allow_pickle=True, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as exc:  # a broken pickle raises almost anything
        raise DatasetError(f"{path}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from exc
    if len(labels) != len(data) or (len(labels) and (labels.min() < 0 or labels.max() > 9)):
        raise DatasetError(f"{path}: {len(data)} images with {len(labels)} labels in 0..9 expected")
    return torch.from_numpy(data).float(), torch.from_numpy(labels)


def _is_cifar10(folder: Path) -> bool:
    """A folder holding the CIFAR-10 python batches, or their `cifar-10-batches-py` parent."""
    return (folder / "cifar-10-batches-py").is_dir() or (folder / CIFAR10_TRAIN_BATCHES[0]).is_file()


def load_cifar10(data_dir: str | os.PathLike, image_size: Optional[int] = 32, channels: int = 3,
                 train_limit: Optional[int] = None) -> DataSplit:
    """CIFAR-10 from a local folder (the extracted `cifar-10-batches-py`, or its parent):
    validation is 10% of the training batches per class (fixed seed), test_batch is test.
    `train_limit` keeps the first N training images after validation is carved (quick runs;
    validation and test stay the same)."""
    _check_size(image_size, channels)
    if train_limit is not None and (isinstance(train_limit, bool) or not isinstance(train_limit, int)
                                    or train_limit < 1):
        raise ValueError(f"train_limit must be a positive int or None, got {train_limit!r}")
    root = Path(data_dir).expanduser()
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-10 folder {root} does not exist")
    parts = [_read_cifar_batch(root / name) for name in CIFAR10_TRAIN_BATCHES]
    train = (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))
    given = {"train": train, "test": _read_cifar_batch(root / CIFAR10_TEST_BATCH)}
    splits = _complete(given, 10, CIFAR10_CLASSES, str(root))
    if train_limit is not None:
        x, y = splits["train"]
        splits["train"] = (x[:train_limit], y[:train_limit])
    return _prepare("cifar10", splits, 10, CIFAR10_CLASSES, image_size, channels, str(root))


# --- ImageFolder ----------------------------------------------------------------------------

def _subfolders(folder: Path) -> list[str]:
    """Sorted names of the visible subfolders of `folder`."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    """PNG and JPEG files anywhere under `folder`, sorted, hidden files skipped."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


def _read_image(path: Path, image_size: Optional[int], channels: int) -> np.ndarray:
    """One image as uint8 (H, W, C): RGB for channels=3, else grey; resized when image_size is set."""
    from PIL import Image

    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB" if channels == 3 else "L")
        if image_size is not None and image.size != (image_size, image_size):
            image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
        pixels = np.asarray(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"{path}: cannot read image ({exc})") from exc
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def _read_image_folder(folder: Path, class_names: Sequence[str], image_size: Optional[int],
                       channels: int) -> Labelled:
    """Images and labels of one ImageFolder tree; a missing class folder simply gives no images."""
    images: list[np.ndarray] = []
    labels: list[int] = []
    first: Optional[Path] = None
    for k, name in enumerate(class_names):
        class_folder = folder / name
        if not class_folder.is_dir():
            continue
        files = _image_files(class_folder)
        if not files:
            raise DatasetError(f"{class_folder}: empty class folder (no .png, .jpg or .jpeg images)")
        for path in files:
            pixels = _read_image(path, image_size, channels)
            if images and pixels.shape != images[0].shape:
                raise DatasetError(f"{path}: image is {pixels.shape[1]}x{pixels.shape[0]}, but {first} is "
                                   f"{images[0].shape[1]}x{images[0].shape[0]}; pass image_size to resize all")
            first = first or path
            images.append(pixels)
            labels.append(k)
    if not images:
        raise DatasetError(f"{folder}: no images of any class")
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    return x, torch.tensor(labels, dtype=torch.int64)


def _image_folder_classes(root: Path, split_folders: Sequence[str]) -> list[str]:
    """Class names: train/'s subfolders with fixed splits, else root's; other splits may not add any."""
    base = root / "train" if split_folders else root
    class_names = _subfolders(base)
    if not class_names:
        raise DatasetError(f"{base}: no class folders (expected one subfolder per class holding images)")
    for which in split_folders:
        extra = sorted(set(_subfolders(root / which)) - set(class_names))
        if extra:
            raise DatasetError(f"{root / which}: class folder(s) {extra} not in {base}")
    return class_names


def load_image_folder(root: str | os.PathLike, image_size: Optional[int] = DEFAULT_IMAGE_SIZE, channels: int = DEFAULT_CHANNELS) -> DataSplit:
    """Images in torchvision's ImageFolder layout, with optional train/ val/ test/ (module docstring)."""
    _check_size(image_size, channels)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    split_folders = [which for which in SPLITS if (root / which).is_dir()]
    if split_folders:
        if "train" not in split_folders:
            raise DatasetError(f"{root}: has {split_folders}/ but no train/ folder")
        others = [name for name in _subfolders(root) if name not in SPLITS]
        if others:
            raise DatasetError(f"{root}: has split folders {split_folders} and also {others}; "
                               f"put every class folder inside train/ (and val/, test/)")
    class_names = _image_folder_classes(root, split_folders)
    trees = {which: root / which for which in split_folders} or {"train": root}
    given = {which: _read_image_folder(tree, class_names, image_size, channels) for which, tree in trees.items()}
    splits = _complete(given, len(class_names), class_names, str(root))
    return _prepare(root.name, splits, len(class_names), class_names, image_size, channels, str(root))


# --- arrays: .npz files and mappings --------------------------------------------------------

def _guess_layout(shape: tuple[int, ...], what: str) -> str:
    """NHW for 3-D; NHWC when the last axis has <= 4 entries, else NCHW when axis 1 has."""
    if len(shape) == 3:
        return "NHW"
    if len(shape) == 4 and shape[3] <= 4:
        return "NHWC"
    if len(shape) == 4 and shape[1] <= 4:
        return "NCHW"
    if len(shape) == 4:
        raise DatasetError(f"{what}: cannot tell the channel axis of shape {shape} (neither axis 1 nor the "
                           f"last has at most 4 entries); add layout 'NCHW' or 'NHWC'")
    raise DatasetError(f"{what}: images must be (N, H, W), (N, H, W, C) or (N, C, H, W), got shape {shape}")


def _as_array(value: Any, what: str) -> np.ndarray:
    """A numeric numpy array; object or ragged data is an error (images of different shapes)."""
    try:
        array = np.asarray(value)
    except ValueError as exc:
        raise DatasetError(f"{what}: not one array ({exc}); images of different shapes?") from exc
    if array.dtype == object:
        raise DatasetError(f"{what}: holds Python objects (images of different shapes?); "
                           f"store one numeric array")
    return array


def _images(value: Any, layout: Optional[str], what: str) -> torch.Tensor:
    """Pixels as float32 (N, C, H, W), from the given or guessed layout."""
    x = _as_array(value, what)
    if x.dtype.kind not in "buif":
        raise DatasetError(f"{what}: pixels must be numbers, got dtype {x.dtype}")
    layout = layout or _guess_layout(x.shape, what)
    if x.ndim != len(layout):
        raise DatasetError(f"{what}: shape {x.shape} does not match layout {layout!r}")
    if len(x) == 0:
        raise DatasetError(f"{what}: no images")
    x = x[:, None] if layout == "NHW" else x.transpose(0, 3, 1, 2) if layout == "NHWC" else x
    images = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    _check_pixels(images, what)
    return images


def _labels(value: Any, n: int, what: str) -> torch.Tensor:
    """Class indices as int64 (n,): integers (or integral floats), not negative."""
    y = _as_array(value, what)
    if y.ndim != 1 or len(y) != n:
        raise DatasetError(f"{what}: labels must be 1-D, one class index per image ({n}), got shape {y.shape}")
    if y.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
        if len(bad):
            raise DatasetError(f"{what}: labels must be integers, got {y[bad[0]].item()!r} at index {bad[0]}")
    elif y.dtype.kind not in "iu":
        raise DatasetError(f"{what}: labels must be integers, got dtype {y.dtype}")
    if y.min() < 0:
        index = int(np.argmin(y))
        raise DatasetError(f"{what}: label {y[index].item()!r} at index {index} is negative; labels are class indices 0..K-1")
    return torch.from_numpy(y.astype(np.int64))


def _text_option(value: Any, what: str) -> Optional[str]:
    """A 0-d string array (how np.savez stores a str) as str; None stays None."""
    if value is None:
        return None
    array = np.asarray(value)
    if array.ndim != 0 or array.dtype.kind not in "US":
        raise DatasetError(f"{what}: must be a string, got {array.dtype} {array.shape}")
    return str(array)


def _class_names_option(value: Any, what: str) -> tuple[str, ...]:
    """Distinct class names from a 1-D string array; () when absent."""
    if value is None:
        return ()
    array = np.asarray(value)
    if array.ndim != 1 or array.dtype.kind not in "US":
        raise DatasetError(f"{what}: must be a 1-D array of strings, got {array.dtype} {array.shape}")
    names = tuple(str(name) for name in array)
    if len(set(names)) != len(names):
        raise DatasetError(f"{what}: names repeat: {names}")
    return names


def _given_splits(arrays: Mapping[str, Any], layout: Optional[str], where: str) -> dict[str, Labelled]:
    """(x, y) per split found in the arrays: "train" from x/y, or each of x_<split>/y_<split>."""
    pooled = "x" in arrays or "y" in arrays
    per_split = [which for which in SPLITS if f"x_{which}" in arrays or f"y_{which}" in arrays]
    if pooled and per_split:
        raise DatasetError(f"{where}: has both x/y and per-split keys {per_split}; give one or the other")
    if not pooled and not per_split:
        raise DatasetError(f"{where}: no images; expected keys x and y, or x_train and y_train "
                           f"(with optional x_val, y_val, x_test, y_test)")
    keys = {"train": ("x", "y")} if pooled else {which: (f"x_{which}", f"y_{which}") for which in per_split}
    given: dict[str, Labelled] = {}
    for which, (x_key, y_key) in keys.items():
        for key, other in ((x_key, y_key), (y_key, x_key)):
            if key not in arrays:
                raise DatasetError(f"{where}: has {other} but no {key}")
        x = _images(arrays[x_key], layout, f"{where}: {x_key}")
        given[which] = (x, _labels(arrays[y_key], len(x), f"{where}: {y_key}"))
    shapes = {keys[which][0]: tuple(x.shape[1:]) for which, (x, _) in given.items()}
    if len(set(shapes.values())) > 1:
        raise DatasetError(f"{where}: images of different shapes (C, H, W) across splits: {shapes}")
    return given


def _num_classes(given: Mapping[str, Labelled], class_names: Sequence[str], where: str) -> int:
    """len(class_names) when given, else largest label + 1; labels must fit, and K <= images."""
    largest = max(int(y.max()) for _, y in given.values())
    total = sum(len(y) for _, y in given.values())
    if class_names and largest >= len(class_names):
        raise DatasetError(f"{where}: label {largest} is out of range for {len(class_names)} class_names")
    num_classes = len(class_names) or largest + 1
    if num_classes > total:
        raise DatasetError(f"{where}: label {largest} means {largest + 1} classes, but there are only "
                           f"{total} images; labels must be class indices 0..K-1")
    return num_classes


def _from_arrays(name: str, arrays: Mapping[str, Any], image_size: Optional[int], channels: int,
                 where: str) -> DataSplit:
    """A DataSplit from .npz-style arrays (keys in ARRAY_KEYS; see the module docstring)."""
    unknown = sorted(set(arrays) - ARRAY_KEYS)
    if unknown:
        raise DatasetError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(ARRAY_KEYS)}")
    layout = _text_option(arrays.get("layout"), f"{where}: layout")
    if layout is not None and layout not in NPZ_LAYOUTS:
        raise DatasetError(f"{where}: layout must be one of {NPZ_LAYOUTS}, got {layout!r}")
    class_names = _class_names_option(arrays.get("class_names"), f"{where}: class_names")
    given = _given_splits(arrays, layout, where)
    num_classes = _num_classes(given, class_names, where)
    splits = _complete(given, num_classes, class_names, where)
    return _prepare(name, splits, num_classes, class_names, image_size, channels, where)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array in an .npz archive, loaded without pickle."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: not a readable .npz file ({exc})") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DatasetError(f"{path}: holds a single array, not an .npz archive with x and y")
    arrays: dict[str, np.ndarray] = {}
    with archive:
        for key in archive.files:
            try:
                arrays[key] = archive[key]
            except ValueError as exc:  # object arrays need pickle
                raise DatasetError(f"{path}: {key} holds Python objects (images of different shapes?); "
                                   f"store one numeric array") from exc
            except (OSError, EOFError, zipfile.BadZipFile) as exc:
                raise DatasetError(f"{path}: {key} is unreadable ({exc})") from exc
    return arrays


def load_npz(path: str | os.PathLike, image_size: Optional[int] = DEFAULT_IMAGE_SIZE, channels: int = DEFAULT_CHANNELS) -> DataSplit:
    """Images and labels from an .npz file (keys and layout rules in the module docstring)."""
    _check_size(image_size, channels)
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f".npz file {path} does not exist")
    return _from_arrays(path.stem, _read_npz(path), image_size, channels, str(path))


# --- user code ------------------------------------------------------------------------------

def load_callable(reference: str, image_size: Optional[int] = DEFAULT_IMAGE_SIZE, channels: int = DEFAULT_CHANNELS) -> DataSplit:
    """The dataset a user's `package.module:function` returns (a DataSplit or a mapping of arrays)."""
    from .importing import import_callable

    _check_size(image_size, channels)
    try:
        function = import_callable(reference, "dataset source")
    except ValueError as exc:
        raise DatasetError(str(exc)) from exc
    value = function()
    if isinstance(value, DataSplit):
        return _conform(value, image_size, channels, reference)
    if isinstance(value, Mapping):
        return _from_arrays(reference, value, image_size, channels, reference)
    raise DatasetError(f"dataset source {reference!r} returned {type(value).__name__}; expected a DataSplit "
                       f"or a mapping of arrays (x and y, or x_train, y_train, ...)")


def load_dataset(source: str | os.PathLike | None = None, *, image_size: Optional[int] = DEFAULT_IMAGE_SIZE,
                 channels: int = DEFAULT_CHANNELS) -> DataSplit:
    """The dataset named by `source`: None or "digits", a CIFAR-10 folder, an ImageFolder folder,
    an .npz file, or "package.module:function" (what each gives: module docstring)."""
    _check_size(image_size, channels)
    if source is None or source == "digits":
        return load_digits(image_size=image_size, channels=channels)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"dataset source must be a str, a path or None, got {type(source).__name__}")
    path = Path(source).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise DatasetError(f"{path}: a dataset file must be an .npz archive")
        return load_npz(path, image_size=image_size, channels=channels)
    if path.is_dir():
        loader = load_cifar10 if _is_cifar10(path) else load_image_folder
        return loader(path, image_size=image_size, channels=channels)
    if isinstance(source, str) and ":" in source:
        return load_callable(source, image_size=image_size, channels=channels)
    raise FileNotFoundError(f"dataset source {str(source)!r}: no such file or folder (expected 'digits', a "
                            f"CIFAR-10 or ImageFolder folder, an .npz file, or 'package.module:function')")
