"""Gaussian-process surrogate over mixed categorical/continuous architecture features.

Kernel: k(x, y) = s · [(1 - b) · exp(-Σ_d w_d δ_d(x, y)) + b · mean_d exp(-w_d δ_d(x, y))], with
δ_d = [x_d ≠ y_d] for a categorical column and (x_d - y_d)² for a continuous one in unit
coordinates; a column that is inactive (nested decision not chosen, encoded as NaN) differs by 1
from an active one. The first term (a product over decisions) lets interactions matter; the
optional second one (first-order additive, the same ARD weights, share b) would let "this option
of this decision is good, whatever the rest" carry to networks that differ elsewhere too. b is
ADDITIVE_SHARE, 0: at b = 0.6 NAS-Bench-201 seeds 0-199 did better at 50 trainings and the
held-out seeds 200-399 worse (benchmarks/NB201.md, "An additive kernel term"). Weights w_d,
signal s and noise are fitted by maximising the log marginal likelihood plus a log-normal prior
on each weight (centred so that, in the product term, two networks that differ in every decision
still correlate by e^-2; without it, a few dozen points overfit the weights), with analytic
gradients. Targets are standardised; the posterior mean and standard deviation are returned in
the original units. Small and dependency-light on purpose: it is refitted once per generator
cycle and conditioned on new data at every suggestion.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import minimize

_LOG_W_BOUNDS = (math.log(1e-3), math.log(50.0))
_LOG_NOISE_BOUNDS = (math.log(1e-6), math.log(1.0))
_LOG_SIGNAL_BOUNDS = (math.log(0.05), math.log(20.0))
_PRIOR_LOG_W_STD = 1.0
ADDITIVE_SHARE = 0.0  # b above: the first-order additive term's share of the kernel (off; see above)


def standardise(y: np.ndarray) -> tuple[np.ndarray, float, float]:
    """((y - mean) / std, mean, std) of targets (std 1 when 0), without overflow: computed on
    y / 2^k for a power of two near max |y|. Dividing by a power of two is exact, so these are
    the plain figures whenever those do not overflow, and finite for targets as large as 1e308."""
    y = np.asarray(y, dtype=float)
    if len(y) == 0:
        return y, 0.0, 1.0
    scale = float(np.ldexp(1.0, int(np.frexp(np.max(np.abs(y)))[1]) - 1))
    scaled = y / scale
    mean, std = float(np.mean(scaled)), float(np.std(scaled))
    if std * scale > 0:  # 0 when the targets are equal, or their spread is below the subnormals
        return (scaled - mean) / std, mean * scale, std * scale
    return (scaled - mean) * scale, mean * scale, 1.0


def column_distances(a: np.ndarray, b: np.ndarray, categorical: np.ndarray) -> np.ndarray:
    """δ_d(a_i, b_j) for every column d: array of shape (d, len(a), len(b))."""
    out = np.empty((a.shape[1], a.shape[0], b.shape[0]))
    for d in range(a.shape[1]):
        x, y = a[:, d][:, None], b[:, d][None, :]
        nan_x, nan_y = np.isnan(x), np.isnan(y)
        if categorical[d]:
            dist = (x != y).astype(float)
        else:
            dist = np.square(np.nan_to_num(x) - np.nan_to_num(y))
        dist = np.where(nan_x & nan_y, 0.0, np.where(nan_x | nan_y, 1.0, dist))
        out[d] = dist
    return out


def weighted_distance(a: np.ndarray, b: np.ndarray, categorical: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ_d w_d · δ_d(a_i, b_j), the same as contracting `column_distances` with w, computed
    without the (d, n, m) array: categorical columns through one-hot matrix products (NaN is
    its own category, which gives exactly the inactive-column rule), continuous ones directly.

    The one-hot of a categorical column spans only the options that occur in `a` or `b`
    (`present_codes`), not every option of the decision. The overlap kernel asks only whether
    two rows hold the same option, so this is exact — no hashing collisions, no "unseen" bucket
    that would make two different unseen options look alike — and its width is at most
    len(a) + len(b): a choice of a million options costs what a choice of a few hundred does,
    where a one-hot over all options grows with the square of the option count (1.3 GB at 12k)."""
    return weighted_distances(a, b, categorical, [weights])[0]


