"""A small, fast, real NNI experiment with the GenSynth tuner, for the report tests and the web UI.

The trial (tests/fixtures/report/trial.py) computes its metrics from the parameters in
milliseconds, so a dozen trials finish in about half a minute of NNI scheduling.

    python scripts/small_experiment.py --record tests/fixtures/report   # re-record the fixture

`--record` runs the experiment to the end in a temporary working directory and copies its
db/nni.sqlite and checkpoint/gensynth/state.json (plus its id) into the given folder.
"""
from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]
FIXTURE_DIR = REPO / "tests" / "fixtures" / "report"
CONFIG = FIXTURE_DIR / "experiment.yml"
ENDED = ("DONE", "ERROR", "STOPPED")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def small_config(working_dir: Path, max_trials: Optional[int] = None, concurrency: Optional[int] = None) -> Any:
    """The fixture experiment's config, with this interpreter running the trial and the
    experiment's files under `working_dir`."""
    from nni.experiment import ExperimentConfig

    config = ExperimentConfig.load(str(CONFIG))
    config.trial_command = config.trial_command.replace("python3", sys.executable, 1)
    config.experiment_working_directory = str(working_dir)
    if max_trials is not None:
        config.max_trial_number = max_trials
    if concurrency is not None:
        config.trial_concurrency = concurrency
    return config


def start(working_dir: Path, port: Optional[int] = None, **overrides: Any) -> Any:
    """A started nni.experiment.Experiment (the caller stops it)."""
    from nni.experiment import Experiment

    experiment = Experiment(small_config(working_dir, **overrides))
    experiment.start(port or free_port())
    return experiment


def wait(experiment: Any, done: Any, timeout_s: float = 120.0, poll_s: float = 1.0) -> None:
    """Poll until `done(experiment)` is true; TimeoutError naming the status otherwise."""
    deadline = time.monotonic() + timeout_s
    while not done(experiment):
        status = experiment.get_status()
        if status in ("ERROR", "STOPPED"):
            raise RuntimeError(f"experiment {experiment.id} ended {status}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"experiment {experiment.id} not ready after {timeout_s:.0f} s (status {status})")
        time.sleep(poll_s)


def finished_trials(experiment: Any) -> int:
    """How many trials have reported a final result."""
    return sum(1 for job in experiment.list_trial_jobs() if job.finalMetricData)


def forget(experiment: Any) -> None:
    """Remove a stopped throw-away experiment from NNI's registry (~/nni-experiments/.experiment),
    so `nnictl experiment list` does not keep entries whose folders are gone."""
    from nni.tools.nnictl.config_utils import Experiments

    Experiments().remove_experiment(experiment.id)


def record(out_dir: Path) -> str:
    """Run the fixture experiment to DONE and copy its database and GenSynth state to `out_dir`."""
    with tempfile.TemporaryDirectory(prefix="gensynth-record-") as tmp:
        experiment = start(Path(tmp))
        try:
            wait(experiment, lambda e: e.get_status() == "DONE", timeout_s=600)
        finally:
            experiment.stop()
            forget(experiment)
        exp_dir = Path(tmp) / experiment.id
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(exp_dir / "db" / "nni.sqlite", out_dir / "nni.sqlite")
        shutil.copy(exp_dir / "checkpoint" / "gensynth" / "state.json", out_dir / "state.json")
        (out_dir / "recorded.json").write_text(json.dumps({"experiment_id": experiment.id}) + "\n")
        return experiment.id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, required=True, help="folder to copy the database and state into")
    args = parser.parse_args()
    print(f"recorded experiment {record(args.record)} into {args.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
