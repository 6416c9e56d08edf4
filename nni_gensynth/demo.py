"""`make demo`: run an NNI experiment from a YAML to the end and print the best feasible networks.

    python -m nni_gensynth.demo --config examples/gensynth.yml [--port P] [--timeout-s S]

Uses NNI's Python experiment API (`nni.experiment.Experiment`), so the NNI manager is this
process's child and is stopped at the end whatever happens (success, error, timeout, Ctrl-C).
Relative paths in the YAML resolve against the YAML's folder (`ExperimentConfig.load`).
NNI's local training service runs `trialCommand` in a shell with the PATH of the process that
started NNI; the demo puts this interpreter's bin folder first on PATH, so `python3` in the
trial command is the venv's python even when the venv is not activated.

Exit status 0 only if the experiment ends DONE with at least one successful trial.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from .results.assemble import as_int, trial_dir_from_log_path

# NNI statuses: DONE ends well; these end badly; the two NO_MORE_TRIAL states are fine only
# while trials are still running.
FAILED_STATUSES = ("ERROR", "STOPPED", "STOPPING")
NO_MORE_TRIAL_STATUSES = ("NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL")
NO_MORE_TRIAL_GRACE_S = 60.0
RESULTS_DIR = Path("results")


@dataclass
class TrialSummary:
    """One trial as the demo sees it: id, NNI status, parameters and final metrics (if any)."""

    trial_id: str
    status: str
    parameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    log_path: Optional[str] = None  # NNI's logPath: the trial's output folder

    @property
    def feasible(self) -> bool:
        return self.status == "SUCCEEDED" and bool(self.metrics.get("feasible"))


class DemoError(RuntimeError):
    """The experiment did not end DONE; the message says why. `trials`: the last ones seen."""

    def __init__(self, message: str, trials: Sequence["TrialSummary"] = ()) -> None:
        super().__init__(message)
        self.trials = list(trials)


def ensure_interpreter_on_path(executable: str = sys.executable) -> None:
    """Put the folder of `executable` first on PATH (inherited by the NNI manager and trials)."""
    bin_dir = str(Path(executable).parent)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if not parts or parts[0] != bin_dir:
        os.environ["PATH"] = os.pathsep.join([bin_dir] + [p for p in parts if p != bin_dir])


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _first(items: Sequence[Any]) -> Any:
    return items[0] if items else None


def collect_trials(experiment: Any) -> list[TrialSummary]:
    """Every trial of a running experiment with its parameters and final metrics.

    Parameters are looked up by the parameter id the trial *reported its result under*, not by
    the job's recorded hyper-parameters: NNI 3.0 can hand two trials started at the same moment
    each other's parameter sets, and then only the reported id names what really ran."""
    jobs = experiment.list_trial_jobs()
    by_parameter_id: dict[Any, dict] = {}
    for job in jobs:
        for hp in job.hyperParameters or []:
            by_parameter_id[as_int(hp.parameter_id)] = dict(hp.parameters)
    trials = []
    for job in jobs:
        final = _first(job.finalMetricData)
        metrics = final.data if final is not None else {}
        if not isinstance(metrics, dict):  # a tuner-only scalar result
            metrics = {"default": metrics}
        if final is not None and as_int(final.parameterId) in by_parameter_id:
            parameters = by_parameter_id[as_int(final.parameterId)]
        else:
            hp = _first(job.hyperParameters)
            parameters = dict(hp.parameters) if hp is not None else {}
        trials.append(TrialSummary(job.trialJobId, job.status, parameters, metrics, getattr(job, "logPath", None)))
    return trials


def best_feasible(trials: Sequence[TrialSummary], n: int = 5) -> list[TrialSummary]:
    """The n feasible, successful trials with the highest accuracy (ties: lower latency)."""
    ok = [t for t in trials if t.feasible and t.metrics.get("accuracy") is not None]
    return sorted(ok, key=lambda t: (-float(t.metrics["accuracy"]),
                                     float(t.metrics.get("latency_ms") or float("inf"))))[:n]


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(trials: Sequence[TrialSummary]) -> str:
    """A plain-text table of trials: id, accuracy, latency, params, MACs, NetScore, parameters."""
    header = f"{'trial':<8} {'accuracy':>8} {'lat_ms':>8} {'params':>8} {'macs':>10} {'netscore':>8}  parameters"
    lines = [header, "-" * len(header)]
    for t in trials:
        m = t.metrics
        arch = m.get("arch") or json.dumps({k: v for k, v in t.parameters.items()}, sort_keys=True)
        extra = {k: v for k, v in t.parameters.items() if k in ("lr", "weight_decay", "batch_size")}
        extra_text = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items())
        lines.append(f"{t.trial_id:<8} {_fmt(m.get('accuracy'), '8.4f')} {_fmt(m.get('latency_ms'), '8.3f')} "
                     f"{_fmt(m.get('params'), '8d')} {_fmt(m.get('macs'), '10d')} {_fmt(m.get('netscore'), '8.2f')}  "
                     f"{arch} {extra_text}".rstrip())
    return "\n".join(lines)


