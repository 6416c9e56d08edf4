"""The user's own data: ImageFolder trees, .npz files and `module:function`, good and bad.

Every dataset is generated here in tmp_path. Pixel brightness encodes the class, so a test can
tell that images and labels stay paired through reading, splitting and standardising.
"""
import sys
import textwrap

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from nni_gensynth.data import DatasetError, _carve, load_dataset


def brightness(k: int) -> int:
    return 30 + 60 * k


def write_image(path, k, size=(8, 8), mode="RGB", seed=0):
    """An image of class k: brightness 30 + 60k with a little noise, as PNG or JPEG by suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    pixels = np.clip(brightness(k) + rng.integers(-5, 6, size=shape), 0, 255).astype(np.uint8)
    Image.fromarray(pixels, mode=mode).save(path)


def make_folder(root, classes=("cat", "dog", "eel"), per_class=10, mode="RGB", sizes=((8, 8),)):
    for k, name in enumerate(classes):
        for i in range(per_class):
            suffix = ".png" if i % 2 else ".jpg"
            write_image(root / name / f"img{i}{suffix}", k, size=sizes[i % len(sizes)], mode=mode, seed=i)
    return root


def assert_paired(data):
    """In every split, each class is brighter than the one before (labels follow the images)."""
    for which in ("train", "val", "test"):
        x, y = data.split(which)
        means = x.mean(dim=(1, 2, 3))
        for k in range(data.num_classes - 1):
            assert means[y == k].max() < means[y == k + 1].min(), which


# --- ImageFolder ------------------------------------------------------------------------------

def test_image_folder_split_per_class(tmp_path):
    root = make_folder(tmp_path / "pets", sizes=((8, 8), (12, 10)))
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "dog" / ".hidden.png").write_bytes(b"ignored")
    write_image(root / "eel" / "more" / "deep.png", 2, seed=99)  # nested folders count, like torchvision
    d = load_dataset(str(root), image_size=8, channels=3)
    assert d.name == "pets" and d.class_names == ("cat", "dog", "eel") and d.num_classes == 3
    assert d.sizes == {"train": 19, "val": 6, "test": 6}  # 60/20/20 per class: 2 + 2 per class carved
    assert d.x_train.shape[1:] == (3, 8, 8)
    assert_paired(d)
    again = load_dataset(root, image_size=8, channels=3)
    assert torch.equal(again.x_test, d.x_test) and torch.equal(again.y_val, d.y_val)


def test_image_folder_channels_both_ways(tmp_path):
    grey = load_dataset(make_folder(tmp_path / "grey", mode="L"), image_size=8, channels=3)
    assert grey.x_train.shape[1] == 3 and torch.equal(grey.x_train[:, 0], grey.x_train[:, 1])
    colour = load_dataset(make_folder(tmp_path / "colour"), image_size=4, channels=1)
    assert colour.x_train.shape[1:] == (1, 4, 4)
    assert_paired(colour)


def test_image_folder_fixed_splits(tmp_path):
    root = tmp_path / "fixed"
    make_folder(root / "train", per_class=4)
    make_folder(root / "val", per_class=2)
    make_folder(root / "test", per_class=3)
    d = load_dataset(root, image_size=None, channels=1)
    assert d.sizes == {"train": 12, "val": 6, "test": 9} and d.x_val.shape[1:] == (1, 8, 8)
    assert_paired(d)


def test_image_folder_train_and_test_only_carves_validation(tmp_path):
    root = tmp_path / "partial"
    make_folder(root / "train", per_class=10)
    make_folder(root / "test", per_class=2)
    d = load_dataset(root, image_size=8)
    assert d.sizes == {"train": 27, "val": 3, "test": 6}  # val: 10% of train per class


def test_image_folder_mixed_sizes_need_image_size(tmp_path):
    root = make_folder(tmp_path / "mixed", sizes=((8, 8), (10, 6)))
    with pytest.raises(DatasetError, match=r"img1\.png.*10x6.*8x8.*image_size"):
        load_dataset(root, image_size=None)


@pytest.mark.parametrize("case, message", [
    ("empty_class", r"eel: empty class folder"),
    ("corrupt_png", r"dog/img3\.png: cannot read image"),
    ("truncated_jpeg", r"cat/img2\.jpg: cannot read image"),
    ("one_class", r"only one class \(class 0 \(cat\)\)"),
    ("too_few", r"class 0 \(cat\) has 2 training image\(s\), too few"),
    ("val_lacks_class", r"the val split has no images of class 1 \(dog\)"),
    ("val_extra_class", r"class folder\(s\) \['fox'\] not in"),
    ("splits_and_classes", r"split folders \['train'\] and also \['cat'\]"),
    ("no_train", r"no train/ folder"),
    ("no_classes", r"no class folders"),
])
def test_image_folder_bad_data(tmp_path, case, message):
    root = tmp_path / "bad"
    if case == "empty_class":
        make_folder(root, classes=("cat", "dog"))
        (root / "eel").mkdir()
    elif case == "corrupt_png":
        make_folder(root)
        (root / "dog" / "img3.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    elif case == "truncated_jpeg":
        make_folder(root)
        data = (root / "cat" / "img2.jpg").read_bytes()
        (root / "cat" / "img2.jpg").write_bytes(data[:len(data) // 2])
    elif case == "one_class":
        make_folder(root, classes=("cat",))
    elif case == "too_few":
        make_folder(root, per_class=2)
    elif case == "val_lacks_class":
        make_folder(root / "train", per_class=4)
        make_folder(root / "val", classes=("cat",), per_class=2)
    elif case == "val_extra_class":
        make_folder(root / "train", classes=("cat", "dog"), per_class=4)
        make_folder(root / "val", classes=("cat", "dog", "fox"), per_class=2)
    elif case == "splits_and_classes":
        make_folder(root / "train", per_class=4)
        make_folder(root, classes=("cat",), per_class=2)
    elif case == "no_train":
        make_folder(root / "val", per_class=4)
    elif case == "no_classes":
        root.mkdir()
    with pytest.raises(DatasetError, match=message):
        load_dataset(root, image_size=8)


# --- .npz -------------------------------------------------------------------------------------

def images(labels, layout="NHW", size=6, channels=3, seed=0):
    """Pixels brightness(label) + noise, in the given layout."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    x = brightness(1) * labels[:, None, None, None] + rng.normal(0, 3, size=(len(labels), channels, size, size))
    if layout == "NHW":
        return x[:, 0]
    return x.transpose(0, 2, 3, 1) if layout == "NHWC" else x


