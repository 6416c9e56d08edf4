"""The demo runner's pieces that do not need a running experiment, and the example YAMLs."""
import json
import os
import sys
from pathlib import Path

import pytest
from nni.experiment import ExperimentConfig

from nni_gensynth import demo
from nni_gensynth.demo import format_table, progress_line
from nni_gensynth.results.analysis import ranked_feasible
from nni_gensynth.results.model import ExperimentRecord, TrialRecord

REPO = Path(__file__).resolve().parents[1]


def trial(tid, status="SUCCEEDED", **metrics):
    return TrialRecord(tid, status, parameters={"stem_width": 8, "lr": 0.01},
                       final=metrics or None if status == "SUCCEEDED" else None)


def record(trials, constraints=None):
    config = {"tuner": {"name": "GenSynth", "classArgs": {"objective": "accuracy",
                                                           "constraints": constraints or {"latency_ms": {"max": 0.05}}}}}
    return ExperimentRecord("exp1", "rest", None, config, list(trials))


TRIALS = [
    trial("a", accuracy=0.97, latency_ms=0.04, feasible=True, params=1000, macs=20000, netscore=70.0, arch="stem8|x"),
    trial("b", accuracy=0.99, latency_ms=0.09, feasible=False, params=9000, macs=90000, netscore=60.0),
    trial("c", accuracy=0.97, latency_ms=0.03, feasible=True, params=800, macs=10000, netscore=72.0),
    trial("d", status="FAILED"),
    trial("e", status="RUNNING"),
]


def test_the_demo_ranks_through_the_results_package():
    """One ranking of 'best feasible' (nni_gensynth.results.analysis), judged on the tuner's
    requirements: ties on accuracy go to the lower latency; b breaks the latency bound."""
    assert [t.trial_id for t in ranked_feasible(record(TRIALS))] == ["c", "a"]


def test_table_and_progress_line_show_the_numbers():
    table = format_table(ranked_feasible(record(TRIALS)))
    assert "0.9700" in table and "0.030" in table and "stem8|x" in table and "lr=0.01" in table
    line = progress_line("RUNNING", record(TRIALS), 24, 12.0)
    assert "4/24 done" in line and "3 succeeded" in line and "1 failed" in line and "1 running" in line
    assert "0.9700" in line and "trial c" in line


@pytest.mark.parametrize("name", ["gensynth.yml", "tpe.yml", "synthesis.yml"])
def test_example_configs_resolve_paths_against_their_folder(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # NNI must not resolve against the working directory
    config = ExperimentConfig.load(str(REPO / "examples" / name)).canonical_copy()
    assert Path(config.search_space_file).parent == REPO / "search_spaces"
    assert Path(config.trial_code_directory) == REPO
    assert config.trial_command.startswith("python3 -m nni_gensynth.trial")
    assert 1 <= config.trial_concurrency <= 2 and 20 <= config.max_trial_number <= 30


def test_the_synthesis_example_states_requirements_relative_to_its_prototype():
    """examples/synthesis.yml: the tuner accepts its classArgs as they are, and its trial command
    builds the prototype's space at 32x32x3, probing, on ONNX Runtime and LiteRT."""
    import yaml

    from nni_gensynth import GenSynthTuner
    from nni_gensynth.engine.relative import split_relative
    from nni_gensynth.evaluator import spec_from_trial_command

    config = yaml.safe_load((REPO / "examples" / "synthesis.yml").read_text())
    args = config["tuner"]["classArgs"]
    assert set(split_relative(args["constraints"])[1]) == {"accuracy", "latency_ms", "macs", "params"}
    tuner = GenSynthTuner(**args)
    assert tuner.prototype_parameters and tuner.requirements.to_config() == {}  # resolved once evaluated
    spec = spec_from_trial_command(config["trialCommand"])
    assert spec.builder == "mobilenetv2" and spec.input_shape == (1, 3, 32, 32) and spec.probe
    assert spec.hw_profiles == ("host-cpu", "host-tflite")


def test_interpreter_bin_goes_first_on_path(monkeypatch):
    monkeypatch.setenv("PATH", os.pathsep.join(["/usr/bin", str(Path(sys.executable).parent)]))
    demo.ensure_interpreter_on_path()
    assert os.environ["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert os.environ["PATH"].count(str(Path(sys.executable).parent)) == 1


def test_write_report_hook_saves_trials(tmp_path):
    path = demo.write_report(record(TRIALS), tmp_path)
    saved = json.loads(path.read_text())
    assert saved["experiment_id"] == "exp1" and len(saved["trials"]) == len(TRIALS)
    assert saved["requirements"] == {"latency_ms": {"max": 0.05}}


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


def test_a_failed_trials_stderr_is_found_through_its_folder(tmp_path):
    from nni_gensynth.demo import _trial_stderr_tail

    (tmp_path / "trial.stderr").write_text("line 1\nValueError: boom\n")
    assert "ValueError: boom" in _trial_stderr_tail(TrialRecord("B", "FAILED", trial_dir=tmp_path))
    assert "no log path" in _trial_stderr_tail(TrialRecord("C", "FAILED"))
