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
    with pytest.raises(SystemExit):
        parse_args(["--out", "x.json", "--config", "no/such.yml"])
    assert parse_args(["--out", "x.json"]).config.name == "synthesis.yml"  # the NNI experiment's own file


def test_the_benchmark_runs_the_experiment_files_settings():
    """The benchmark reads the search space, classArgs and trial spec from examples/synthesis.yml."""
    from benchmarks.synthesis import DEFAULT_CONFIG, Experiment

    experiment = Experiment(DEFAULT_CONFIG, seed=3, epochs=None)
    assert experiment.class_args["seed"] == 3 and experiment.class_args["prototype"] == "mobilenetv2"
    assert experiment.spec.builder == "mobilenetv2" and experiment.spec.input_shape == (1, 3, 32, 32)
    assert experiment.max_trials == 20 and "b3_block" in experiment.space
    assert Experiment(DEFAULT_CONFIG, seed=0, epochs=1).spec.epochs == 1


def test_test_split_says_whether_the_accuracy_target_holds_beyond_the_interval():
    from benchmarks.synthesis import test_split

    proto = {"test_accuracy": 0.97, "test_accuracy_low": 0.95, "test_accuracy_high": 0.98}
    close = {"test_accuracy": 0.968, "test_accuracy_low": 0.966, "test_accuracy_high": 0.98, "test_accuracy_n": 359}
    wide = dict(close, test_accuracy_low=0.94)
    assert test_split(proto, close)["within_0.5_points_beyond_interval"] is True
    out = test_split(proto, wide)
    assert out["within_0.5_points_at_point_estimate"] is True and out["within_0.5_points_beyond_interval"] is False
    assert test_split({}, close) == {"available": False}


def test_seed_table_has_one_row_per_run_and_says_when_none_was_feasible():
    from benchmarks.synthesis_seeds import table

    arms = {"probing": {"generated_meeting_all": 9}, "ablation": {"generated_meeting_all": 7}}
    held_out = {"test_accuracy": 0.97, "test_accuracy_low": 0.95, "test_accuracy_high": 0.98, "test_accuracy_n": 359}
    prototype = dict(PROTO, **held_out)
    best = dict(small(0.972, 100.0), **dict(held_out, test_accuracy=0.962, test_accuracy_low=0.94))
    feasible = summarise(prototype, best, small(0.975, 99.0), dict(GENERATED, asked=10),
                         Requirements({"latency_ms": {"max": 0.25}}), {"seed": 3}, arms, 600.0)
    feasible["best"]["netscore"], feasible["ablation"]["netscore"] = 80.5, 79.0
    nothing = summarise(PROTO, None, None, GENERATED, Requirements(), {"seed": 4}, arms, 60.0)
    lines = table([feasible, nothing]).splitlines()
    assert len(lines) == 4 and lines[0].startswith("| seed |") and "test acc." in lines[0]
    assert lines[2].startswith("| 3 | 0.9750 | 0.9700 [0.950, 0.980] | 0.9720 (-0.30) | 0.9620 [0.940, 0.980] (-0.80)"
                               " | no | 11.4x | 13.3x | 5.0x | 3.0x |")
    assert "80.5 vs 79.0" in lines[2] and "| 9 / 7 of 10 | 10 |" in lines[2]
    assert lines[3].startswith("| 4 | 0.9750 | n/a | none feasible |")
    assert lines[3].count("|") == lines[2].count("|") == lines[0].count("|")
    close = dict(feasible, best=dict(feasible["best"], test_split=dict(feasible["best"]["test_split"],
                                                                     **{"within_0.5_points_at_point_estimate": True})))
    assert "| at the estimate only |" in table([close])


def test_probing_comparison_pairs_seeds_and_ranks_no_feasible_network_last():
    from benchmarks.paired import paired_test
    from benchmarks.probing import paired_differences, parse_seeds

    assert parse_seeds("0-3") == [0, 1, 2, 3] and parse_seeds("1,5") == [1, 5]
    diffs = paired_differences([(110.0, 108.0), (None, 100.0), (105.0, None), (None, None)], larger_is_better=True)
    assert diffs[0] == 2.0 and diffs[1] < -10 and diffs[2] > 10 and diffs[3] == 0.0
    assert paired_differences([(3.0, 5.0)], larger_is_better=False) == [2.0]  # fewer trainings favours probing
    clear = paired_test([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    assert clear["p_value"] < 0.01 and clear["rank_biserial"] == 1.0 and clear["wins"] == 8
    mixed = paired_test([1.0, -1.5, 2.0, -2.5, 0.0])
    assert mixed["p_value"] > 0.5 and mixed["nonzero"] == 4


def test_constraints_can_be_changed_for_a_harder_setting():
    from benchmarks.synthesis import DEFAULT_CONFIG, Experiment, parse_constraint

    assert parse_constraint('macs.max="prototype / 30"') == ("macs", "max", "prototype / 30")
    assert parse_constraint("accuracy.min=0.97") == ("accuracy", "min", 0.97)
    with pytest.raises(ValueError):
        parse_constraint("macs=3")
    hard = Experiment(DEFAULT_CONFIG, seed=0, epochs=None, constraints=[("macs", "max", "prototype / 30")])
    assert hard.class_args["constraints"]["macs"] == {"max": "prototype / 30"}
    assert hard.class_args["constraints"]["latency_ms"] == {"max": "prototype / 4"}


def test_the_probing_comparison_tables_and_plots_recorded_seeds_without_running_them(tmp_path):
    """Seeds whose files exist are read, not run: the checked-in hard seeds give the table, the
    paired test and a plot with a panel per measure."""
    import json
    import shutil

    from benchmarks.probing import REPO, main

    for seed in (0, 1):
        shutil.copy(REPO / "benchmarks" / "results" / "probing" / f"hard-seed{seed}.json", tmp_path)
    assert main(["--seeds", "0-1", "--setting", "hard", "--out-dir", str(tmp_path)]) == 0
    text = (tmp_path / "hard.md").read_text(encoding="utf-8")
    assert "| 0 |" in text and "| 1 |" in text and "| Wilcoxon (probing vs ablation) |" in text
    assert json.loads((tmp_path / "hard.json").read_text(encoding="utf-8"))["seeds"] == [0, 1]
    assert (tmp_path / "hard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