LABELS = np.repeat(np.arange(3), 10)


@pytest.mark.parametrize("layout, channels", [("NHW", 1), ("NHWC", 3), ("NCHW", 3), ("NHWC", 1)])
def test_npz_layouts(tmp_path, layout, channels):
    path = tmp_path / "set.npz"
    np.savez(path, x=images(LABELS, layout, channels=channels), y=LABELS)
    d = load_dataset(str(path), image_size=6, channels=channels)
    assert d.name == "set" and d.num_classes == 3 and d.class_names == ()
    assert d.x_train.shape[1:] == (channels, 6, 6) and d.sizes == {"train": 18, "val": 6, "test": 6}
    assert_paired(d)


def test_npz_nhwc_and_nchw_give_the_same_tensors(tmp_path):
    x = images(LABELS, "NCHW").astype(np.uint8)
    np.savez(tmp_path / "a.npz", x=x, y=LABELS)
    np.savez(tmp_path / "b.npz", x=x.transpose(0, 2, 3, 1), y=LABELS.astype(np.float32))  # integral floats ok
    a = load_dataset(tmp_path / "a.npz", image_size=None, channels=3)
    b = load_dataset(tmp_path / "b.npz", image_size=None, channels=3)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)


def test_npz_layout_key_overrides_the_guess(tmp_path):
    x = np.random.default_rng(0).random((30, 3, 8, 4))  # NCHW images only 4 wide: the guess says NHWC
    np.savez(tmp_path / "guess.npz", x=x, y=LABELS)
    assert load_dataset(tmp_path / "guess.npz", image_size=None, channels=4).x_train.shape[1:] == (4, 3, 8)
    np.savez(tmp_path / "told.npz", x=x, y=LABELS, layout="NCHW")
    assert load_dataset(tmp_path / "told.npz", image_size=None, channels=3).x_train.shape[1:] == (3, 8, 4)


