"""The demo runner's pieces that do not need a running experiment, and the example YAMLs."""
import json
import os
import sys
from pathlib import Path

import pytest
from nni.experiment import ExperimentConfig

from nni_gensynth import demo
from nni_gensynth.demo import TrialSummary, best_feasible, check_constraints_agree, format_table, progress_line

REPO = Path(__file__).resolve().parents[1]


def trial(tid, status="SUCCEEDED", **metrics):
    return TrialSummary(tid, status, {"stem_width": 8, "lr": 0.01}, metrics)


TRIALS = [
    trial("a", accuracy=0.97, latency_ms=0.04, feasible=True, params=1000, macs=20000, netscore=70.0, arch="stem8|x"),
    trial("b", accuracy=0.99, latency_ms=0.09, feasible=False, params=9000, macs=90000, netscore=60.0),
    trial("c", accuracy=0.97, latency_ms=0.03, feasible=True, params=800, macs=10000, netscore=72.0),
    trial("d", status="FAILED"),
    trial("e", status="RUNNING"),
]


def test_best_feasible_orders_by_accuracy_then_latency_and_skips_infeasible():
    assert [t.trial_id for t in best_feasible(TRIALS)] == ["c", "a"]
    assert best_feasible(TRIALS, 1)[0].trial_id == "c"


def test_table_and_progress_line_show_the_numbers():
    table = format_table(best_feasible(TRIALS))
    assert "0.9700" in table and "0.030" in table and "stem8|x" in table and "lr=0.01" in table
    line = progress_line("RUNNING", TRIALS, 24, 12.0)
    assert "4/24 done" in line and "3 succeeded" in line and "1 failed" in line and "1 running" in line
    assert "0.9700" in line and "trial c" in line


@pytest.mark.parametrize("name", ["gensynth.yml", "tpe.yml"])
def test_example_configs_resolve_paths_against_their_folder(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # NNI must not resolve against the working directory
    config = ExperimentConfig.load(str(REPO / "examples" / name)).canonical_copy()
    assert Path(config.search_space_file) == REPO / "search_spaces" / "mobilenet_macro.json"
    assert Path(config.trial_code_directory) == REPO
    assert config.trial_command.startswith("python3 -m nni_gensynth.trial")
    assert config.trial_concurrency == 2 and 20 <= config.max_trial_number <= 30
    assert check_constraints_agree(config) is None  # trial and tuner agree on the requirements


def test_disagreeing_constraints_are_reported():
    config = ExperimentConfig.load(str(REPO / "examples" / "gensynth.yml"))
    config.trial_command = config.trial_command.replace("0.05", "0.5")
    assert "differ" in check_constraints_agree(config)


def test_interpreter_bin_goes_first_on_path(monkeypatch):
    monkeypatch.setenv("PATH", os.pathsep.join(["/usr/bin", str(Path(sys.executable).parent)]))
    demo.ensure_interpreter_on_path()
    assert os.environ["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert os.environ["PATH"].count(str(Path(sys.executable).parent)) == 1


def test_write_report_hook_saves_trials(tmp_path):
    path = demo.write_report("exp1", TRIALS, tmp_path)
    saved = json.loads(path.read_text())
    assert saved["experiment_id"] == "exp1" and len(saved["trials"]) == len(TRIALS)


def test_missing_config_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yml"):
        demo.run_demo(tmp_path / "nope.yml")


def test_real_experiment_with_bad_classargs_fails_loudly_and_stops(tmp_path, capsys):
    """A real NNI run: GenSynth rejects a bad optimize_mode in __init__, the experiment ends ERROR,
    the demo names the reason, exits non-zero, and leaves no NNI manager running."""
    import psutil

    config = tmp_path / "bad.yml"
    config.write_text(f"""
experimentName: demo-bad-classargs
searchSpaceFile: {REPO / 'search_spaces' / 'mobilenet_macro.json'}
trialCommand: python3 -m nni_gensynth.trial --epochs 1 --hw-profile none
trialCodeDirectory: {tmp_path}
experimentWorkingDirectory: {tmp_path / 'nni'}
trialConcurrency: 1
maxTrialNumber: 2
maxExperimentDuration: 3m
tuner:
  name: GenSynth
  classArgs: {{optimize_mode: sideways}}
trainingService:
  platform: local
""")
    code = demo.run_demo(config, timeout_s=120, poll_s=1)
    err = capsys.readouterr().err
    assert code != 0
    assert "ERROR" in err and "optimize_mode" in err
    managers = [p for p in psutil.process_iter(["cmdline"])
                if any(str(tmp_path / "nni") in part for part in (p.info["cmdline"] or []))]
    assert managers == []


def test_collect_trials_uses_the_reported_parameter_id_and_the_log_path(tmp_path):
    """NNI 3.0 may start two trials with each other's parameter sets: what a trial reported
    under names what ran. A failed trial's stderr is found through NNI's logPath."""
    from types import SimpleNamespace as NS

    from nni_gensynth.demo import _trial_stderr_tail, collect_trials

    (tmp_path / "trial.stderr").write_text("line 1\nValueError: boom\n")
    jobs = [
        NS(trialJobId="A", status="SUCCEEDED", logPath=f"file://localhost:{tmp_path}",
           hyperParameters=[NS(parameter_id=0, parameters={"w": 8})],
           finalMetricData=[NS(parameterId="1", data={"default": 0.9, "accuracy": 0.9})]),
        NS(trialJobId="B", status="FAILED", logPath=str(tmp_path),
           hyperParameters=[NS(parameter_id=1, parameters={"w": 64})], finalMetricData=[]),
    ]
    trials = collect_trials(NS(list_trial_jobs=lambda: jobs))
    assert trials[0].parameters == {"w": 64}  # reported under id 1, whose set is {"w": 64}
    assert trials[1].parameters == {"w": 64} and trials[1].metrics == {}
    assert "ValueError: boom" in _trial_stderr_tail(trials[0])
    assert "ValueError: boom" in _trial_stderr_tail(trials[1])
