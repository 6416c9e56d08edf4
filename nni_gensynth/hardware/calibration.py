"""Calibration inputs for static int8 quantization, drawn from the TRAINING split only.

Static quantization fixes every activation's scale from the ranges it sees on a few hundred
inputs. Those come from the trial's own training images (``from_training``): never from the
validation or test split, whose accuracy the int8 model is judged on. A model measured for its
latency alone needs fewer (its kernels, not its scales, are timed); only such a model may be
calibrated on noise (``from_noise``) when no dataset image fits its input. A ``CalibrationSet``
is frozen and carries the digest of its bytes, which is part of an int8 export's cache key.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

DEFAULT_CALIBRATION_IMAGES = 256   # for an int8 model whose accuracy counts
LATENCY_CALIBRATION_IMAGES = 32    # for one measured before training: only its kernels count
CALIBRATION_SEED = 0


@dataclass(frozen=True)
class CalibrationSet:
    """Float32 inputs (N, C, H, W), fed one at a time to the model being quantized."""

    inputs: np.ndarray = field(repr=False, compare=False)
    source: str = "train"
    digest: str = ""

    def __post_init__(self) -> None:
        inputs = np.ascontiguousarray(self.inputs, dtype=np.float32)
        if inputs.ndim < 2 or len(inputs) == 0:
            raise ValueError(f"calibration inputs must be a non-empty batch (N, ...), got shape {inputs.shape}")
        if not np.isfinite(inputs).all():
            raise ValueError("calibration inputs must be finite numbers")
        inputs.setflags(write=False)
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "digest", _digest(inputs))

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One input with its batch axis of 1: (1, C, H, W)."""
        return (1, *self.inputs.shape[1:])

    def batches(self, size: int = 1) -> list[np.ndarray]:
        """The inputs in batches of ``size`` (the last one may be smaller); exported models take
        batches of 1."""
        return [self.inputs[i:i + size] for i in range(0, len(self.inputs), size)]

    def first(self, count: int) -> "CalibrationSet":
        """The first ``count`` inputs (all when there are fewer), as their own set."""
        return self if count >= len(self) else CalibrationSet(self.inputs[:count], source=f"{self.source}[:{count}]")


def _digest(inputs: np.ndarray) -> str:
    digest = hashlib.sha256(repr((inputs.shape, str(inputs.dtype))).encode("ascii"))
    digest.update(inputs.tobytes())
    return digest.hexdigest()[:16]


def from_training(data: Any, count: int = DEFAULT_CALIBRATION_IMAGES, seed: int = CALIBRATION_SEED) -> CalibrationSet:
    """``count`` images of ``data``'s training split (a DataSplit), a seeded draw without
    replacement (all of them when the split is smaller). Only ``x_train`` is read."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"calibration count must be an integer >= 1, got {count!r}")
    x_train = data.x_train
    images = x_train.numpy() if hasattr(x_train, "numpy") else np.asarray(x_train)
    order = np.random.default_rng(seed).permutation(len(images))[:count]
    return CalibrationSet(images[np.sort(order)], source=f"train[{min(count, len(images))} of {len(images)}]")


def from_noise(sample_shape: Sequence[int], count: int = LATENCY_CALIBRATION_IMAGES,
               seed: int = CALIBRATION_SEED) -> CalibrationSet:
    """``count`` standard-normal inputs of ``sample_shape`` (1, C, H, W): only for an int8 model
    whose latency, not accuracy, is measured and whose input no dataset image fits."""
    shape = tuple(int(d) for d in sample_shape)
    if len(shape) < 2 or shape[0] != 1:
        raise ValueError(f"sample_shape must be (1, ...), got {shape}")
    inputs = np.random.default_rng(seed).standard_normal((count, *shape[1:])).astype(np.float32)
    return CalibrationSet(inputs, source=f"noise[{count}]")
