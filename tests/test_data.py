"""Digits and CIFAR-10 splits (train / validation / test), DataSplit checks and source dispatch."""
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch

from nni_gensynth.data import DataSplit, DatasetError, load_cifar10, load_dataset, load_digits


@pytest.fixture(scope="module")
def digits8():
    return load_digits(image_size=8)


def test_digits_fixed_stratified_three_way_split(digits8):
    a, b = digits8, load_digits(image_size=8)
    assert a.sizes == {"train": 1079, "val": 359, "test": 359}
    assert a.x_train.shape == (1079, 1, 8, 8) and a.x_val.shape == (359, 1, 8, 8) and a.x_test.shape == (359, 1, 8, 8)
    for which in ("train", "val", "test"):
        assert torch.equal(a.split(which)[0], b.split(which)[0]) and torch.equal(a.split(which)[1], b.split(which)[1])
    for y in (a.y_val, a.y_test):
        counts = torch.bincount(y, minlength=10)
        assert counts.min() >= 35 and counts.max() <= 37  # stratified: ~36 per class
    assert a.class_names == tuple("0123456789") and a.num_classes == 10


def test_digits_standardised_with_training_statistics_only(digits8):
    assert abs(float(digits8.x_train.mean())) < 1e-4
    assert float(digits8.x_train.std(correction=0)) == pytest.approx(1.0, abs=1e-4)
    assert abs(float(digits8.x_test.mean())) > 1e-4  # held-out splits are not re-centred on themselves


def test_digits_upscaled_and_channels():
    d = load_digits(image_size=16, channels=3)
    assert d.x_train.shape[1:] == (3, 16, 16) and d.x_val.shape[1:] == (3, 16, 16)
    assert d.input_shape == (1, 3, 16, 16)
    assert torch.equal(d.x_train[:, 0], d.x_train[:, 2])
    with pytest.raises(ValueError, match="image_size"):
        load_digits(image_size=0)
    with pytest.raises(ValueError, match="channels"):
        load_dataset(None, channels=0)


def _write_batch(path, n, offset=0):
    rng = np.random.default_rng(offset)
    batch = {b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
             b"labels": [(offset + i) % 10 for i in range(n)]}
    with open(path, "wb") as f:
        pickle.dump(batch, f)


@pytest.fixture
def cifar_root(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for i in range(1, 6):
        _write_batch(root / f"data_batch_{i}", 10, 10 * i)  # 50 images, 5 per class
    _write_batch(root / "test_batch", 10, 0)
    return root


def test_cifar10_validation_carved_from_training_batches(cifar_root):
    d = load_dataset(str(cifar_root.parent), image_size=16, channels=3)
    assert d.name == "cifar10" and d.class_names[0] == "airplane"
    assert d.sizes == {"train": 40, "val": 10, "test": 10}  # 10% of training per class, at least one
    assert d.x_train.shape == (40, 3, 16, 16) and d.y_train.dtype == torch.int64
    assert torch.equal(torch.bincount(d.y_val, minlength=10), torch.ones(10, dtype=torch.int64))
    again = load_cifar10(cifar_root, image_size=16)
    assert torch.equal(again.x_val, d.x_val) and torch.equal(again.y_test, d.y_test)


def test_cifar10_train_limit_keeps_validation(cifar_root):
    full = load_cifar10(cifar_root, image_size=None, channels=1)
    short = load_cifar10(cifar_root, image_size=None, channels=1, train_limit=20)
    assert short.x_train.shape == (20, 1, 32, 32)
    assert torch.equal(short.y_val, full.y_val) and torch.equal(short.y_test, full.y_test)
    with pytest.raises(DatasetError, match="train split has no images"):
        load_cifar10(cifar_root, train_limit=5)  # 5 images cannot hold 10 classes
    with pytest.raises(ValueError, match="train_limit"):
        load_cifar10(cifar_root, train_limit=0)


def test_cifar10_missing_folder_batch_or_corrupt(tmp_path, cifar_root):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cifar10(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        load_cifar10(empty)
    (cifar_root / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match="data_batch_3"):
        load_cifar10(cifar_root)


def test_load_dataset_dispatch(tmp_path):
    assert load_dataset("digits", image_size=8).name == "digits"
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        load_dataset(str(tmp_path / "missing"))
    (tmp_path / "data.csv").write_text("1,2\n")
    with pytest.raises(DatasetError, match=r"\.npz"):
        load_dataset(tmp_path / "data.csv")
    with pytest.raises(TypeError):
        load_dataset(3)


def test_datasplit_checks_its_structure(digits8):
    assert replace(digits8, x_train=digits8.x_train[:100], y_train=digits8.y_train[:100]).sizes["train"] == 100
    with pytest.raises(DatasetError, match="x_val"):
        replace(digits8, x_val=digits8.x_val.double())
    with pytest.raises(DatasetError, match="val split has 10 images and 359 labels"):
        replace(digits8, x_val=digits8.x_val[:10])
    with pytest.raises(DatasetError, match="test images"):
        replace(digits8, x_test=torch.zeros(359, 1, 9, 9))
    with pytest.raises(DatasetError, match="label 10"):
        replace(digits8, y_test=torch.full((359,), 10))
    with pytest.raises(DatasetError, match="num_classes"):
        replace(digits8, num_classes=1, class_names=())
    with pytest.raises(ValueError, match="split must be"):
        digits8.split("validation")
    assert isinstance(digits8, DataSplit)
