"""The report and NNI's web UI on a LIVE small GenSynth experiment (real NNI manager on 127.0.0.1).

One experiment serves the module: 5 trials (fixture trial, GenSynth tuner, latency constraint),
read through the REST API and through its database while it runs.
"""
from __future__ import annotations

import json
import urllib.request

import pytest

from report_support import chromium_available
from nni_gensynth.results import load_experiment, write_report
from nni_gensynth.results.assemble import decode_metric

pytest.importorskip("nni")
from scripts import small_experiment  # noqa: E402

MIN_RESULTS = 3


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("live-nni")
    experiment = small_experiment.start(workdir, max_trials=MIN_RESULTS + 2)
    try:
        small_experiment.wait(experiment, lambda e: small_experiment.finished_trials(e) >= MIN_RESULTS, timeout_s=90)
        yield experiment, workdir
    finally:
        experiment.stop()
        small_experiment.forget(experiment)


def rest(port, endpoint):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni/{endpoint}", timeout=10) as response:
        return json.loads(response.read())


def test_report_of_a_running_experiment_reads_the_rest_api(live, tmp_path):
    experiment, workdir = live
    trials_before = len(rest(experiment.port, "trial-jobs"))  # the experiment goes on while we read it
    index = write_report(experiment.id, tmp_path, experiment_dir=workdir, port=experiment.port)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["source"] == "rest" and summary["status"] in ("RUNNING", "NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL", "DONE")
    finals = {m["trialJobId"]: decode_metric(m["data"]) for m in rest(experiment.port, "metric-data") if m["type"] == "FINAL"}
    assert summary["counts"]["with_results"] >= MIN_RESULTS
    assert trials_before <= summary["counts"]["trials"] <= len(rest(experiment.port, "trial-jobs"))
    feasible = {t for t, m in finals.items() if m["latency_ms"] <= 1.5}
    listed = {b["trial_id"] for b in summary["best_feasible"]}
    assert listed <= feasible and summary["counts"]["feasible"] <= len(feasible)
    assert len(listed) == min(5, summary["counts"]["feasible"]) > 0
    for entry in summary["best_feasible"]:
        assert entry["metrics"] == finals[entry["trial_id"]]
    assert index.is_file() and (tmp_path / "pareto.png").stat().st_size > 10_000


def test_registry_gives_the_port_and_the_database_agrees_with_the_rest_api(live):
    experiment, workdir = live
    running = load_experiment(experiment.id, experiment_dir=workdir)  # no port: NNI's registry has it
    assert running.source == "rest"
    db = load_experiment(experiment.id, experiment_dir=workdir, port=1)  # nothing listens on port 1
    assert db.source == "sqlite"
    rest_finals = {t.trial_id: (t.parameters, t.final) for t in running.trials if t.final is not None}
    db_finals = {t.trial_id: (t.parameters, t.final) for t in db.trials if t.final is not None}
    shared = set(rest_finals) & set(db_finals)
    assert len(shared) >= MIN_RESULTS and all(rest_finals[t] == db_finals[t] for t in shared)


@pytest.mark.skipif(not chromium_available(), reason="chromium is not installed (scripts/system_deps.sh)")
def test_nni_web_ui_shows_gensynth_metrics(live, tmp_path):
    from scripts.webui_screenshot import NUMERIC_KEYS, capture
    from matplotlib.image import imread

    experiment, _ = live
    result = capture(experiment.port, tmp_path, min_results=MIN_RESULTS)
    assert result.failures == []
    assert set(NUMERIC_KEYS) <= set(result.metric_options)
    assert result.dom_rows >= MIN_RESULTS and len(result.dom_trial_ids) >= MIN_RESULTS
    for name in ("oview.png", "detail.png", "detail-metrics.png"):
        image = imread(tmp_path / name)
        assert image.shape[:2] == (1000, 1400) and image[..., :3].std() > 0.05
