"""Smoke test of the NAS-Bench-201 benchmark (benchmarks/nb201.py): protocol, counting, outputs."""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.nb201_lib.data import LATENCY_LIMIT_MS, data_path, load_table, parse_arch_str, search_space  # noqa: E402
from benchmarks.nb201_lib.device import counting, lookup_latency  # noqa: E402
from benchmarks.nb201_lib.harness import run_one  # noqa: E402

try:
    data_path()
except FileNotFoundError:
    pytest.skip("NAS-Bench-201 table not present in ../shared/bench-data", allow_module_level=True)


def test_table_parses_cells_and_knows_the_optimum():
    table = load_table()
    assert len(table.cells) == 5 ** 6
    assert parse_arch_str("|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|") == (
        "none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "none")
    assert table.top_feasible(5) == [90.83, 90.72, 90.71, 90.67, 90.65]  # as issue 4 quotes them
    with pytest.raises(ValueError, match="e32"):
        table.lookup({"e10": "none", "e20": "none", "e21": "none", "e30": "none", "e31": "none"})
    with pytest.raises(ValueError, match="conv_5x5"):
        table.lookup({**dict.fromkeys(("e10", "e20", "e21", "e30", "e31"), "none"), "e32": "conv_5x5"})


def test_committed_search_space_matches_the_benchmark():
    assert json.loads((REPO / "search_spaces" / "nb201.json").read_text()) == search_space()


def test_profiler_calls_are_counted_across_threads_and_processes():
    params = dict.fromkeys(("e10", "e20", "e21", "e30", "e31", "e32"), "nor_conv_3x3")
    with counting() as counter:
        assert lookup_latency(params)["latency_ms"] == load_table().lookup(params).latency_ms
        threads = [threading.Thread(target=lookup_latency, args=(params,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        code = ("import sys; sys.path.insert(0, %r); from benchmarks.nb201_lib.device import lookup_latency; "
                "lookup_latency(%r)" % (str(REPO), params))
        subprocess.run([sys.executable, "-c", code], check=True)
        assert counter.count() == 6
        with pytest.raises(ValueError):
            lookup_latency({"e10": "none"})
        assert counter.count() == 6  # a rejected call measured nothing
        counter.reset()
        assert counter.count() == 0


def test_measure_first_random_counts_calls_and_trains_only_feasible_cells():
    run = run_one("mf-random", seed=3, budget=20)
    assert run.profiler_calls[-1] >= 20  # at least one measurement per training
    assert run.profiler_calls[-1] <= 4 * 20
    assert all(b >= a for a, b in zip(run.profiler_calls, run.profiler_calls[1:]))
    assert sum(lat <= LATENCY_LIMIT_MS for lat in run.latency_ms) >= 18


def test_cli_smoke_run(tmp_path):
    out, plot, markdown = tmp_path / "nb201.json", tmp_path / "nb201.png", tmp_path / "nb201.md"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "nb201.py"), "--tuners", "mf-random", "nni-random",
                    "--seeds", "2", "--first-seed", "5", "--budgets", "10", "20", "--out", str(out), "--plot", str(plot),
                    "--markdown", str(markdown), "--jobs", "2"], check=True, capture_output=True, text=True)
    doc = json.loads(out.read_text())
    assert plot.stat().st_size > 0
    assert "measure-first random" in markdown.read_text() and "NNI Random" in markdown.read_text()
    assert doc["reference"]["optimum"] == 90.83 and doc["errors"] == {}
    assert set(doc["tuners"]) == {"mf-random", "nni-random"}
    assert doc["protocol"]["seeds"] == [5, 6] and all(t["seeds"] == [5, 6] for t in doc["tuners"].values())
    table = load_table()
    for name, summary in doc["tuners"].items():
        assert set(summary["budgets"]) == {"10", "20"}
        for budget in summary["budgets"].values():
            assert {"best_feasible_accuracy", "feasible_fraction", "profiler_calls_per_training"} <= set(budget)
            assert 0.0 <= budget["feasible_fraction"] <= 1.0
        assert {"median", "at_20_observations"} <= set(summary["ms_per_suggestion"])
        curve = summary["curve"]["median"]
        assert len(curve) == 20 and all(b >= a for a, b in zip(curve, curve[1:]))  # best-so-far never drops
        assert (summary["budgets"]["20"]["best_feasible_accuracy"]["median"]
                >= summary["budgets"]["10"]["best_feasible_accuracy"]["median"])
    assert doc["tuners"]["mf-random"]["budgets"]["20"]["profiler_calls_per_training"] >= 1.0
    assert doc["tuners"]["nni-random"]["budgets"]["20"]["profiler_calls_per_training"] == 0.0
    for name, summary in doc["tuners"].items():  # every reported best is a cell that meets 25 ms by the table
        for budget in ("10", "20"):
            for best in summary["budgets"][budget]["per_seed"]:
                cell = table[tuple(best["architecture"].split(","))]
                assert cell.latency_ms <= LATENCY_LIMIT_MS and cell.latency_ms == best["latency_ms"]
                assert cell.accuracy == best["accuracy"] and best["training"] <= int(budget)
            seed_bests = [best["accuracy"] for best in summary["budgets"][budget]["per_seed"]]
            assert summary["budgets"][budget]["best_feasible_accuracy"]["median"] == pytest.approx(
                statistics.median(seed_bests), abs=1e-3)


def test_the_additive_kernel_variant_changes_only_the_kernel():
    from benchmarks.nb201_lib.tuners import ADDITIVE_KERNEL_SHARE, make_tuner
    from nni_gensynth.engine.surrogate import ADDITIVE_SHARE
    shares = {}
    for name in ("gensynth", "gensynth-additive-kernel"):
        tuner = make_tuner(name, seed=0)
        tuner.update_search_space(search_space())
        inquisitor = tuner._engine.inquisitor
        shares[name] = {model.additive_share for model in (inquisitor.u_model, *inquisitor.metric_models.values())}
    assert shares == {"gensynth": {ADDITIVE_SHARE}, "gensynth-additive-kernel": {ADDITIVE_KERNEL_SHARE}}
    assert ADDITIVE_SHARE != ADDITIVE_KERNEL_SHARE


def test_the_engine_variants_change_what_their_names_say():
    from benchmarks.nb201_lib.tuners import make_tuner
    engines = {}
    for name in ("gensynth", "gensynth-pool-4000", "gensynth-init5", "gensynth-init15"):
        tuner = make_tuner(name, seed=0)
        tuner.update_search_space(search_space())
        engines[name] = tuner._engine
    assert engines["gensynth"].pool_size != 4000 and engines["gensynth-pool-4000"].pool_size == 4000
    assert engines["gensynth"]._n_initial() == 10
    assert engines["gensynth-init5"]._n_initial() == 5 and engines["gensynth-init15"]._n_initial() == 15
    assert engines["gensynth-init5"].pool_size == engines["gensynth"].pool_size


def test_front_benchmark_smoke_run(tmp_path):
    """benchmarks/nb201_multi.py: every multi-objective searcher runs through the NNI Tuner API, and
    each reported hypervolume is the hypervolume of its run's feasible trainings."""
    from benchmarks.nb201_multi import REFERENCE, oriented
    from nni_gensynth.engine.hypervolume import hypervolume

    out, plot, markdown = tmp_path / "multi.json", tmp_path / "multi.png", tmp_path / "multi.md"
    tuners = ["gensynth-multi", "optuna-nsga2", "optuna-motpe", "mf-re-scalarised"]
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "nb201_multi.py"), "--tuners", *tuners,
                    "--seeds", "1", "--budgets", "12", "25", "--out", str(out), "--plot", str(plot),
                    "--markdown", str(markdown)], check=True, capture_output=True, text=True)
    doc = json.loads(out.read_text())
    assert doc["errors"] == {} and set(doc["tuners"]) == set(tuners) and plot.stat().st_size > 0
    assert "Optuna NSGA-II" in markdown.read_text()
    table = load_table()
    every = oriented([c.accuracy for c in table.cells.values()], [c.latency_ms for c in table.cells.values()])
    assert doc["optimum"]["hypervolume"] == pytest.approx(hypervolume(every, REFERENCE), abs=1e-3)
    for summary in doc["tuners"].values():
        at_12, at_25 = (summary["budgets"][b]["hypervolume"]["median"] for b in ("12", "25"))
        assert 0.0 <= at_12 <= at_25 <= doc["optimum"]["hypervolume"]  # the front only grows
        for point in summary["median_run"]["front"]:  # (accuracy, latency) of real feasible cells
            assert point[1] <= LATENCY_LIMIT_MS


