"""Digits split and the local CIFAR-10 loader."""
import pickle

import numpy as np
import pytest
import torch

from nni_gensynth.data import load_cifar10, load_dataset, load_digits


def test_digits_fixed_stratified_split():
    a = load_digits(image_size=8)
    b = load_digits(image_size=8)
    assert a.x_train.shape == (1437, 1, 8, 8) and a.x_test.shape == (360, 1, 8, 8)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_test, b.y_test)
    counts = torch.bincount(a.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: ~36 per class
    assert abs(float(a.x_train.mean())) < 1e-4  # standardised with training statistics


def test_digits_upscaled_and_channels():
    d = load_digits(image_size=16, channels=3)
    assert d.x_train.shape[1:] == (3, 16, 16)
    assert d.input_shape == (1, 3, 16, 16)
    assert torch.equal(d.x_train[:, 0], d.x_train[:, 2])
    with pytest.raises(ValueError, match="image_size"):
        load_digits(image_size=0)


def _write_batch(path, n, seed):
    rng = np.random.default_rng(seed)
    batch = {b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
             b"labels": list(rng.integers(0, 10, size=n))}
    with open(path, "wb") as f:
        pickle.dump(batch, f)


def test_cifar10_from_local_python_batches(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for i in range(1, 6):
        _write_batch(root / f"data_batch_{i}", 4, i)
    _write_batch(root / "test_batch", 3, 9)
    d = load_dataset(str(tmp_path), image_size=16, channels=3)
    assert d.name == "cifar10"
    assert d.x_train.shape == (20, 3, 16, 16) and d.x_test.shape == (3, 3, 16, 16)
    assert d.y_train.dtype == torch.int64
    grey = load_cifar10(root, image_size=None, channels=1, train_limit=5)
    assert grey.x_train.shape == (5, 1, 32, 32)


def test_cifar10_missing_folder_or_batch(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cifar10(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        load_cifar10(tmp_path)
