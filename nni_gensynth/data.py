"""Datasets for trials: scikit-learn's digits (embedded, no download) and a local CIFAR-10 copy.

Both come as a `DataSplit` of float32 NCHW tensors with a fixed train / held-out test split:
- digits: 1797 8x8 grey images, stratified 80/20 split with a fixed seed (1437 train, 360 test);
  the 360 test images are the held-out set every trial reports accuracy on.
- CIFAR-10 (`--data DIR`): the official python-pickle batches (data_batch_1..5 for training,
  test_batch as held-out), from the user's own copy of cifar-10-python.tar.gz, extracted.
Images are standardised with the training split's mean and std, optionally resized
(bilinear) to `image_size` and repeated to `channels`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"


@dataclass(frozen=True)
class DataSplit:
    """Training and held-out test tensors: x as float32 (N, C, H, W), y as int64 (N,)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """Shape of one input batch of size 1: (1, C, H, W)."""
        return (1, *self.x_train.shape[1:])


def _prepare(x_train: np.ndarray, x_test: np.ndarray, image_size: Optional[int],
             channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardise with training statistics, resize to image_size, repeat grey to `channels`."""
    mean, std = float(x_train.mean()), float(x_train.std()) or 1.0
    out = []
    for x in (x_train, x_test):
        t = torch.from_numpy(((x - mean) / std).astype(np.float32))
        if image_size is not None and t.shape[-1] != image_size:
            t = F.interpolate(t, size=(image_size, image_size), mode="bilinear", align_corners=False)
        if t.shape[1] != channels:
            if t.shape[1] != 1:
                raise ValueError(f"channels={channels} is not possible from {t.shape[1]}-channel images")
            t = t.repeat(1, channels, 1, 1)
        out.append(t.contiguous())
    return out[0], out[1]


def _check_size(image_size: Optional[int], channels: int) -> None:
    if image_size is not None and (not isinstance(image_size, int) or image_size < 1):
        raise ValueError(f"image_size must be a positive int or None, got {image_size!r}")
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be a positive int, got {channels!r}")


def load_digits(image_size: Optional[int] = 16, channels: int = 1) -> DataSplit:
    """scikit-learn's digits with the fixed stratified 80/20 split; test is held out."""
    from sklearn.datasets import load_digits as _sk_digits
    from sklearn.model_selection import train_test_split

    _check_size(image_size, channels)
    bunch = _sk_digits()
    x = bunch.images.astype(np.float32)[:, None, :, :] / 16.0
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=DIGITS_TEST_FRACTION,
                                              random_state=DIGITS_SPLIT_SEED, stratify=y)
    xt, xv = _prepare(x_tr, x_te, image_size, channels)
    return DataSplit("digits", xt, torch.from_numpy(y_tr), xv, torch.from_numpy(y_te), 10)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    # The official CIFAR-10 python batches are pickles. This reads the user's own local copy,
    # never anything received over a network or from a device; point `--data` only at a copy
    # you trust, since unpickling can run code.
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 batch {path} not found (expected the extracted "
                                f"cifar-10-batches-py folder of the official python tarball)")
    batch = np.load(path, allow_pickle=True, encoding="bytes")
    data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    return data.astype(np.float32) / 255.0, labels


def load_cifar10(data_dir: str | Path, image_size: Optional[int] = 32, channels: int = 3,
                 train_limit: Optional[int] = None) -> DataSplit:
    """CIFAR-10 from a local folder (the extracted `cifar-10-batches-py`, or its parent);
    test_batch is held out. `train_limit` keeps the first N training images (quick runs)."""
    _check_size(image_size, channels)
    root = Path(data_dir).expanduser()
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-10 folder {root} does not exist")
    parts = [_read_cifar_batch(root / name) for name in CIFAR10_TRAIN_BATCHES]
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    if train_limit is not None:
        x_tr, y_tr = x_tr[:train_limit], y_tr[:train_limit]
    x_te, y_te = _read_cifar_batch(root / CIFAR10_TEST_BATCH)
    if channels == 1:
        x_tr, x_te = x_tr.mean(axis=1, keepdims=True), x_te.mean(axis=1, keepdims=True)
    xt, xv = _prepare(x_tr, x_te, image_size, channels)
    return DataSplit("cifar10", xt, torch.from_numpy(y_tr), xv, torch.from_numpy(y_te), 10)


def load_dataset(data: Optional[str] = None, *, image_size: Optional[int] = 16, channels: int = 1) -> DataSplit:
    """`data=None` or "digits": the embedded digits; otherwise a local CIFAR-10 folder."""
    if data is None or data == "digits":
        return load_digits(image_size=image_size, channels=channels)
    return load_cifar10(data, image_size=image_size, channels=channels)
