"""gensynth report on a recorded GenSynth experiment (a real NNI database and state file)."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest
from matplotlib.image import imread

from report_support import EXPERIMENT_ID, LATENCY_MAX, REPO, chromium_available, fixture_trial, install_recorded_experiment
from nni_gensynth.cli import main as gensynth
from nni_gensynth.results import ExperimentNotFoundError, load_experiment, write_report, write_report_for
from nni_gensynth.results.assemble import RawMetric, RawTrial, assemble, decode_metric
from nni_gensynth.results.html import render_index
from nni_gensynth.results.analysis import summarize
from nni_gensynth.results.model import ExperimentRecord, TrialRecord
from nni_gensynth.results.plots import axis_labels, cycles_figure, legend_texts, pareto_figure


@pytest.fixture
def workdir(tmp_path):
    install_recorded_experiment(tmp_path / "nni")
    return tmp_path / "nni"


@pytest.fixture
def record(workdir):
    return load_experiment(EXPERIMENT_ID, experiment_dir=workdir)


def db_finals(workdir):
    """Final metrics straight from the database, independently of the results package."""
    conn = sqlite3.connect(workdir / EXPERIMENT_ID / "db" / "nni.sqlite")
    rows = conn.execute("SELECT trialJobId, data FROM MetricData WHERE type = 'FINAL'").fetchall()
    conn.close()
    return {trial: json.loads(json.loads(data)) for trial, data in rows}


def test_reads_every_trial_with_the_parameters_it_ran(record, workdir):
    finals = db_finals(workdir)
    assert record.source == "sqlite" and record.tuner_name == "GenSynth"
    assert record.constraints == {"latency_ms": {"max": LATENCY_MAX}}
    assert len(record.trials) == 16 and {t.trial_id for t in record.trials} == set(finals)
    trial_module = fixture_trial()
    for t in record.trials:
        assert t.status == "SUCCEEDED" and t.final == finals[t.trial_id]
        assert len(t.intermediate) == 2 and t.intermediate[-1]["accuracy"] < t.final["accuracy"]
        # the trial's metrics are a function of its parameters: wrong parameters would not reproduce them
        recomputed = trial_module.metrics_for(t.parameters, LATENCY_MAX)
        assert recomputed["latency_ms"] == t.final["latency_ms"] and recomputed["accuracy"] == t.final["accuracy"]
    state = json.loads((workdir / EXPERIMENT_ID / "checkpoint" / "gensynth" / "state.json").read_text())
    assert [c.entropy for c in record.cycles] == [c["entropy"] for c in state["cycles"]] and len(record.cycles) == 4


def test_parameters_follow_the_reported_parameter_id_not_the_running_event():
    # NNI 3.0's local training service: trial A's RUNNING event names parameter 0, but A ran parameter 1
    trials = [RawTrial("A", "SUCCEEDED", 1, parameter_payloads=['{"parameter_id": 0, "parameters": {"w": 8}}']),
              RawTrial("B", "SUCCEEDED", 2, parameter_payloads=['{"parameter_id": 1, "parameters": {"w": 16}}']),
              RawTrial("C", "RUNNING", 3, parameter_payloads=['{"parameter_id": 2, "parameters": {"w": 32}}'])]
    metrics = [RawMetric("A", "1", "FINAL", 0, '"{\\"default\\": 0.5}"'), RawMetric("B", "0", "FINAL", 0, "0.25"),
               RawMetric("A", "1", "PERIODICAL", 0, '"0.1"')]
    by_id = {t.trial_id: t for t in assemble(trials, metrics)}
    assert by_id["A"].parameters == {"w": 16} and by_id["A"].final == {"default": 0.5}
    assert by_id["B"].parameters == {"w": 8} and by_id["B"].final == {"default": 0.25}
    assert by_id["C"].parameters == {"w": 32} and by_id["C"].final is None  # no report yet: its event
    assert by_id["A"].intermediate == [{"default": 0.1}]
    assert decode_metric('"{\\"a\\": NaN}"') == {"a": None} and decode_metric("not json") is None


def test_summary_json_matches_the_trials(record, workdir, tmp_path):
    index = write_report(EXPERIMENT_ID, tmp_path / "out", experiment_dir=workdir)
    assert index == tmp_path / "out" / "index.html"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    finals = db_finals(workdir)
    feasible = {t: m for t, m in finals.items() if m["latency_ms"] <= LATENCY_MAX}
    assert summary["requirements"] == {"latency_ms": {"max": LATENCY_MAX}}
    assert summary["counts"]["trials"] == 16 and summary["counts"]["with_results"] == 16
    assert summary["counts"]["feasible"] == len(feasible) and summary["counts"]["infeasible"] == 16 - len(feasible)
    assert 0 < len(feasible) < 16  # the fixture has both kinds
    best = summary["best_feasible"]
    assert [b["trial_id"] for b in best] == sorted(feasible, key=lambda t: -feasible[t]["accuracy"])[:5]
    for entry in best:
        assert entry["metrics"] == finals[entry["trial_id"]] and entry["feasible"] is True
        assert entry["u"] == finals[entry["trial_id"]]["accuracy"]  # U = accuracy (the tuner's objective)
        assert set(entry["metrics"]) >= {"default", "accuracy", "latency_ms", "energy_mj", "params", "macs", "netscore"}
    front = summary["pareto_front"]
    for t in feasible:  # brute force: on the front iff no other feasible trial dominates it
        dominated = any(o != t and feasible[o]["latency_ms"] <= feasible[t]["latency_ms"]
                        and feasible[o]["accuracy"] >= feasible[t]["accuracy"]
                        and (feasible[o]["latency_ms"], feasible[o]["accuracy"]) != (feasible[t]["latency_ms"], feasible[t]["accuracy"])
                        for o in feasible)
        assert (t in front) == (not dominated), t
    assert [c["cycle"] for c in summary["cycles"]] == [1, 2, 3, 4]


def _check_png(path, min_size=(300, 400)):
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] >= min_size[0] and image.shape[1] >= min_size[1]
    gray = image[..., :3].mean(axis=2)
    assert gray.std() > 0.05  # not blank
    assert (gray < 0.9).mean() > 0.01  # a visible amount of ink


def test_pareto_png_has_the_named_elements(record, tmp_path):
    figure = pareto_figure(record)
    texts = legend_texts(figure)
    assert "feasible (15)" in texts and "infeasible (1)" in texts
    assert any(t.startswith("Pareto front of feasible (") for t in texts)
    assert f"requirement: latency_ms ≤ {LATENCY_MAX:g}" in texts
    assert axis_labels(figure) == [("measured latency (ms)", "accuracy (%)")]
    ax = figure.axes[0]
    requirement = [line for line in ax.get_lines() if line.get_label().startswith("requirement")][0]
    assert list(requirement.get_xdata()) == [LATENCY_MAX, LATENCY_MAX]
    front = [line for line in ax.get_lines() if line.get_label().startswith("Pareto")][0]
    assert list(front.get_xdata()) == sorted(front.get_xdata())  # joined left to right
    write_report(EXPERIMENT_ID, tmp_path, experiment_dir=record.experiment_dir)
    _check_png(tmp_path / "pareto.png")


def test_cycles_png_plots_the_state_files_cycles(record, tmp_path):
    record.cycles[-1].trust = {"width": 0.8, "block": 0.3}  # the recorded run predates probe trust
    figure = cycles_figure(record)
    assert len(figure.axes) == 4
    assert legend_texts(figure) == ["best U (accuracy, maximize)", "feasible fraction of the cycle's results",
                                    "generator entropy", "trust: block responses", "trust: width responses",
                                    "no evidence (0.5)"]
    best_u, feasible, entropy = (ax.get_lines()[0].get_ydata() for ax in figure.axes[:3])
    assert list(best_u) == [c.best_u for c in record.cycles]
    assert list(feasible) == [100 * c.feasible_fraction for c in record.cycles]
    assert list(entropy) == [c.entropy for c in record.cycles]
    assert list(figure.axes[3].get_lines()[1].get_ydata()) == [0.8]  # width
    assert axis_labels(figure)[2] == ("", "entropy (nats)") and axis_labels(figure)[3] == ("generator cycle", "probe trust")
    write_report(EXPERIMENT_ID, tmp_path, experiment_dir=record.experiment_dir)
    _check_png(tmp_path / "cycles.png")


def test_report_without_cycles_or_results_says_so(tmp_path):
    empty = ExperimentRecord("emptyexp", "sqlite", tmp_path, {"tuner": {"name": "GenSynth"}},
                             [TrialRecord("T1", "RUNNING", 0, {"w": 1})])
    index = write_report_for(empty, tmp_path / "out")
    texts = [t.get_text() for ax in cycles_figure(empty).axes for t in ax.texts]
    assert any("no generator cycle completed yet" in t for t in texts)
    assert any("no trial has reported" in t.get_text() for t in pareto_figure(empty).axes[0].texts)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["counts"]["with_results"] == 0
    assert index.is_file()


def test_html_escapes_every_string(tmp_path):
    evil = '<script>alert("x")</script>'
    record = ExperimentRecord("evil", "sqlite", tmp_path, {"experimentName": evil, "tuner": {"name": evil}},
                              [TrialRecord('T"1<b>', "SUCCEEDED", 0, {"act": evil},
                                           {"default": 0.5, "accuracy": 0.5, "latency_ms": 1.0, "energy_source": evil,
                                            "arch": evil})])
    page = render_index(record, summarize(record))
    assert evil not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # only the page's own sorting script


@pytest.mark.skipif(not chromium_available(), reason="chromium is not installed (scripts/system_deps.sh)")
def test_index_html_in_headless_chromium_sorts_without_errors(record, tmp_path):
    from scripts.headless_chromium import HeadlessChromium

    index = write_report(EXPERIMENT_ID, tmp_path, experiment_dir=record.experiment_dir)
    with HeadlessChromium() as browser:
        page = browser.open(index.as_uri())
        assert page.errors == []
        assert page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)") == [True, True]
        assert page.evaluate("document.querySelectorAll('#trials tbody tr').length") == 16
        headers = page.evaluate("Array.from(document.querySelectorAll('#trials th')).map(h => h.textContent)")
        column = headers.index("latency (ms, median)")
        values = f"Array.from(document.querySelectorAll('#trials tbody tr')).map(r => Number(r.cells[{column}].dataset.value))"
        page.click(f"document.querySelectorAll('#trials th')[{column}]")
        ascending = page.evaluate(values)
        page.click(f"document.querySelectorAll('#trials th')[{column}]")
        descending = page.evaluate(values)
        assert ascending == sorted(ascending) and descending == sorted(ascending, reverse=True)
        assert len(set(ascending)) > 5
        page.pump(0.3)
        assert page.errors == []


def test_bad_experiment_id_is_a_clear_error(tmp_path, capsys):
    assert gensynth(["report", "nosuchexp", "--out", str(tmp_path / "out"), "--experiment-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "nosuchexp" in err and str(tmp_path / "nosuchexp" / "db" / "nni.sqlite") in err
    with pytest.raises(ExperimentNotFoundError, match="nosuchexp"):
        load_experiment("nosuchexp", experiment_dir=tmp_path)
    with pytest.raises(ValueError, match="not an NNI experiment id"):
        load_experiment("../etc", experiment_dir=tmp_path)
    done = subprocess.run([sys.executable, "-m", "nni_gensynth.cli", "report", "nosuchexp", "--out", str(tmp_path / "o"),
                           "--experiment-dir", str(tmp_path)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode != 0 and "experiment 'nosuchexp' not found" in done.stderr
    assert not (tmp_path / "o").exists()


def test_report_cli_writes_all_files(workdir, tmp_path, capsys):
    assert gensynth(["report", EXPERIMENT_ID, "--out", str(tmp_path / "r"), "--experiment-dir", str(workdir)]) == 0
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["cycles.png", "index.html", "pareto.png", "summary.json"]
    assert "16 trials, 16 with results, 4 cycles" in capsys.readouterr().out


def test_measured_but_untrained_trials_are_shown_and_counted():
    trials = [TrialRecord(f"T{i}", "SUCCEEDED", i, {"w": i},
                          {"default": 0.7, "accuracy": 0.7 + i / 100, "latency_ms": 0.02 + i / 200}) for i in range(3)]
    trials += [TrialRecord(f"U{i}", "SUCCEEDED", 9 + i, {"w": 9 + i},  # skipped before training (--skip-infeasible)
                           {"default": 0.0, "accuracy": None, "latency_ms": 0.06 + i / 100, "feasible": False})
               for i in range(2)]
    record = ExperimentRecord("synthetic", "sqlite", None, {"tuner": {"name": "GenSynth", "classArgs": {
        "objective": "accuracy", "constraints": {"latency_ms": {"max": 0.05}}}}}, trials)
    figure = pareto_figure(record)
    assert "measured, not trained (2)" in legend_texts(figure) and "feasible (3)" in legend_texts(figure)
    assert figure.axes[0].get_xlim()[1] > 0.07  # the untrained ones are inside the plot
    counts = summarize(record)["counts"]
    assert counts["feasible"] == 3 and counts["infeasible"] == 2


def test_requirements_fall_back_to_the_trial_commands_constraints():
    config = {"tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}},
              "trialCommand": "python3 -m nni_gensynth.trial --epochs 4 --constraints '{\"latency_ms\": {\"max\": 0.05}}'"}
    record = ExperimentRecord("baseline", "sqlite", None, config, [])
    assert record.constraints == {"latency_ms": {"max": 0.05}}
    gensynth_config = dict(config, tuner={"name": "GenSynth", "classArgs": {"constraints": {"energy_mj": {"max": 2}}}})
    assert ExperimentRecord("g", "sqlite", None, gensynth_config, []).constraints == {"energy_mj": {"max": 2.0}}
    assert ExperimentRecord("o", "sqlite", None, {"trialCommand": "python3 trial.py"}, []).constraints == {}


def test_hostile_reported_values_and_names_do_not_break_the_report(tmp_path):
    """A trial may report anything JSON holds and an objective may be any text: the report shows
    what it can (10**400 is no number to plot; '$' is text, not TeX)."""
    trials = [TrialRecord("a", "SUCCEEDED", 0, {"w": 8}, final={"default": 10 ** 400, "accuracy": 0.9, "latency_ms": 1.0}),
              TrialRecord("b", "SUCCEEDED", 1, {"w": 16}, final={"default": float("nan"), "accuracy": 1e308,
                                                                  "latency_ms": -float("inf"), "$\\notacommand$": 1}),
              TrialRecord("c", "SUCCEEDED", 2, {"w": 32}, final={"$\\notacommand$": 0.5, "accuracy": 0.8, "latency_ms": 2.0})]
    record = ExperimentRecord("exp$x$", "sqlite", None,
                              {"tuner": {"classArgs": {"objective": "$\\notacommand$",
                                                       "constraints": {"latency_ms": {"max": 1.5}}}}}, trials)
    index = write_report_for(record, tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["counts"]["with_results"] == 3
    assert "$\\notacommand$" in index.read_text()


def test_objective_and_constraints_no_trial_reports_are_warned_about(tmp_path):
    trials = [TrialRecord(str(i), "SUCCEEDED", i, {"w": i}, final={"default": 0.5, "accuracy": 0.9}) for i in range(3)]
    record = ExperimentRecord("exp", "sqlite", None, {"tuner": {"classArgs": {
        "objective": "acuracy", "constraints": {"latency_ms": {"max": 1.0}}}}}, trials)
    summary = summarize(record)
    assert any("objective 'acuracy'" in w for w in summary["warnings"])
    assert any("constraint on 'latency_ms'" in w for w in summary["warnings"])
    assert "Warnings" in render_index(record, summary)


def test_every_gensynth_command_ends_with_one_line_on_bad_input(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert gensynth(["report", "nope", "--out", str(tmp_path / "afile")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gensynth report: error:") and err.count("\n") == 1 and "Traceback" not in err
    bad_profile = tmp_path / "bad.yml"
    bad_profile.write_text("name: x\nbackend: onnxruntime\ntransport: {kind: local}\nrepeat: {min_time_s: .nan}\n")
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not onnx")
    assert gensynth(["profile", str(model), "--profile", str(bad_profile)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gensynth profile: error:") and "min_time_s" in err and err.count("\n") == 1
    assert gensynth(["--debug", "report", "nope", "--out", str(tmp_path / "afile")]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_a_noisy_latency_shows_the_upper_bound_it_was_judged_on(tmp_path):
    """A trial measured while the host was busy reports the 95% upper bound of its median; the
    report shows it beside the median and judges the requirement on it."""
    trials = [TrialRecord("quiet", "SUCCEEDED", 0, {"w": 0}, {"default": 0.9, "accuracy": 0.9, "latency_ms": 0.045}),
              TrialRecord("noisy", "SUCCEEDED", 1, {"w": 1},
                          {"default": 0.9, "accuracy": 0.9, "latency_ms": 0.045, "latency_ms_upper": 0.061})]
    record = ExperimentRecord("noisy", "sqlite", None, {"tuner": {"name": "GenSynth", "classArgs": {
        "objective": "accuracy", "constraints": {"latency_ms": {"max": 0.05}}}}}, trials)
    assert summarize(record)["counts"]["feasible"] == 1
    page = render_index(record, summarize(record))
    assert "0.045 (noisy: up to 0.061)" in page


def test_multi_objective_report_plots_the_front_after_each_cycle(tmp_path):
    from nni_gensynth.results.model import CycleRecord
    from nni_gensynth.results.plots import front_figure

    trials = [TrialRecord(f"T{i}", "SUCCEEDED", i, {"w": i},
                          {"default": a, "accuracy": a, "latency_ms": lat})
              for i, (a, lat) in enumerate([(0.8, 1.0), (0.9, 3.0), (0.85, 0.5), (0.95, 2.0), (0.7, 9.0)])]
    config = {"tuner": {"name": "GenSynth", "classArgs": {
        "objectives": [{"accuracy": "max"}, {"latency_ms": "min"}], "population_size": 2,
        "constraints": {"latency_ms": {"max": 5}}}}}
    record = ExperimentRecord("multi", "sqlite", None, config, trials,
                              cycles=[CycleRecord(1, 2, 0.9, 1.0, 1.0, hypervolume=3.5),
                                      CycleRecord(2, 4, 0.95, 1.0, 1.0, hypervolume=4.25)])
    figure = front_figure(record)
    assert legend_texts(figure) == ["cycle 1 (hypervolume 3.5)", "cycle 2 (hypervolume 4.25)", "cycle 3 (in progress)"]
    last = figure.axes[0].get_lines()[1]
    assert list(last.get_xdata()) == [0.5, 2.0] and list(last.get_ydata()) == [0.85, 0.95]  # T0, T1 dominated
    assert axis_labels(figure) == [("latency_ms (min)", "accuracy (max)")]
    assert cycles_figure(record).axes[0].get_lines()[0].get_ydata().tolist() == [3.5, 4.25]
    write_report_for(record, tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["files"]["front.png"] == "front.png"
    _check_png(tmp_path / "front.png")
    assert 'src="front.png"' in (tmp_path / "index.html").read_text()