def test_npz_given_splits_and_class_names(tmp_path):
    path = tmp_path / "given.npz"
    y_val, y_test = np.array([0, 1, 2, 2]), np.array([2, 1, 0])
    np.savez(path, x_train=images(LABELS), y_train=LABELS, x_val=images(y_val), y_val=y_val,
             x_test=images(y_test), y_test=y_test, class_names=np.array(["a", "b", "c"]))
    d = load_dataset(path, image_size=8, channels=1)
    assert d.sizes == {"train": 30, "val": 4, "test": 3} and d.class_names == ("a", "b", "c")
    assert torch.equal(d.y_test, torch.tensor([2, 1, 0]))
    assert_paired(d)
    np.savez(path, x_train=images(LABELS), y_train=LABELS, x_test=images(y_test), y_test=y_test)
    assert load_dataset(path, image_size=8).sizes == {"train": 27, "val": 3, "test": 3}


def test_npz_standardised_with_training_statistics(tmp_path):
    y_test = np.array([0, 1, 2])
    np.savez(tmp_path / "s.npz", x_train=images(LABELS), y_train=LABELS, x_val=images(LABELS) + 1000.0,
             y_val=LABELS, x_test=images(y_test), y_test=y_test)
    d = load_dataset(tmp_path / "s.npz", image_size=None, channels=3)
    assert abs(float(d.x_train.mean())) < 1e-4 and float(d.x_val.mean()) > 10  # val not re-centred


def bad_npz(case):
    """Arrays for one kind of bad .npz (None: write a broken file instead)."""
    good = {"x": images(LABELS), "y": LABELS}
    y_small = np.array([0, 1])
    cases = {
        "mismatched_shapes": dict(x_train=images(LABELS, size=6), y_train=LABELS,
                                  x_val=images(LABELS, size=7), y_val=LABELS),
        "ragged": dict(x=np.array([np.zeros((4, 4)), np.zeros((5, 5))] * 15, dtype=object), y=LABELS),
        "negative_label": dict(good, y=np.where(LABELS == 2, -1, LABELS)),
        "label_too_large": dict(good, y=np.where(LABELS == 2, 1000, LABELS)),
        "label_beyond_class_names": dict(good, class_names=np.array(["a", "b"])),
        "fractional_label": dict(good, y=LABELS + 0.5),
        "string_label": dict(good, y=LABELS.astype(str)),
        "nan_pixel": dict(good, x=np.where(np.arange(30)[:, None, None] == 7, np.nan, images(LABELS))),
        "one_class": dict(good, y=np.zeros(30, dtype=int)),
        "too_few": dict(x=images(np.array([0, 0, 1, 1])), y=np.array([0, 0, 1, 1])),
        "split_lacks_class": dict(x_train=images(LABELS), y_train=LABELS, x_val=images(y_small), y_val=y_small),
        "unknown_key": dict(good, x_valid=images(LABELS)),
        "both_kinds": dict(good, x_train=images(LABELS), y_train=LABELS),
        "y_missing": dict(x=images(LABELS)),
        "y_wrong_length": dict(good, y=LABELS[:-1]),
        "one_hot": dict(good, y=np.eye(3)[LABELS]),
        "ambiguous_axes": dict(good, x=np.zeros((30, 8, 8, 8))),
        "bad_layout": dict(good, layout="HWC"),
    }
    return cases.get(case)


