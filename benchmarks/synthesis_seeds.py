"""One markdown table from several `benchmarks/synthesis.py` runs (one JSON each, e.g. one per seed).

    python benchmarks/synthesis_seeds.py benchmarks/results/synthesis.json benchmarks/results/synthesis-seed1.json ...
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _points(drop: float) -> str:
    """Accuracy change in points, signed, with no "-0.00"."""
    change = round(-drop, 2)
    return f"{change + 0.0:+.2f}"


def _ablation(ablation: dict) -> str:
    netscore = ablation.get("netscore")
    return "none feasible" if netscore is None else f"{netscore:.1f}"


def _interval(value: Any, low: Any, high: Any) -> str:
    return "n/a" if value is None else f"{value:.4f} [{_fmt(low, '.3f')}, {_fmt(high, '.3f')}]"


def _test_cell(best: dict) -> str:
    """The best network on the test split: estimate [95% interval] (change in points), and
    whether "within 0.5 points of the prototype" holds beyond the interval or at the estimate only."""
    split = best.get("test_split") or {}
    if not split.get("available"):
        return "not recorded | n/a"
    value, low, high = split["best"]
    verdict = ("yes, beyond the interval" if split["within_0.5_points_beyond_interval"] else
               "at the estimate only" if split["within_0.5_points_at_point_estimate"] else "no")
    return f"{_interval(value, low, high)} ({split['change_points'] + 0.0:+.2f}) | {verdict}"


def row(summary: dict) -> str:
    """One run: seed, prototype and best on both splits, ratios, probing against its ablation,
    generated networks meeting every requirement after training."""
    best, ablation, settings = summary.get("best"), summary["ablation"], summary["settings"]
    prototype = summary["prototype"]
    arms = summary["arms"]
    generated = " / ".join(_fmt(arms[arm].get("generated_meeting_all"), "d") for arm in ("probing", "ablation"))
    asked = (summary.get("generated") or {}).get("asked")
    tail = f"{generated} of {_fmt(asked, 'd')} | {summary['seconds'] / 60:.0f} |"
    head = (f"| {settings['seed']} | {prototype['accuracy']:.4f} | "
            f"{_interval(prototype.get('test_accuracy'), prototype.get('test_accuracy_low'), prototype.get('test_accuracy_high'))} |")
    if best is None:
        return f"{head} none feasible | | | | | | | none vs {_ablation(ablation)} | {tail}"
    r = best["ratios"]
    return (f"{head} {best['accuracy']:.4f} ({_points(best['accuracy_drop_points'])}) | {_test_cell(best)} | "
            f"{_fmt(r['macs'], '.1f')}x | {_fmt(r['params'], '.1f')}x | {_fmt(r['latency'], '.1f')}x | "
            f"{_fmt(r.get('litert_latency'), '.1f')}x | {best['netscore']:.1f} vs {_ablation(ablation)} | {tail}")


def table(summaries: list[dict]) -> str:
    lines = ["| seed | prototype val. acc. | prototype test acc. [95%] | best val. acc. (points) | "
             "best test acc. [95%] (points) | within 0.5 points on test | MACs | params | ORT latency | "
             "LiteRT latency | NetScore probing vs ablation | generated meeting every requirement after "
             "training, probing / ablation | minutes |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [row(s) for s in summaries]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="JSON files written by benchmarks/synthesis.py --out")
    args = parser.parse_args(argv)
    summaries = []
    for path in args.results:
        try:
            summaries.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            parser.error(f"{path}: {exc}")
    print(table(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