def progress_line(status: str, trials: Sequence[TrialSummary], max_trials: Optional[int], elapsed_s: float) -> str:
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    done = sum(v for k, v in counts.items() if k not in ("WAITING", "RUNNING", "UNKNOWN"))
    best = _first(best_feasible(trials, 1))
    best_text = (f"best feasible accuracy {best.metrics['accuracy']:.4f} "
                 f"(latency {_fmt(best.metrics.get('latency_ms'), '.3f')} ms, trial {best.trial_id})"
                 if best else "no feasible result yet")
    return (f"[demo] {elapsed_s:6.0f}s {status:<19} trials {done}/{max_trials or '?'} done: "
            f"{counts.get('SUCCEEDED', 0)} succeeded, {counts.get('FAILED', 0)} failed, "
            f"{counts.get('RUNNING', 0)} running; {best_text}")


def _trial_stderr_tail(trial: TrialSummary, lines: int = 15) -> str:
    folder = trial_dir_from_log_path(trial.log_path)
    if folder is None:
        return "(NNI gave no log path for this trial)"
    path = folder / "trial.stderr"
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path})"


def check_constraints_agree(config: Any) -> Optional[str]:
    """A warning when the trial's --constraints and the tuner's classArgs constraints differ."""
    tuner_args = (config.tuner.class_args or {}) if config.tuner is not None else {}
    tuner_constraints = tuner_args.get("constraints")
    words = shlex.split(config.trial_command)
    trial_constraints = None
    if "--constraints" in words[:-1]:
        try:
            trial_constraints = json.loads(words[words.index("--constraints") + 1])
        except json.JSONDecodeError:
            return None  # the trial itself will reject it with a clear message
    if tuner_constraints is not None and trial_constraints is not None and tuner_constraints != trial_constraints:
        return (f"the tuner's constraints {tuner_constraints} differ from the trial's --constraints "
                f"{trial_constraints}: 'feasible' in the results follows the trial's")
    return None


def wait_for_end(experiment: Any, max_trials: Optional[int], timeout_s: float, poll_s: float,
                 workdir: Path) -> list[TrialSummary]:
    """Poll until DONE; raise DemoError on ERROR/STOPPED, a stuck NO_MORE_TRIAL, or timeout."""
    from nni.experiment import rest

    start = time.monotonic()
    last_line = ""
    stuck_since: Optional[float] = None
    reported_failures: set[str] = set()
    trials: list[TrialSummary] = []
    while True:
        elapsed = time.monotonic() - start
        try:
            check = rest.get(experiment.port, "/check-status")
            trials = collect_trials(experiment)
        except Exception as exc:  # requests' ConnectionError and friends
            raise DemoError(f"NNI manager of experiment {experiment.id} stopped answering"
                            f"{' (it exited: stopped from outside, e.g. nnictl stop --all?)' if not _manager_alive(experiment) else ''}:"
                            f" {type(exc).__name__} (logs: {workdir / experiment.id / 'log'})", trials) from None
        status = check.get("status", "UNKNOWN")
        line = progress_line(status, trials, max_trials, elapsed)
        if line.split("s ", 1)[1] != last_line.split("s ", 1)[-1]:
            print(line, flush=True)
            last_line = line
        for t in trials:
            if t.status == "FAILED" and t.trial_id not in reported_failures:
                if not reported_failures:  # show why the first failure happened
                    print(f"[demo] trial {t.trial_id} FAILED; end of its trial.stderr:\n"
                          f"{_trial_stderr_tail(t)}", flush=True)
                reported_failures.add(t.trial_id)
        if status == "DONE":
            return trials
        if status in FAILED_STATUSES:
            errors = check.get("errors") or []
            raise DemoError(f"experiment {experiment.id} ended {status}: {'; '.join(map(str, errors)) or 'no reason given'}"
                            f" (logs: {workdir / experiment.id / 'log'})", trials)
        active = sum(t.status in ("WAITING", "RUNNING") for t in trials)
        if status in NO_MORE_TRIAL_STATUSES and active == 0:
            stuck_since = stuck_since if stuck_since is not None else time.monotonic()
            if time.monotonic() - stuck_since > NO_MORE_TRIAL_GRACE_S:
                raise DemoError(f"experiment {experiment.id} sits in {status} with no trial running and "
                                f"{len(trials)}/{max_trials or '?'} trials created: the tuner stopped proposing", trials)
        else:
            stuck_since = None
        if elapsed > timeout_s:
            raise DemoError(f"experiment {experiment.id} did not finish within {timeout_s:.0f} s (status {status})", trials)
        time.sleep(poll_s)


