"""Smoke test of the NAS-Bench-201-as-NAS benchmark (benchmarks/nb201_nas.py)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytorch_lightning")  # nni.nas imports it

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.nb201_lib.data import LATENCY_LIMIT_MS, data_path  # noqa: E402

try:
    data_path()
except FileNotFoundError:
    pytest.skip("NAS-Bench-201 table not present in ../shared/bench-data", allow_module_level=True)


def test_the_strategy_proposes_what_the_tuner_proposes_and_filtered_strategies_train_only_feasible_cells():
    from benchmarks.nb201_lib.harness import run_one as run_tuner
    from benchmarks.nb201_lib.nas_harness import run_one

    strategy = run_one("gensynth", 0, 30)
    tuner = run_tuner("gensynth", 0, 30)
    assert strategy.architectures == tuner.architectures  # one engine behind both NNI interfaces
    filtered = run_one("random-filter", 0, 30)
    assert len(filtered.latency_ms) == 30 and max(filtered.latency_ms) <= LATENCY_LIMIT_MS
    assert filtered.profiler_calls[-1] > 30  # blocked cells were measured, not trained


def test_the_command_writes_json_markdown_and_plot(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "nb201_nas.py"), "--strategies", "gensynth", "re",
                          "--seeds", "1", "--budgets", "5", "10", "--out", str(tmp_path / "r.json"),
                          "--plot", str(tmp_path / "r.png"), "--markdown", str(tmp_path / "r.md")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    document = json.loads((tmp_path / "r.json").read_text())
    assert set(document["strategies"]) == {"gensynth", "re"} and not document["errors"]
    assert document["strategies"]["gensynth"]["label"] == "GenSynthStrategy"
    assert "| strategy |" in (tmp_path / "r.md").read_text() and (tmp_path / "r.png").stat().st_size > 0