@pytest.mark.parametrize("case, message", [
    ("mismatched_shapes", r"images of different shapes .*x_train.*x_val"),
    ("ragged", r"x holds Python objects"),
    ("negative_label", r"y: label -1 at index 20 is negative"),
    ("label_too_large", r"label 1000 means 1001 classes, but there are only 30 images"),
    ("label_beyond_class_names", r"label 2 is out of range for 2 class_names"),
    ("fractional_label", r"y: labels must be integers, got 0\.5"),
    ("string_label", r"y: labels must be integers, got dtype <U"),
    ("nan_pixel", r"x: image 7 has NaN or infinite pixels"),
    ("one_class", r"only one class"),
    ("too_few", r"class 0 has 2 training image\(s\), too few to carve test and val"),
    ("split_lacks_class", r"the val split has no images of class 2"),
    ("unknown_key", r"unknown key\(s\) \['x_valid'\]"),
    ("both_kinds", r"both x/y and per-split keys \['train'\]"),
    ("y_missing", r"has x but no y"),
    ("y_wrong_length", r"y: labels must be 1-D, one class index per image \(30\)"),
    ("one_hot", r"y: labels must be 1-D"),
    ("ambiguous_axes", r"cannot tell the channel axis of shape \(30, 8, 8, 8\)"),
    ("bad_layout", r"layout must be one of"),
    ("not_a_zip", r"not a readable \.npz file"),
    ("single_array", r"holds a single array"),
])
def test_npz_bad_data(tmp_path, case, message):
    path = tmp_path / "bad.npz"
    arrays = bad_npz(case)
    if case == "not_a_zip":
        path.write_bytes(b"PK\x03\x04 truncated")
    elif case == "single_array":
        with open(path, "wb") as f:
            np.save(f, images(LABELS))
    else:
        np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset(path, image_size=6, channels=3)
    assert str(path) in str(info.value)


# --- package.module:function ------------------------------------------------------------------

USER_MODULE = """
import numpy as np
import torch
from nni_gensynth.data import load_digits

def arrays():
    y = np.repeat(np.arange(3), 10)
    return {"x": torch.from_numpy(np.random.default_rng(0).random((30, 5, 5))), "y": y,
            "class_names": np.array(["r", "g", "b"])}

def ready():
    return load_digits(image_size=8)

def poisoned():
    d = load_digits(image_size=8)
    d.x_val[3, 0, 0, 0] = float("nan")
    return d

def wrong():
    return [1, 2, 3]
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "gensynth_user_data.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "gensynth_user_data"
    sys.modules.pop("gensynth_user_data", None)


def test_callable_returning_arrays_or_a_datasplit(user_module):
    d = load_dataset(f"{user_module}:arrays", image_size=10, channels=1)
    assert d.name == f"{user_module}:arrays" and d.class_names == ("r", "g", "b")
    assert d.x_train.shape[1:] == (1, 10, 10) and d.sizes == {"train": 18, "val": 6, "test": 6}
    ready = load_dataset(f"{user_module}:ready", image_size=16, channels=3)
    assert ready.name == "digits" and ready.x_val.shape[1:] == (3, 16, 16) and ready.sizes["test"] == 359


@pytest.mark.parametrize("reference, message", [
    ("{m}:poisoned", r"x_val: image 3 has NaN"),
    ("{m}:wrong", r"returned list; expected a DataSplit or a mapping"),
    ("{m}:nope", r"cannot be imported"),
    ("no_such_module_xyz:fn", r"cannot be imported"),
])
def test_callable_bad(user_module, reference, message):
    with pytest.raises(DatasetError, match=message):
        load_dataset(reference.format(m=user_module), image_size=8)


# --- carving ----------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(3, 12), min_size=2, max_size=6), st.integers(0, 2**32 - 1))
def test_carve_is_a_stratified_partition(class_sizes, seed):
    y = torch.from_numpy(np.random.default_rng(seed).permutation(np.repeat(np.arange(len(class_sizes)), class_sizes)))
    parts = _carve(y, {"test": 0.2, "val": 0.2}, seed, (), "t")
    joined = torch.cat(list(parts.values()))
    assert torch.equal(joined.sort().values, torch.arange(len(y)))  # disjoint and complete
    for index in parts.values():
        assert set(y[index].tolist()) == set(range(len(class_sizes)))  # every class in every split
    again = _carve(y, {"test": 0.2, "val": 0.2}, seed, (), "t")
    assert all(torch.equal(parts[k], again[k]) for k in parts)
