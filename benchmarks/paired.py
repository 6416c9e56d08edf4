"""The paired test every seed-paired comparison uses (probing vs its ablation, one tuner vs another
on the same NAS-Bench-201 seeds)."""
from __future__ import annotations

import statistics
from typing import Any, Sequence


def paired_test(differences: Sequence[float]) -> dict[str, Any]:
    """Wilcoxon signed-rank (two-sided), median difference and rank-biserial correlation."""
    from scipy.stats import rankdata, wilcoxon

    nonzero = [d for d in differences if d != 0.0]
    result: dict[str, Any] = {"n": len(differences), "nonzero": len(nonzero),
                              "median_difference": statistics.median(differences) if differences else None,
                              "wins": sum(d > 0 for d in differences), "losses": sum(d < 0 for d in differences)}
    if not nonzero:
        return dict(result, p_value=1.0, rank_biserial=0.0)
    ranks = rankdata([abs(d) for d in nonzero])
    positive = sum(r for r, d in zip(ranks, nonzero) if d > 0)
    negative = sum(r for r, d in zip(ranks, nonzero) if d < 0)
    result["rank_biserial"] = round((positive - negative) / (positive + negative), 3)
    result["p_value"] = float(wilcoxon(nonzero, zero_method="wilcox", alternative="two-sided").pvalue)
    return result