def test_farm_simulation_keeps_its_books():
    from benchmarks.nb201_lib.farm import FarmModel, simulate

    model = FarmModel(workers=8, devices=2)
    runs = {name: simulate(name, 0, model, 40) for name in ("gensynth", "gensynth-ahead", "mf-re")}
    for name, run in runs.items():
        assert len(run.accuracy) == 40 and run.makespan_s > 0
        assert 0.0 < run.device_utilisation() <= 1.0 + 1e-9, name
        assert 0.0 < run.worker_utilisation() <= 1.0 + 1e-9, name
        assert len(run.suggest_ms) == 40
        assert run.best_feasible(40) is not None
    assert runs["gensynth"].measurements_ahead == 0
    assert runs["gensynth-ahead"].measurements_ahead > 0
    # idle devices that screen are busier than devices that only measure for suggestions
    assert runs["gensynth-ahead"].device_utilisation() > runs["gensynth"].device_utilisation()
    # 40 trainings never exhaust the table: utilisation "until nothing was left" is the whole run's
    ahead = runs["gensynth-ahead"]
    assert ahead.ran_dry_s is None and ahead.device_utilisation_before_dry() == ahead.device_utilisation()
    assert runs["gensynth"].device_utilisation_before_dry() is None  # not screening: not applicable
    with pytest.raises(ValueError, match="at least one worker"):
        FarmModel(workers=0, devices=1)


