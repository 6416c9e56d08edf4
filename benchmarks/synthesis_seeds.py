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


def row(summary: dict) -> str:
    """One run: seed, best network against the prototype, probing against its ablation, generated."""
    best, ablation, settings = summary.get("best"), summary["ablation"], summary["settings"]
    probing_arm = summary["arms"]["probing"]
    blocks = probing_arm.get("block_responses") or {}
    probes = f"{blocks.get('skip', 0)}/{blocks.get('skip', 0) + blocks.get('keep', 0)}"
    tail = f"{probes} | {summary['generated_distinct_feasible']} | {summary['seconds'] / 60:.0f} |"
    head = f"| {settings['seed']} | {summary['prototype']['accuracy']:.4f} |"
    if best is None:
        return f"{head} none feasible | | | | | | none vs {_ablation(ablation)} | {tail}"
    r = best["ratios"]
    return (f"{head} {best['accuracy']:.4f} ({_points(best['accuracy_drop_points'])}) | {_fmt(r['macs'], '.1f')}x | "
            f"{_fmt(r['params'], '.1f')}x | {_fmt(r['latency'], '.1f')}x | {_fmt(r.get('litert_latency'), '.1f')}x | "
            f"{_fmt(best.get('blocks_removed'), 'd')} | {best['netscore']:.1f} vs "
            f"{_ablation(ablation)} | {tail}")


def table(summaries: list[dict]) -> str:
    lines = ["| seed | prototype acc. | best acc. (points) | MACs | params | ORT latency | LiteRT latency | "
             "blocks removed | NetScore probing vs ablation | block probes saying skip | generated distinct "
             "feasible | minutes |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
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
