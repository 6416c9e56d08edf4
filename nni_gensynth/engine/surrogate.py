"""Gaussian-process surrogate over mixed categorical/continuous architecture features.

Kernel: k(x, y) = s · exp(-Σ_d w_d · δ_d(x, y)), with δ_d = [x_d ≠ y_d] for a categorical
column and (x_d - y_d)² for a continuous one in unit coordinates; a column that is inactive
(nested decision not chosen, encoded as NaN) differs by 1 from an active one. Weights w_d
(ARD), signal s and noise are fitted by maximising the log marginal likelihood plus a
log-normal prior on each weight (centred so that two networks that differ in every decision
still correlate by e^-2; without it, a few dozen points overfit the weights), with analytic
gradients. Targets are standardised; the posterior mean and standard deviation are returned
in the original units. Small and dependency-light on purpose: it is refitted once per
generator cycle and conditioned on new data at every suggestion.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import minimize

_LOG_W_BOUNDS = (math.log(1e-3), math.log(50.0))
_LOG_NOISE_BOUNDS = (math.log(1e-6), math.log(1.0))
_LOG_SIGNAL_BOUNDS = (math.log(0.05), math.log(20.0))
_PRIOR_LOG_W_STD = 1.0


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
    its own category, which gives exactly the inactive-column rule), continuous ones directly."""
    out = np.zeros((a.shape[0], b.shape[0]))
    onehot_a, onehot_b = [], []
    for d in range(a.shape[1]):
        if categorical[d]:
            codes_a = np.where(np.isnan(a[:, d]), -1, a[:, d]).astype(int) + 1
            codes_b = np.where(np.isnan(b[:, d]), -1, b[:, d]).astype(int) + 1
            size = int(max(codes_a.max(initial=0), codes_b.max(initial=0))) + 1
            eye = np.eye(size)
            onehot_a.append(eye[codes_a] * weights[d])
            onehot_b.append(eye[codes_b])
            out += weights[d]
        else:
            out += weights[d] * column_distances(a[:, [d]], b[:, [d]], np.array([False]))[0]
    if onehot_a:
        out -= np.hstack(onehot_a) @ np.hstack(onehot_b).T
    return np.maximum(out, 0.0)


class GaussianProcess:
    """GP regression with the mixed kernel above; `fit` once, `condition` cheaply."""

    def __init__(self, categorical: np.ndarray) -> None:
        self.categorical = np.asarray(categorical, dtype=bool)
        n_dims = len(self.categorical)
        self.prior_log_w = math.log(2.0 / max(n_dims, 1))
        self.log_w = np.full(n_dims, self.prior_log_w)
        self.log_noise = math.log(1e-2)
        self.log_signal = 0.0
        self._x: Optional[np.ndarray] = None

    # -- hyperparameters ------------------------------------------------------------------
    def hyperparameters(self) -> dict:
        return {"log_w": self.log_w.tolist(), "log_noise": self.log_noise, "log_signal": self.log_signal}

    def set_hyperparameters(self, hp: dict) -> None:
        log_w = np.asarray(hp["log_w"], dtype=float)
        if log_w.shape != self.log_w.shape:
            raise ValueError("surrogate hyperparameters do not match the feature width")
        self.log_w, self.log_noise, self.log_signal = log_w, float(hp["log_noise"]), float(hp["log_signal"])

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
            ys = self._standardise(ys)
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

    def _standardise(self, y: np.ndarray) -> np.ndarray:
        self._y_mean = float(np.mean(y))
        self._y_std = float(np.std(y)) or 1.0
        return (y - self._y_mean) / self._y_std

    def _kernel(self, dist: np.ndarray, log_w: np.ndarray, log_signal: float) -> np.ndarray:
        return math.exp(log_signal) * np.exp(-np.tensordot(np.exp(log_w), dist, axes=1))

    def _kernel_between(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        w = np.exp(self.log_w)
        return math.exp(self.log_signal) * np.exp(-weighted_distance(a, b, self.categorical, w))

    def _neg_lml(self, theta: np.ndarray, dist: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        log_w, log_noise, log_signal = theta[:-2], theta[-2], theta[-1]
        n = len(y)
        kf = self._kernel(dist, log_w, log_signal)
        k = kf + (math.exp(log_noise) + 1e-8) * np.eye(n)
        try:
            c = cho_factor(k, lower=True)
        except np.linalg.LinAlgError:
            return 1e10, np.zeros_like(theta)
        alpha = cho_solve(c, y)
        lml = -0.5 * y @ alpha - np.sum(np.log(np.diag(c[0]))) - 0.5 * n * math.log(2 * math.pi)
        inner = np.outer(alpha, alpha) - cho_solve(c, np.eye(n))
        grad = np.empty_like(theta)
        w = np.exp(log_w)
        for d in range(len(log_w)):
            grad[d] = 0.5 * np.sum(inner * (-w[d] * dist[d] * kf))
        grad[-2] = 0.5 * math.exp(log_noise) * np.trace(inner)
        grad[-1] = 0.5 * np.sum(inner * kf)
        # MAP: log-normal prior on the ARD weights
        z = (log_w - self.prior_log_w) / _PRIOR_LOG_W_STD
        lml -= 0.5 * float(np.sum(z * z))
        grad[:-2] -= z / _PRIOR_LOG_W_STD
        return -lml, -grad

    # -- posterior ------------------------------------------------------------------------
    def condition(self, x: np.ndarray, y: np.ndarray) -> None:
        """Posterior given (x, y) under the current hyperparameters."""
        self._x = np.asarray(x, dtype=float)
        ys = self._standardise(np.asarray(y, dtype=float))
        k = self._kernel_between(self._x, self._x)
        k[np.diag_indices_from(k)] += math.exp(self.log_noise) + 1e-8
        for jitter in (0.0, 1e-6, 1e-4, 1e-2):
            try:
                self._chol = cho_factor(k + jitter * np.eye(len(k)), lower=True)
                break
            except np.linalg.LinAlgError:
                continue
        self._alpha = cho_solve(self._chol, ys)

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
