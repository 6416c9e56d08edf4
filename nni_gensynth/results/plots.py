"""The report's figures, built as matplotlib Figures (Agg canvas, no pyplot state) so tests can
inspect their artists before they are saved.

pareto.png: accuracy (%) against measured latency (ms); feasible and infeasible trials marked
differently, the latency requirement drawn, the Pareto front joined, the best feasible labelled.
cycles.png: per generator cycle, best U, the feasible fraction and the generator's entropy.
front.png (multi-objective mode): the feasible front after each cycle, with its hypervolume.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from ..engine.hypervolume import non_dominated
from .analysis import best_feasible, has_result, is_feasible, pareto_front
from .model import ExperimentRecord

# x-axis candidates for the trade-off plot: measured latency first; MACs when nothing was measured.
X_AXES = (("latency_ms", "measured latency (ms)", 1.0), ("macs", "MACs (millions)", 1e-6))
FEASIBLE_COLOR, INFEASIBLE_COLOR, FRONT_COLOR, REQUIREMENT_COLOR = "#1b7837", "#b2182b", "#2166ac", "#762a83"
PROTOTYPE_COLOR = "#e08214"


def _plain_text(build: Callable[..., Any]) -> Callable[..., Any]:
    """Build (and draw) with mathtext off: experiment ids, metric and objective names are the
    user's text, and a '$' in them must be shown, not parsed as TeX (which can fail)."""
    @functools.wraps(build)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with matplotlib.rc_context({"text.parse_math": False}):
            return build(*args, **kwargs)
    return wrapper


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _percent(accuracy: float) -> float:
    return accuracy * 100.0 if accuracy <= 1.0 else accuracy


@_plain_text
def pareto_figure(record: ExperimentRecord) -> Figure:
    """Accuracy against measured latency (or MACs when no latency was measured)."""
    figure = _new_figure(7.5, 5.5)
    ax = figure.add_subplot()
    finished = [t for t in record.trials if has_result(t) and t.metric("accuracy") is not None]
    x_key, x_label, scale = next(((k, label, s) for k, label, s in X_AXES
                                  if any(t.metric(k) is not None for t in finished)), X_AXES[0])
    points = [t for t in finished if t.metric(x_key) is not None]
    feasible = [t for t in points if is_feasible(record, t)]
    infeasible = [t for t in points if not is_feasible(record, t)]
    ax.scatter([t.metric(x_key) * scale for t in feasible], [_percent(t.metric("accuracy")) for t in feasible],
               marker="o", s=42, color=FEASIBLE_COLOR, edgecolor="black", linewidth=0.5, zorder=3,
               label=f"feasible ({len(feasible)})")
    ax.scatter([t.metric(x_key) * scale for t in infeasible], [_percent(t.metric("accuracy")) for t in infeasible],
               marker="x", s=42, color=INFEASIBLE_COLOR, zorder=3, label=f"infeasible ({len(infeasible)})")
    untrained = [t for t in record.trials if has_result(t) and t.metric("accuracy") is None
                 and t.metric(x_key) is not None]
    if untrained:  # measured but never trained (e.g. --skip-infeasible): ticks along the bottom
        ax.scatter([t.metric(x_key) * scale for t in untrained], [0.03] * len(untrained), marker="|", s=150,
                   color=INFEASIBLE_COLOR, transform=blended_transform_factory(ax.transData, ax.transAxes),
                   zorder=3, label=f"measured, not trained ({len(untrained)})")
    front = pareto_front(feasible, x=x_key)
    if front:
        ax.plot([t.metric(x_key) * scale for t in front], [_percent(t.metric("accuracy")) for t in front],
                drawstyle="steps-post", color=FRONT_COLOR, linewidth=1.5, zorder=2,
                label=f"Pareto front of feasible ({len(front)})")
    bound = record.requirements.bounds
    for b in bound:
        if b.metric == x_key:
            for side, value in (("≤", b.max), ("≥", b.min)):
                if value is not None:
                    ax.axvline(value * scale, color=REQUIREMENT_COLOR, linestyle="--", linewidth=1.5,
                               label=f"requirement: {x_key} {side} {value:g}")
        elif b.metric == "accuracy":
            for side, value in (("≤", b.max), ("≥", b.min)):
                if value is not None:
                    ax.axhline(_percent(value), color=REQUIREMENT_COLOR, linestyle=":", linewidth=1.5,
                               label=f"requirement: accuracy {side} {value:g}")
    prototype = record.prototype_result or {}
    if isinstance(prototype.get(x_key), (int, float)) and isinstance(prototype.get("accuracy"), (int, float)):
        ax.scatter([prototype[x_key] * scale], [_percent(prototype["accuracy"])], marker="*", s=160,
                   color=PROTOTYPE_COLOR, edgecolor="black", linewidth=0.5, zorder=4, label="prototype")
    best = best_feasible(record)
    if best is not None and best.metric(x_key) is not None and best.metric("accuracy") is not None:
        ax.annotate(f"best feasible: {best.trial_id}", (best.metric(x_key) * scale, _percent(best.metric("accuracy"))),
                    xytext=(10, -18), textcoords="offset points", fontsize=8,
                    arrowprops={"arrowstyle": "-", "color": "0.4"})
    if not points:
        ax.text(0.5, 0.5, f"no trial has reported accuracy and {x_key} yet", transform=ax.transAxes,
                ha="center", va="center", color="0.35")
    others = [f"{b.metric}" for b in bound if b.metric not in (x_key, "accuracy")]
    xs = [t.metric(x_key) * scale for t in points + untrained]
    xs += [v * scale for b in bound if b.metric == x_key for v in (b.min, b.max) if v is not None]
    if xs:  # the blended-transform ticks do not widen the axes by themselves
        pad = 0.05 * ((max(xs) - min(xs)) or abs(max(xs)) or 1.0)
        ax.set_xlim(min(xs) - pad, max(xs) + pad)
    _shade_infeasible(ax, [b for b in bound if b.metric == x_key], scale)
    ax.set_xlabel(x_label)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{record.experiment_id}: accuracy vs {x_label.split(' (')[0]}"
                 + (f"\n(feasibility also checks {', '.join(others)})" if others else ""), fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8, frameon=False)  # never over data
    return figure


