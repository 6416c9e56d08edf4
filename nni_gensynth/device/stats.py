"""Summary statistics of latency samples: the one place they are computed (device and host).

Pure Python so the device needs nothing beyond the standard library for them.
"""
from __future__ import annotations

import math
from typing import Dict, Sequence


def quantile(samples: Sequence[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1) with linear interpolation between order statistics
    (numpy's default "linear" method)."""
    if not samples:
        raise ValueError("quantile of an empty sample list")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile q must be within [0, 1], got {q}")
    ordered = sorted(samples)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(samples: Sequence[float]) -> float:
    """The median (0.5-quantile)."""
    return quantile(samples, 0.5)


def iqr(samples: Sequence[float]) -> float:
    """Inter-quartile range: p75 - p25."""
    return quantile(samples, 0.75) - quantile(samples, 0.25)


def cv(samples: Sequence[float]) -> float:
    """Coefficient of variation: sample standard deviation / mean (0 for fewer than 2 samples)."""
    if not samples:
        raise ValueError("cv of an empty sample list")
    if len(samples) < 2:
        return 0.0
    mean = sum(samples) / len(samples)
    if mean == 0:
        return 0.0
    variance = sum((x - mean) ** 2 for x in samples) / (len(samples) - 1)
    return math.sqrt(variance) / mean


def robust_cv(samples: Sequence[float]) -> float:
    """Outlier-resistant CV: IQR / 1.349 / median (for normal data IQR = 1.349 sigma), so one
    preempted inference does not make a stable measurement look noisy."""
    middle = median(samples)
    return iqr(samples) / 1.349 / middle if middle > 0 else 0.0


def median_rse(samples: Sequence[float], blocks: int = 5) -> float:
    """Relative standard error of the median, from the medians of ``blocks`` consecutive runs of
    samples: stdev(block medians) / mean / sqrt(blocks). Load that comes and goes during a
    measurement shows up as block medians that disagree; it is what makes two measurements of
    one model differ, so this estimates their CV (0 with fewer than two samples per block)."""
    if blocks < 2:
        raise ValueError(f"median_rse needs at least 2 blocks, got {blocks}")
    size = len(samples) // blocks
    if size < 2:
        return 0.0
    block_medians = [median(samples[i * size:(i + 1) * size]) for i in range(blocks)]
    return cv(block_medians) / math.sqrt(blocks)


# Student's t at 97.5% with 4 degrees of freedom: the five block medians of `median_rse`.
T_975_BLOCKS = 2.776


def median_upper_bound(samples: Sequence[float]) -> float:
    """Upper end of the 95% interval of the median, median x (1 + t x rse), from the five block
    medians of `median_rse` (the bound is only as good as that estimate)."""
    return median(samples) * (1.0 + T_975_BLOCKS * median_rse(samples, blocks=5))


def summarize(samples: Sequence[float]) -> Dict[str, float]:
    """median, p90, iqr, cv, robust_cv, mean, min, max and count of a sample list."""
    if not samples:
        raise ValueError("no samples to summarize")
    return {
        "median": median(samples),
        "p90": quantile(samples, 0.9),
        "iqr": iqr(samples),
        "cv": cv(samples),
        "robust_cv": robust_cv(samples),
        "mean": sum(samples) / len(samples),
        "min": min(samples),
        "max": max(samples),
        "count": float(len(samples)),
    }