def weighted_distances(a: np.ndarray, b: np.ndarray, categorical: np.ndarray,
                       weight_sets: Sequence[np.ndarray]) -> list[np.ndarray]:
    """`weighted_distance` for several weight vectors at once: the one-hots are built once and
    every set's categorical part is one matrix product (the kernel needs two sets per call)."""
    weight_sets = [np.asarray(w, dtype=float) for w in weight_sets]
    n, m = a.shape[0], b.shape[0]
    categorical = np.asarray(categorical, dtype=bool)[: a.shape[1]]
    onehot_a, onehot_b, column_of = [], [], []
    for d in np.flatnonzero(categorical):
        codes_a, codes_b, size = present_codes(a[:, d], b[:, d])
        eye = np.eye(size)
        onehot_a.append(eye[codes_a])
        onehot_b.append(eye[codes_b])
        column_of.append(np.full(size, d))
    # one (sets * n, m) array, updated in place: fresh arrays of this size cost more than the product
    if onehot_a:
        hot_a, hot_b, columns = np.hstack(onehot_a), np.hstack(onehot_b), np.concatenate(column_of)
        out = np.vstack([hot_a * w[columns] for w in weight_sets]) @ hot_b.T
        np.negative(out, out=out)
    else:
        out = np.zeros((len(weight_sets) * n, m))
    blocks = [out[k * n:(k + 1) * n] for k in range(len(weight_sets))]
    for block, w in zip(blocks, weight_sets):
        block += float(np.sum(w[categorical]))
    for d in np.flatnonzero(~categorical):
        dist = column_distances(a[:, [d]], b[:, [d]], np.array([False]))[0]
        for block, w in zip(blocks, weight_sets):
            block += w[d] * dist
    np.maximum(out, 0.0, out=out)
    return blocks


