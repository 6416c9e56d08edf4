"""The Gaussian-process surrogate: exact distances at any option count, overflow-free scaling,
validated hyperparameters."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nni_gensynth.engine.surrogate import GaussianProcess, column_distances, standardise, weighted_distance


def rows(rng: np.random.Generator, n: int, n_options: int) -> np.ndarray:
    """Rows of two categorical columns (one of `n_options` options, some inactive) and a continuous one."""
    x = np.column_stack([rng.integers(0, n_options, n), rng.integers(0, 3, n), rng.random(n)]).astype(float)
    x[rng.random(n) < 0.2, 1] = np.nan
    return x


@pytest.mark.parametrize("n_options", [4, 12_000, 10**7])
def test_distance_is_exact_whatever_the_option_count(n_options):
    """A one-hot over every option needed (option count)² memory: 1.3 GB at 12k, an impossible
    array at ten million. Over the options present it is the same distance."""
    rng = np.random.default_rng(0)
    a, b = rows(rng, 40, n_options), rows(rng, 25, n_options)
    b[:5, 0] = a[:5, 0]  # some shared options, so the categorical term is not trivially 1
    categorical = np.array([True, True, False])
    weights = np.array([0.7, 0.2, 1.3])
    expected = np.tensordot(weights, column_distances(a, b, categorical), axes=1)
    assert np.allclose(weighted_distance(a, b, categorical, weights), expected, rtol=0, atol=1e-12)


def test_standardise_is_the_plain_formula_and_never_overflows():
    y = np.random.default_rng(1).normal(3.0, 2.0, 50)
    z, mean, std = standardise(y)
    assert mean == float(np.mean(y)) and std == float(np.std(y))
    assert np.array_equal(z, (y - np.mean(y)) / np.std(y))  # bit for bit: seeded searches do not move
    for hostile in ([1.7e308, -1.7e308, -1.7e308], [1e308, 1e308], [5e-324, 0.0], [-1e308, 1e-300, 3.0]):
        z, mean, std = standardise(np.array(hostile))
        assert np.all(np.isfinite(z)) and math.isfinite(mean) and math.isfinite(std) and std > 0
    z, mean, std = standardise(np.array([0.5, 0.5, 0.5]))
    assert (mean, std) == (0.5, 1.0) and not np.any(z)


def test_a_surrogate_of_targets_near_the_float_limit_stays_finite():
    x = np.array([[0.0, 0.1], [1.0, 0.5], [2.0, 0.9], [1.0, 0.2]])
    y = np.array([1.7e308, -1.7e308, -1.7e308, 1e308])
    gp = GaussianProcess(np.array([True, False]))
    gp.fit(x, y)
    mean, std = gp.predict(x)
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std))


def test_hyperparameters_are_validated_and_clipped():
    gp = GaussianProcess(np.array([True, False]))
    before = gp.hyperparameters()
    for bad in ({"log_w": [0.0], "log_noise": 0.0, "log_signal": 0.0},
                {"log_w": [0.0, float("nan")], "log_noise": 0.0, "log_signal": 0.0},
                {"log_w": [0.0, 0.0], "log_noise": "x", "log_signal": 0.0},
                {"log_w": [[1], 2], "log_noise": 0.0, "log_signal": 0.0},
                {"log_w": [0.0, 0.0], "log_noise": 10**400, "log_signal": 0.0},
                {"log_w": [0.0, 0.0]}, None, [1, 2], "x"):
        with pytest.raises(ValueError):
            gp.set_hyperparameters(bad)
        assert gp.hyperparameters() == before  # nothing half set
    gp.set_hyperparameters({"log_w": [100.0, -100.0], "log_noise": 50.0, "log_signal": -50.0})
    hp = gp.hyperparameters()
    assert hp["log_w"] == [math.log(50.0), math.log(1e-3)]
    assert hp["log_noise"] == math.log(1.0) and hp["log_signal"] == math.log(0.05)


def test_a_failed_condition_leaves_the_posterior_as_it_was(monkeypatch):
    gp = GaussianProcess(np.array([False]))
    gp.condition(np.array([[0.1], [0.9]]), np.array([1.0, 2.0]))
    before = gp.predict(np.array([[0.5]]))
    monkeypatch.setattr("nni_gensynth.engine.surrogate.cho_factor",
                        lambda *a, **k: (_ for _ in ()).throw(np.linalg.LinAlgError("singular")))
    with pytest.raises(np.linalg.LinAlgError):
        gp.condition(np.array([[0.1], [0.2], [0.3]]), np.array([5.0, 6.0, 7.0]))
    monkeypatch.undo()
    assert len(gp._x) == 2 and np.array_equal(gp.predict(np.array([[0.5]]))[0], before[0])