def write_report(experiment_id: str, trials: Sequence[TrialSummary], out_dir: Path = RESULTS_DIR,
                 experiment_dir: Optional[Path] = None) -> Path:
    """The end-of-demo report: the trials as JSON (results/demo-<id>.json), and the experiment
    report of `gensynth report` (results/<id>/index.html, from the stopped experiment's database).
    A failing report is a warning, not a failed demo. Returns the JSON's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"demo-{experiment_id}.json"
    path.write_text(json.dumps({"experiment_id": experiment_id,
                                "trials": [t.__dict__ for t in trials]}, indent=1, sort_keys=True))
    if experiment_dir is not None:
        try:
            from .results import write_report as write_experiment_report

            index = write_experiment_report(experiment_id, out_dir / experiment_id, experiment_dir=experiment_dir)
            print(f"[demo] report: {index}", flush=True)
        except Exception as exc:  # the demo's own results are already saved
            print(f"[demo] warning: the experiment report was not written: {type(exc).__name__}: {exc}",
                  file=sys.stderr, flush=True)
    return path


def run_demo(config_path: str | Path, port: Optional[int] = None, timeout_s: Optional[float] = None,
             poll_s: float = 5.0, top: int = 5) -> int:
    """Run the experiment in `config_path` to the end; print progress and the best feasible networks."""
    from nni.experiment import Experiment, ExperimentConfig

    config_path = Path(config_path)
    if not config_path.is_file():
        raise FileNotFoundError(f"experiment config {config_path} not found")
    ensure_interpreter_on_path()
    config = ExperimentConfig.load(str(config_path))
    warning = check_constraints_agree(config)
    if warning:
        print(f"[demo] warning: {warning}", flush=True)
    max_trials = config.max_trial_number
    if timeout_s is None:
        duration = config.max_experiment_duration
        timeout_s = (_seconds(duration) + 300.0) if duration else 3600.0
    port = port or free_port()
    experiment = Experiment(config)
    workdir = Path(experiment.config.canonical_copy().experiment_working_directory)
    started = time.monotonic()
    print(f"[demo] experiment {experiment.id}: {config_path} on port {port} "
          f"(web UI http://127.0.0.1:{port}), timeout {timeout_s:.0f} s", flush=True)
    trials: list[TrialSummary] = []
    outcome = 1
    try:
        experiment.start(port)
        trials = wait_for_end(experiment, max_trials, timeout_s, poll_s, workdir)
        outcome = 0
    except DemoError as exc:
        print(f"[demo] FAILED: {exc}", file=sys.stderr, flush=True)
        trials = _safe_collect(experiment) or exc.trials
    except KeyboardInterrupt:
        print("[demo] interrupted; stopping the experiment", file=sys.stderr, flush=True)
        trials = _safe_collect(experiment) or trials
    finally:
        stop_experiment(experiment)
    wall = time.monotonic() - started
    succeeded = sum(t.status == "SUCCEEDED" for t in trials)
    failed = sum(t.status == "FAILED" for t in trials)
    best = best_feasible(trials, top)
    print(f"\n[demo] experiment {experiment.id}: {len(trials)} trials, {succeeded} succeeded, {failed} failed, "
          f"wall time {wall:.0f} s")
    print(f"[demo] best feasible networks ({sum(t.feasible for t in trials)} feasible):")
    print(format_table(best) if best else "  none")
    if best:
        print(f"[demo] best parameters: {json.dumps(best[0].parameters, sort_keys=True)}")
    report = write_report(experiment.id, trials, experiment_dir=workdir)
    print(f"[demo] results: {report}")
    if outcome == 0 and succeeded == 0:
        print("[demo] FAILED: the experiment ended DONE but no trial succeeded", file=sys.stderr)
        outcome = 1
    return outcome


def _manager_alive(experiment: Any) -> bool:
    proc = getattr(experiment, "_proc", None)
    return proc is not None and proc.poll() is None


def stop_experiment(experiment: Any) -> None:
    """Stop the experiment and its NNI manager (and so its trials); nothing is left running."""
    if experiment.port is None:
        return
    if _manager_alive(experiment):
        experiment.stop()
    else:  # already gone: nothing to ask over REST, just forget it
        experiment.port = None
        experiment._proc = None


def _safe_collect(experiment: Any) -> list[TrialSummary]:
    try:
        return collect_trials(experiment) if experiment.port is not None else []
    except Exception:  # the manager may already be gone; the summary is best effort
        return []


def _seconds(duration: Any) -> float:
    """NNI durations are canonicalised to seconds (number) or given as '10m', '1h', '30s', '2d'."""
    if isinstance(duration, (int, float)):
        return float(duration)
    text = str(duration).strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(text[:-1]) * units[text[-1]] if text and text[-1] in units else float(text)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nni_gensynth.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="examples/gensynth.yml", help="NNI experiment YAML (config v2)")
    parser.add_argument("--port", type=int, default=None, help="NNI manager / web UI port (default: a free one)")
    parser.add_argument("--timeout-s", type=float, default=None,
                        help="give up after this many seconds (default: maxExperimentDuration + 5 min)")
    parser.add_argument("--poll-s", type=float, default=5.0, help="seconds between status polls")
    parser.add_argument("--top", type=int, default=5, help="how many best feasible networks to print")
    args = parser.parse_args(argv)
    return run_demo(args.config, port=args.port, timeout_s=args.timeout_s, poll_s=args.poll_s, top=args.top)


if __name__ == "__main__":
    sys.exit(main())