def present_codes(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Codes 0..k-1 for the k distinct values of two categorical columns (NaN, an inactive
    decision, is one value of its own): equal values get equal codes, so one-hot rows over the
    k codes have the same inner products as one-hot rows over every option."""
    both = np.concatenate([a, b])
    _, codes = np.unique(np.where(np.isnan(both), -1.0, both), return_inverse=True)
    codes = codes.reshape(-1)
    return codes[: len(a)], codes[len(a):], int(codes.max(initial=-1)) + 1


class GaussianProcess:
    """GP regression with the mixed kernel above; `fit` once, `condition` cheaply."""

    def __init__(self, categorical: np.ndarray, additive_share: float = ADDITIVE_SHARE) -> None:
        if not 0.0 <= additive_share <= 1.0:
            raise ValueError(f"additive_share must be in [0, 1], got {additive_share!r}")
        self.categorical = np.asarray(categorical, dtype=bool)
        self.additive_share = float(additive_share)
        n_dims = len(self.categorical)
        self.prior_log_w = math.log(2.0 / max(n_dims, 1))
        self.log_w = np.full(n_dims, self.prior_log_w)
        self.log_noise = math.log(1e-2)
        self.log_signal = 0.0
        self._x: Optional[np.ndarray] = None

    # -- hyperparameters ------------------------------------------------------------------
    def hyperparameters(self) -> dict:
        return {"log_w": self.log_w.tolist(), "log_noise": self.log_noise, "log_signal": self.log_signal}

    def set_hyperparameters(self, hp: Any) -> None:
        """Restore `hyperparameters()` output, clipped to the fitting bounds; ValueError (and
        nothing changed) unless it has the right width and finite numbers."""
        try:
            log_w = np.asarray(hp["log_w"], dtype=float)
            log_noise, log_signal = float(hp["log_noise"]), float(hp["log_signal"])
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"surrogate hyperparameters unreadable: {exc!s:.200}") from None
        if log_w.shape != self.log_w.shape:
            raise ValueError("surrogate hyperparameters do not match the feature width")
        if not (np.all(np.isfinite(log_w)) and math.isfinite(log_noise) and math.isfinite(log_signal)):
            raise ValueError("surrogate hyperparameters must be finite")
        self.log_w = np.clip(log_w, *_LOG_W_BOUNDS)
        self.log_noise = min(max(log_noise, _LOG_NOISE_BOUNDS[0]), _LOG_NOISE_BOUNDS[1])
        self.log_signal = min(max(log_signal, _LOG_SIGNAL_BOUNDS[0]), _LOG_SIGNAL_BOUNDS[1])

    def fit(self, x: np.ndarray, y: np.ndarray, optimize: bool = True, max_iter: int = 30,
            max_fit_points: int = 150, rng: Optional[np.random.Generator] = None) -> None:
        """Condition on (x, y); with `optimize`, first fit the hyperparameters by max likelihood
        (on at most `max_fit_points` rows: hyperparameters need far fewer points than the posterior)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if optimize and len(y) >= 3:
            xs, ys = x, y
            if len(y) > max_fit_points:
                keep = (rng or np.random.default_rng(0)).choice(len(y), size=max_fit_points, replace=False)
                xs, ys = x[keep], y[keep]
            dist = column_distances(xs, xs, self.categorical)
            ys = standardise(ys)[0]
            theta0 = np.concatenate([self.log_w, [self.log_noise, self.log_signal]])
            bounds = [_LOG_W_BOUNDS] * len(self.log_w) + [_LOG_NOISE_BOUNDS, _LOG_SIGNAL_BOUNDS]
            try:
                res = minimize(self._neg_lml, theta0, args=(dist, ys), jac=True, method="L-BFGS-B",
                               bounds=bounds, options={"maxiter": max_iter})
                if np.all(np.isfinite(res.x)):
                    self.log_w, self.log_noise, self.log_signal = res.x[:-2], float(res.x[-2]), float(res.x[-1])
            except (np.linalg.LinAlgError, ValueError):
                pass  # keep the previous hyperparameters
        self.condition(x, y)

    def _kernel_parts(self, dist: np.ndarray, log_w: np.ndarray, log_signal: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(k, w_d δ_d, the product term) from the (d, n, m) distances: the fit's path, where the
        gradient needs the last two as well."""
        scaled = np.exp(log_w)[:, None, None] * dist
        product = np.exp(-np.sum(scaled, axis=0))
        additive = np.mean(np.exp(-scaled), axis=0) if len(log_w) else np.ones_like(product)
        b = self.additive_share
        return math.exp(log_signal) * ((1.0 - b) * product + b * additive), scaled, product

    def _kernel_between(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """k between row sets without the (d, n, m) array (the posterior's path, over large pools):
        the product term from Σ_d w_d δ_d; in the additive one, a categorical column's exp(-w δ)
        is 1 - (1 - e^-w) δ, so their sum is a weighted distance too (both from one pass)."""
        w = np.exp(self.log_w)
        share, cat = self.additive_share, self.categorical
        if share == 0.0 or not len(w):
            return math.exp(self.log_signal) * np.exp(-weighted_distance(a, b, cat, w))
        product, additive = weighted_distances(a, b, cat, [w, np.where(cat, -np.expm1(-w), 0.0)])
        np.exp(np.negative(product, out=product), out=product)  # in place: these are pool-sized arrays
        np.subtract(float(np.sum(cat)), additive, out=additive)
        for d in np.flatnonzero(~cat):
            additive += np.exp(-w[d] * column_distances(a[:, [d]], b[:, [d]], cat[[d]])[0])
        product *= 1.0 - share
        product += share / len(w) * additive
        product *= math.exp(self.log_signal)
        return product

    def _neg_lml(self, theta: np.ndarray, dist: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        log_w, log_noise, log_signal = theta[:-2], theta[-2], theta[-1]
        n = len(y)
        kf, scaled, product = self._kernel_parts(dist, log_w, log_signal)
        k = kf + (math.exp(log_noise) + 1e-8) * np.eye(n)
        try:
            c = cho_factor(k, lower=True)
        except np.linalg.LinAlgError:
            return 1e10, np.zeros_like(theta)
        alpha = cho_solve(c, y)
        lml = -0.5 * y @ alpha - np.sum(np.log(np.diag(c[0]))) - 0.5 * n * math.log(2 * math.pi)
        inner = np.outer(alpha, alpha) - cho_solve(c, np.eye(n))
        grad = np.empty_like(theta)
        b, signal = self.additive_share, math.exp(log_signal)
        for d in range(len(log_w)):  # ∂k/∂log w_d = -s w_d δ_d [(1 - b) product + b/D exp(-w_d δ_d)]
            dk = -signal * scaled[d] * ((1.0 - b) * product + b / len(log_w) * np.exp(-scaled[d]))
            grad[d] = 0.5 * np.sum(inner * dk)
        grad[-2] = 0.5 * math.exp(log_noise) * np.trace(inner)
        grad[-1] = 0.5 * np.sum(inner * kf)
        # MAP: log-normal prior on the ARD weights
        z = (log_w - self.prior_log_w) / _PRIOR_LOG_W_STD
        lml -= 0.5 * float(np.sum(z * z))
        grad[:-2] -= z / _PRIOR_LOG_W_STD
        return -lml, -grad

    # -- posterior ------------------------------------------------------------------------
    def condition(self, x: np.ndarray, y: np.ndarray) -> None:
        """Posterior given (x, y) under the current hyperparameters. Nothing changes unless it
        succeeds (LinAlgError when even the largest jitter leaves the kernel singular)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        ys, mean, std = standardise(y)
        k = self._kernel_between(x, x)
        k[np.diag_indices_from(k)] += math.exp(self.log_noise) + 1e-8
        chol = None
        for jitter in (0.0, 1e-6, 1e-4, 1e-2):
            try:
                chol = cho_factor(k + jitter * np.eye(len(k)), lower=True)
                break
            except np.linalg.LinAlgError:
                continue
        if chol is None:
            raise np.linalg.LinAlgError("surrogate kernel is singular even with jitter")
        alpha = cho_solve(chol, ys)
        self._x, self._chol, self._alpha, self._y_mean, self._y_std = x, chol, alpha, mean, std

    def forget(self) -> None:
        """Drop the posterior, keep the hyperparameters: `predict` answers with the prior again."""
        self._x = None

    @property
    def fitted(self) -> bool:
        return self._x is not None and len(self._x) > 0

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation at rows of x, in the targets' units."""
        x = np.asarray(x, dtype=float)
        if not self.fitted:
            return np.zeros(len(x)), np.ones(len(x))
        ks = self._kernel_between(x, self._x)
        mean = ks @ self._alpha
        v = cho_solve(self._chol, ks.T)
        var = np.maximum(math.exp(self.log_signal) - np.sum(ks * v.T, axis=1), 1e-12)
        return mean * self._y_std + self._y_mean, np.sqrt(var) * self._y_std