def _shade_infeasible(ax, bounds: list, scale: float) -> None:
    """Tint the side of each x-axis bound where the requirement is not met (limits unchanged)."""
    left, right = ax.get_xlim()
    for b in bounds:
        if b.max is not None and b.max * scale < right:
            ax.axvspan(b.max * scale, right, color=INFEASIBLE_COLOR, alpha=0.06, zorder=0)
        if b.min is not None and b.min * scale > left:
            ax.axvspan(left, b.min * scale, color=INFEASIBLE_COLOR, alpha=0.06, zorder=0)
    ax.set_xlim(left, right)


@_plain_text
def cycles_figure(record: ExperimentRecord) -> Figure:
    """Four panels over generator cycles: best U, feasible fraction (%), generator entropy, and
    θ_I's trust in each kind of probe response (0.5: no evidence yet)."""
    figure = _new_figure(7.5, 8.0)
    axes = figure.subplots(4, 1, sharex=True)
    cycles = record.cycles
    x = [c.cycle for c in cycles]
    objective = record.objective
    if record.objectives is not None:  # multi-objective mode: the front's hypervolume, not one U
        u_points = [(c.cycle, c.hypervolume) for c in cycles if c.hypervolume is not None]
        label, ylabel = f"hypervolume ({', '.join(record.objectives.metrics)})", "hypervolume"
    else:
        u_points = [(c.cycle, c.best_u) for c in cycles if c.best_u is not None]
        label, ylabel = f"best U ({objective.metric}, {objective.mode})", f"best U\n({objective.metric})"
    axes[0].plot([p[0] for p in u_points], [p[1] for p in u_points], marker="o", color=FRONT_COLOR, label=label)
    axes[0].set_ylabel(ylabel)
    axes[1].plot(x, [100.0 * c.feasible_fraction for c in cycles], marker="s", color=FEASIBLE_COLOR,
                 label="feasible fraction of the cycle's results")
    axes[1].set_ylabel("feasible (%)")
    axes[1].set_ylim(-5, 105)
    axes[2].plot(x, [c.entropy for c in cycles], marker="^", color=REQUIREMENT_COLOR, label="generator entropy")
    axes[2].set_ylabel("entropy (nats)")
    kinds = sorted({kind for c in cycles for kind in (c.trust or {})})
    for kind in kinds:
        points = [(c.cycle, c.trust[kind]) for c in cycles if kind in (c.trust or {})]
        axes[3].plot([p[0] for p in points], [p[1] for p in points], marker=".", label=f"trust: {kind} responses")
    axes[3].axhline(0.5, color="0.6", linestyle=":", linewidth=1, label="no evidence (0.5)")
    axes[3].set_ylim(-0.05, 1.05)
    axes[3].set_ylabel("probe trust")
    axes[3].set_xlabel("generator cycle")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    if cycles:
        axes[3].set_xticks(x if len(x) <= 20 else axes[3].get_xticks())
    else:
        axes[0].text(0.5, 0.5, "no generator cycle completed yet" + ("" if record.state_path is None or
                     record.state_path.is_file() else " (no GenSynth state file)"),
                     transform=axes[0].transAxes, ha="center", va="center", color="0.35")
    axes[0].set_title(f"{record.experiment_id}: GenSynth generator cycles ({len(cycles)})", fontsize=10)
    return figure


