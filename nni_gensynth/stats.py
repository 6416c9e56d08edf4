"""Accuracy with its uncertainty: a count of correct answers out of n is a binomial estimate.

A trial's accuracy on a few hundred images is uncertain by a few points; reporting the
interval next to the point estimate keeps comparisons between candidates honest. The
interval is Wilson's score interval, which stays inside [0, 1] and behaves at 0 and n correct,
where the normal-approximation ("Wald") interval collapses to a point.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

DEFAULT_CONFIDENCE = 0.95


def _check_counts(correct: int, n: int) -> None:
    """Counts must be ints (not bools) with 0 <= correct <= n and n >= 1."""
    for name, value in (("correct", correct), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {value!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0 <= correct <= n:
        raise ValueError(f"correct must be in [0, n={n}], got {correct}")


def _z(confidence: float) -> float:
    """Two-sided standard-normal quantile for `confidence` (1.96 for 0.95)."""
    if not (isinstance(confidence, (int, float)) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def accuracy_interval(correct: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval (low, high) for a proportion of `correct` out of `n`.

    E. B. Wilson, "Probable inference, the law of succession, and statistical inference",
    Journal of the American Statistical Association 22(158):209-212, 1927:
        centre = (p + z²/2n) / (1 + z²/n),  half = z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n),
    with p = correct/n and z the two-sided normal quantile. The ends are exactly 0 and 1
    at 0 and n correct, and the interval always contains p (guarded against rounding).
    """
    _check_counts(correct, n)
    z = _z(confidence)
    p = correct / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n)) / denominator
    low = 0.0 if correct == 0 else min(p, max(0.0, centre - half))
    high = 1.0 if correct == n else max(p, min(1.0, centre + half))
    return low, high


@dataclass(frozen=True)
class Accuracy:
    """`correct` out of `n`: the point estimate, its Wilson interval and the sample size as one value."""

    correct: int
    n: int
    confidence: float = DEFAULT_CONFIDENCE

    def __post_init__(self) -> None:
        _check_counts(self.correct, self.n)
        _z(self.confidence)

    @property
    def value(self) -> float:
        """Top-1 accuracy as a fraction in [0, 1]."""
        return self.correct / self.n

    @property
    def interval(self) -> tuple[float, float]:
        """Wilson score interval at `confidence` (see `accuracy_interval`)."""
        return accuracy_interval(self.correct, self.n, self.confidence)

    def as_metrics(self, prefix: str = "accuracy") -> dict[str, float | int]:
        """Flat metrics for a report: {prefix, prefix_low, prefix_high, prefix_n} (fractions 0-1)."""
        low, high = self.interval
        return {prefix: self.value, f"{prefix}_low": low, f"{prefix}_high": high, f"{prefix}_n": self.n}

    def __str__(self) -> str:
        low, high = self.interval
        return f"{self.value:.4f} [{low:.4f}, {high:.4f}] ({self.correct}/{self.n}, {self.confidence:.0%})"
