"""Pareto fronts and hypervolume, for two or three objectives, every one maximised.

Callers orient their objectives first (a metric to minimise is negated) and give a reference
point that every point worth counting must beat in every objective. `hv_improvement` is exact
and vectorised over candidates: in two dimensions the region the front dominates is a staircase,
so what a candidate adds is a sum over the stairs' steps; in three it is an integral over the
third objective of two-dimensional improvements, one slice per distinct level of the front
(the slicing idea of While et al., "A faster algorithm for calculating hypervolume", IEEE TEC
2006). `hypervolume` adds the points one at a time. Fronts here are tens of points, candidates
tens of thousands (candidates times posterior samples), which is what this layout is fast for.
"""
from __future__ import annotations

import numpy as np

MAX_OBJECTIVES = 3


def _as_points(points: object, dims: int | None = None) -> np.ndarray:
    array = np.asarray(points, dtype=float)
    if array.ndim == 1 and array.size == 0:
        array = array.reshape(0, dims or 0)
    if array.ndim != 2:
        raise ValueError(f"points must be a 2-d array (points x objectives), got shape {array.shape}")
    if dims is not None and array.shape[1] != dims:
        raise ValueError(f"points have {array.shape[1]} objectives, the reference point {dims}")
    if not np.all(np.isfinite(array)):
        raise ValueError("points must be finite")
    return array


def _check_reference(reference: object) -> np.ndarray:
    ref = np.asarray(reference, dtype=float).reshape(-1)
    if not 1 <= len(ref) <= MAX_OBJECTIVES:
        raise ValueError(f"hypervolume takes 1 to {MAX_OBJECTIVES} objectives, got {len(ref)}")
    if not np.all(np.isfinite(ref)):
        raise ValueError(f"reference point must be finite, got {ref.tolist()}")
    return ref


def non_dominated(points: object) -> np.ndarray:
    """Mask of the points no other point dominates (every objective maximised; of equal points
    the first is kept)."""
    p = _as_points(points)
    n = len(p)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        if not keep[i]:
            continue
        at_least = np.all(p >= p[i], axis=1)
        better = np.any(p > p[i], axis=1)
        if np.any(at_least & better):
            keep[i] = False
            continue
        duplicate = np.all(p == p[i], axis=1)
        duplicate[: i + 1] = False
        keep[duplicate] = False
    return keep


def _front_above(front: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The non-dominated points of `front` that beat the reference point in every objective."""
    front = front[np.all(front > ref, axis=1)]
    return front[non_dominated(front)] if len(front) else front


def _improvement_1d(front: np.ndarray, candidates: np.ndarray, ref: np.ndarray) -> np.ndarray:
    best = front[:, 0].max() if len(front) else ref[0]
    return np.maximum(candidates[:, 0] - max(best, ref[0]), 0.0)


def _improvement_2d(front: np.ndarray, candidates: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Area each candidate adds to the staircase of a non-dominated 2-d front above `ref`."""
    order = np.argsort(-front[:, 0])  # x falling, so y rising along a non-dominated front
    xs, ys = front[order, 0], front[order, 1]
    # step k: x in (lo[k], hi[k]] is covered up to height[k]; beyond the largest x, nothing is
    hi = np.concatenate(([np.inf], xs))
    lo = np.concatenate((xs, [ref[0]]))
    height = np.concatenate(([ref[1]], ys))
    width = np.clip(np.minimum(candidates[:, :1], hi[None, :]) - lo[None, :], 0.0, None)
    rise = np.clip(candidates[:, 1:2] - height[None, :], 0.0, None)
    return (width * rise).sum(axis=1)


def _improvement_3d(front: np.ndarray, candidates: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Volume each candidate adds: over the third objective, slab by slab, the 2-d improvement
    against the points of the front at or above the slab."""
    levels = np.unique(front[:, 2]) if len(front) else np.zeros(0)
    bounds = np.concatenate(([ref[2]], levels))
    total = np.zeros(len(candidates))
    for j in range(len(bounds)):
        low = bounds[j]
        high = bounds[j + 1] if j + 1 < len(bounds) else np.inf
        depth = np.clip(np.minimum(candidates[:, 2], high) - low, 0.0, None)
        if not np.any(depth > 0):
            continue
        above = front[front[:, 2] >= high][:, :2] if np.isfinite(high) else front[:0, :2]
        above = above[non_dominated(above)] if len(above) else above
        total += depth * _improvement_2d(above, candidates[:, :2], ref[:2])
    return total


def hv_improvement(front: object, candidates: object, reference: object) -> np.ndarray:
    """Hypervolume each candidate (a row) would add to `front`, against `reference`; 0 for a
    candidate the front dominates or that does not beat the reference in every objective."""
    ref = _check_reference(reference)
    dims = len(ref)
    c = _as_points(candidates, dims)
    f = _front_above(_as_points(front, dims), ref)
    if len(c) == 0:
        return np.zeros(0)
    improve = {1: _improvement_1d, 2: _improvement_2d, 3: _improvement_3d}[dims]
    out = improve(f, c, ref)
    return np.where(np.all(c > ref, axis=1), out, 0.0)


def hypervolume(points: object, reference: object) -> float:
    """Volume dominated by `points` (any set; dominated ones add nothing) above `reference`."""
    ref = _check_reference(reference)
    p = _front_above(_as_points(points, len(ref)), ref)
    total = 0.0
    for i in range(len(p)):
        total += float(hv_improvement(p[:i], p[i:i + 1], ref)[0])
    return total


def contributions(front: object, reference: object) -> np.ndarray:
    """Each point's exclusive hypervolume: what the front loses without it (0 for a dominated
    point or one that does not beat the reference)."""
    ref = _check_reference(reference)
    p = _as_points(front, len(ref))
    out = np.zeros(len(p))
    for i in range(len(p)):
        others = np.delete(p, i, axis=0)
        out[i] = hv_improvement(others, p[i:i + 1], ref)[0]
    return out