@_plain_text
def front_figure(record: ExperimentRecord) -> Figure:
    """Multi-objective mode: the feasible front after each generator cycle (first objective up,
    second across), labelled with the hypervolume GenSynth recorded for that cycle."""
    figure = _new_figure(7.5, 5.5)
    ax = figure.add_subplot()
    objectives = record.objectives
    y_objective, x_objective = objectives.objectives[0], objectives.objectives[1]
    results = [t for t in record.trials if has_result(t)]
    size = record.class_args.get("population_size", 10)
    size = size if isinstance(size, int) and not isinstance(size, bool) and size >= 1 else 10
    cycles = -(-len(results) // size)  # the last one may still be filling
    colors = matplotlib.colormaps["viridis"]
    hypervolumes = {c.cycle: c.hypervolume for c in record.cycles}
    drawn = 0
    for cycle in range(1, cycles + 1):
        trials = [t for t in results[: cycle * size] if is_feasible(record, t)
                  and t.metric(x_objective.metric) is not None and t.metric(y_objective.metric) is not None]
        if not trials:
            continue
        oriented = [(x_objective.score(t.final), y_objective.score(t.final)) for t in trials]
        front = sorted((t.metric(x_objective.metric), t.metric(y_objective.metric))
                       for t, keep in zip(trials, non_dominated(oriented)) if keep)  # a step line along x
        hv = hypervolumes.get(cycle)
        note = " (in progress)" if cycle * size > len(results) else (f" (hypervolume {hv:.4g})" if hv is not None else "")
        ax.plot([p[0] for p in front], [p[1] for p in front], drawstyle="steps-post", marker=".",
                color=colors(cycle / cycles), linewidth=1.4, label=f"cycle {cycle}{note}")
        drawn += 1
    if not drawn:
        ax.text(0.5, 0.5, "no feasible trial has reported both objectives yet", transform=ax.transAxes,
                ha="center", va="center", color="0.35")
    ax.set_xlabel(f"{x_objective.metric} ({'min' if x_objective.mode == 'minimize' else 'max'})")
    ax.set_ylabel(f"{y_objective.metric} ({'min' if y_objective.mode == 'minimize' else 'max'})")
    ax.set_title(f"{record.experiment_id}: feasible front after each cycle", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    return figure


@_plain_text
def save_png(figure: Figure, path: Path) -> Path:
    """Write `figure` as a PNG (atomically: a reader never sees half a file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    figure.savefig(tmp, format="png", dpi=100)
    tmp.replace(path)
    return path


def legend_texts(figure: Figure) -> list[str]:
    """Every legend entry of a figure (what tests and readers see as the named elements)."""
    return [text.get_text() for ax in figure.axes if ax.get_legend() is not None
            for text in ax.get_legend().get_texts()]


def axis_labels(figure: Figure) -> list[tuple[str, str]]:
    return [(ax.get_xlabel(), ax.get_ylabel()) for ax in figure.axes]

