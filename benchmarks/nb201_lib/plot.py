"""Convergence plot: median best feasible accuracy vs trainings, IQR bands, the optimum as a line."""
from __future__ import annotations

from pathlib import Path


def convergence_plot(results: dict, ref: dict, path: str | Path, title: str) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    lowest = ref["optimum"]
    for summary in results.values():
        curve = summary["curve"]
        x = range(1, len(curve["median"]) + 1)
        (line,) = ax.plot(x, curve["median"], label=summary["label"], linewidth=1.6)
        ax.fill_between(x, curve["q25"], curve["q75"], color=line.get_color(), alpha=0.12, linewidth=0)
        start = min(len(curve["q25"]) - 1, 19)  # y range from where curves have settled a little
        lowest = min(lowest, curve["q25"][start])
    ax.axhline(ref["optimum"], color="black", linestyle="--", linewidth=1,
               label=f"optimum under {ref['latency_limit_ms']:g} ms ({ref['optimum']:.2f})")
    ax.set_ylim(max(lowest - 0.5, 80.0), ref["optimum"] + 0.3)
    ax.set_xlabel("trainings")
    ax.set_ylabel("best feasible CIFAR-10 validation accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
