"""Shared pytest fixtures."""
from __future__ import annotations

import pytest

# Every NNI search-space type, plus a nested choice whose options carry their own sub-spaces.
ALL_TYPES_SPACE = {
    "optimizer": {"_type": "choice", "_value": [
        {"_name": "sgd", "lr": {"_type": "loguniform", "_value": [1e-4, 1e-1]},
         "momentum": {"_type": "uniform", "_value": [0.5, 0.99]}},
        {"_name": "adam", "lr": {"_type": "qloguniform", "_value": [1e-4, 1e-1, 1e-4]},
         "betas": {"_type": "choice", "_value": [
             {"_name": "default"},
             {"_name": "custom", "beta1": {"_type": "quniform", "_value": [0.8, 0.95, 0.05]}}]}},
    ]},
    "width": {"_type": "choice", "_value": [16, 32, 64]},
    "act": {"_type": "choice", "_value": ["relu", "gelu", None, True]},
    "depth": {"_type": "randint", "_value": [1, 5]},
    "dropout": {"_type": "uniform", "_value": [0.0, 0.5]},
    "batch": {"_type": "quniform", "_value": [16, 128, 16]},
    "wd": {"_type": "loguniform", "_value": [1e-6, 1e-2]},
    "warmup": {"_type": "qloguniform", "_value": [1, 100, 1]},
    "bias": {"_type": "normal", "_value": [0.0, 1.0]},
    "shift": {"_type": "qnormal", "_value": [10.0, 3.0, 0.5]},
    "scale": {"_type": "lognormal", "_value": [0.0, 0.5]},
    "gain": {"_type": "qlognormal", "_value": [1.0, 0.3, 0.1]},
}


@pytest.fixture
def all_types_space() -> dict:
    return ALL_TYPES_SPACE
