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


@pytest.mark.parametrize("share", [0.0, 0.6, 1.0])
@pytest.mark.parametrize("n_options", [3, 12_000])
def test_the_pool_path_kernel_is_the_fit_path_kernel(share, n_options):
    """`_kernel_between` (no (d, n, m) array, for large pools) and `_kernel_parts` (from the distances, for
    the fit) are one kernel, with inactive decisions, continuous columns and any additive share."""
    rng = np.random.default_rng(3)
    a, b = rows(rng, 30, n_options), rows(rng, 20, n_options)
    b[:6, 0] = a[:6, 0]
    gp = GaussianProcess(np.array([True, True, False]), additive_share=share)
    gp.log_w, gp.log_signal = np.array([0.4, -1.2, 0.9]), 0.3
    from_distances = gp._kernel_parts(column_distances(a, b, gp.categorical), gp.log_w, gp.log_signal)[0]
    assert np.allclose(gp._kernel_between(a, b), from_distances, rtol=0, atol=1e-12)


@pytest.mark.parametrize("share", [0.0, 0.6, 1.0])
def test_the_likelihood_gradient_matches_finite_differences(share):
    from scipy.optimize import check_grad
    rng = np.random.default_rng(4)
    x, y = rows(rng, 25, 4), rng.normal(size=25)
    gp = GaussianProcess(np.array([True, True, False]), additive_share=share)
    dist = column_distances(x, x, gp.categorical)
    theta = np.array([-0.5, 0.3, -1.0, math.log(1e-2), 0.2])
    value = lambda t: gp._neg_lml(t, dist, y)[0]  # noqa: E731
    gradient = lambda t: gp._neg_lml(t, dist, y)[1]  # noqa: E731
    assert check_grad(value, gradient, theta) < 1e-4 * max(1.0, float(np.linalg.norm(gradient(theta))))


@pytest.mark.parametrize("seed", range(5))
def test_the_additive_term_carries_a_main_effect_to_networks_far_from_the_data(seed):
    """'Option 0 of decision 0 is good whatever the rest', beside an interaction of decisions 1 and 2
    that keeps their weights high: with the additive term a network that shares only that option
    with the data is predicted better than one that does not; the product kernel, which
    generalises only to near neighbours, carries less of the true gap (1.0)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=(60, 5)).astype(float)  # decisions 1-4 take options 0-2 in the data
    interaction = rng.normal(size=(3, 3))[x[:, 1].astype(int), x[:, 2].astype(int)]
    y = (x[:, 0] == 0).astype(float) + interaction + 0.05 * rng.normal(size=60)
    far = np.array([[0.0, 5, 5, 5, 5], [1.0, 5, 5, 5, 5]])  # options 5 never seen in decisions 1-4
    gaps = {}
    for share in (0.0, 0.6):
        gp = GaussianProcess(np.ones(5, dtype=bool), additive_share=share)
        gp.fit(x, y)
        mean = gp.predict(far)[0]
        gaps[share] = mean[0] - mean[1]
    assert gaps[0.0] + 0.05 < gaps[0.6] < 1.1, gaps


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan")])
def test_an_additive_share_outside_zero_to_one_is_refused(share):
    with pytest.raises(ValueError, match="additive_share"):
        GaussianProcess(np.array([True]), additive_share=share)