def test_farm_utilisation_until_the_table_ran_out():
    from benchmarks.nb201_lib.farm import FarmRun, _Devices

    devices = _Devices(2)
    assert devices.reserve(0.0, 10.0) == 10.0 and devices.reserve(0.0, 30.0) == 30.0
    assert devices.busy_until(20.0) == pytest.approx(30.0)  # 10 s done + 20 of the 30 s one
    run = FarmRun("gensynth-ahead", 0, workers=4, devices=2, trainings=10, device_busy_s=50.0, makespan_s=100.0)
    run.ran_dry_s, run.device_busy_before_dry_s = 20.0, 36.0
    assert run.device_utilisation() == pytest.approx(0.25)
    assert run.device_utilisation_before_dry() == pytest.approx(0.9)  # 36 of 2 x 20 device seconds


def test_scale_cli_writes_its_table(tmp_path):
    from benchmarks import scale

    out, md = tmp_path / "scale.json", tmp_path / "scale.md"
    assert scale.main(["--workers", "4", "--trainings", "30", "--seeds", "1", "--long-run", "0",
                       "--tuners", "gensynth", "mf-re", "--out", str(out), "--markdown", str(md)]) == 0
    text = md.read_text()
    assert "best feasible @30" in text
    assert "| 4 | 1 | gensynth |" in text and "| 4 | 1 | mf-re |" in text
    assert "| n/a |" in text  # no screening ahead: utilisation until the table ran out does not apply
    with pytest.raises(SystemExit):
        scale.parse_args(["--workers", "0"])
