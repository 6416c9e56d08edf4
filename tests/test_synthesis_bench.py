"""benchmarks/synthesis.py: the figures it derives (the run itself is not a unit test)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.synthesis import parse_args, ratios, summarise  # noqa: E402
from nni_gensynth.engine.objective import Requirements  # noqa: E402

PROTO = {"accuracy": 0.975, "params": 2_000_000, "macs": 80_000_000, "latency_ms": 1.0, "energy_mj": 1.0,
         "energy_source": "model", "litert_latency_ms": 0.9}
GENERATED = {"distinct_networks": 10, "distinct_meeting_measured_requirements": 10,
             "distinct_meeting_all_requirements_after_training": 6, "networks": []}


def small(accuracy, u, params=150_000):
    return {"accuracy": accuracy, "params": params, "macs": 7_000_000, "latency_ms": 0.2, "energy_mj": 0.2,
            "energy_source": "model", "litert_latency_ms": 0.3, "netscore_u": u, "parameters": {}}


def test_ratios_are_prototype_over_best():
    r = ratios(PROTO, small(0.97, 1.0))
    assert r == {"macs": round(80 / 7, 3), "params": round(2_000_000 / 150_000, 3), "latency": 5.0, "litert_latency": 3.0}
    assert ratios(PROTO, dict(small(0.97, 1.0), latency_ms=None))["latency"] is None


@pytest.mark.parametrize("best,ablation,expected", [
    (small(0.972, 100.0), small(0.975, 99.0), True),
    (small(0.972, 98.0), small(0.975, 99.0), False),
    (small(0.972, 98.0), None, True),
    (None, small(0.975, 99.0), False)])
def test_probing_better_compares_the_best_constrained_results(best, ablation, expected):
    out = summarise(PROTO, best, ablation, GENERATED, Requirements({"latency_ms": {"max": 0.25}}), {}, {}, 1.0)
    assert out["ablation"]["probing_better"] is expected
    if best is not None:
        assert out["accuracy_drop_points"] == pytest.approx(100 * (0.975 - best["accuracy"]), abs=1e-3)
        targets = out["targets"]
        assert targets["macs_10x"] and targets["params_10x"] and targets["latency_4x"]
        assert targets["accuracy_within_0.5_points"] and targets["generated_10_distinct_feasible"]
    else:
        assert out["best"] is None and "targets" not in out


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        parse_args(["--out", "x.json", "--budget", "0"])
    assert parse_args(["--out", "x.json"]).generator_start == "prototype"  # θ_G starts at the prototype


def test_seed_table_has_one_row_per_run_and_says_when_none_was_feasible():
    from benchmarks.synthesis_seeds import table

    arms = {"probing": {"block_responses": {"skip": 7, "keep": 13}}}
    feasible = summarise(PROTO, small(0.972, 100.0), small(0.975, 99.0), GENERATED,
                         Requirements({"latency_ms": {"max": 0.25}}), {"seed": 3}, arms, 600.0)
    feasible["best"]["netscore"], feasible["ablation"]["netscore"] = 80.5, 79.0
    nothing = summarise(PROTO, None, None, GENERATED, Requirements(), {"seed": 4}, arms, 60.0)
    lines = table([feasible, nothing]).splitlines()
    assert len(lines) == 4 and lines[0].startswith("| seed |")
    assert lines[2].startswith("| 3 | 0.9750 | 0.9720 (-0.30) | 11.4x | 13.3x | 5.0x | 3.0x |")
    assert "80.5 vs 79.0" in lines[2] and "| 7/20 | 10 | 10 |" in lines[2]
    assert lines[3].startswith("| 4 | 0.9750 | none feasible |") and lines[3].count("|") == lines[2].count("|")
