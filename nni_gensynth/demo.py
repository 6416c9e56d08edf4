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
import socket
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from .results.analysis import has_result, ranked_feasible, trial_summary
from .results.model import ExperimentRecord, TrialRecord

# NNI statuses: DONE ends well; these end badly; the two NO_MORE_TRIAL states are fine only
# while trials are still running.
FAILED_STATUSES = ("ERROR", "STOPPED", "STOPPING")
NO_MORE_TRIAL_STATUSES = ("NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL")
NO_MORE_TRIAL_GRACE_S = 60.0
RESULTS_DIR = Path("results")


class DemoError(RuntimeError):
    """The experiment did not end DONE; the message says why. `record`: the last state seen."""

    def __init__(self, message: str, record: Optional[ExperimentRecord] = None) -> None:
        super().__init__(message)
        self.record = record


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


def read_experiment(experiment: Any, workdir: Path) -> ExperimentRecord:
    """The running experiment through nni_gensynth.results (trials with the parameters they
    really ran, the tuner's resolved requirements)."""
    from .results import load_experiment

    return load_experiment(experiment.id, experiment_dir=workdir, port=experiment.port)


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(trials: Sequence[TrialRecord]) -> str:
    """A plain-text table of trials: id, accuracy, latency, params, MACs, NetScore, parameters."""
    header = f"{'trial':<8} {'accuracy':>8} {'lat_ms':>8} {'params':>8} {'macs':>10} {'netscore':>8}  parameters"
    lines = [header, "-" * len(header)]
    for t in trials:
        m = t.final or {}
        arch = m.get("arch") or json.dumps(t.parameters, sort_keys=True)
        extra = {k: v for k, v in t.parameters.items() if k in ("lr", "weight_decay", "batch_size")}
        extra_text = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items())
        params, macs = t.metric("params"), t.metric("macs")
        lines.append(f"{t.trial_id:<8} {_fmt(t.metric('accuracy'), '8.4f')} {_fmt(t.metric('latency_ms'), '8.3f')} "
                     f"{_fmt(None if params is None else int(params), '8d')} "
                     f"{_fmt(None if macs is None else int(macs), '10d')} {_fmt(t.metric('netscore'), '8.2f')}  "
                     f"{arch} {extra_text}".rstrip())
    return "\n".join(lines)


def progress_line(status: str, record: ExperimentRecord, max_trials: Optional[int], elapsed_s: float) -> str:
    counts: dict[str, int] = {}
    for t in record.trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    done = sum(v for k, v in counts.items() if k not in ("WAITING", "RUNNING", "UNKNOWN"))
    ranked = ranked_feasible(record)
    best = ranked[0] if ranked else None
    best_text = (f"best feasible {record.objective.metric} {_fmt(record.objective.value(best.final), '.4f')} "
                 f"(accuracy {_fmt(best.metric('accuracy'), '.4f')}, latency {_fmt(best.metric('latency_ms'), '.3f')} ms, "
                 f"trial {best.trial_id})" if best else "no feasible result yet")
    return (f"[demo] {elapsed_s:6.0f}s {status:<19} trials {done}/{max_trials or '?'} done: "
            f"{counts.get('SUCCEEDED', 0)} succeeded, {counts.get('FAILED', 0)} failed, "
            f"{counts.get('RUNNING', 0)} running; {best_text}")


def _trial_stderr_tail(trial: TrialRecord, lines: int = 15) -> str:
    if trial.trial_dir is None:
        return "(NNI gave no log path for this trial)"
    path = trial.trial_dir / "trial.stderr"
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path})"


def wait_for_end(experiment: Any, max_trials: Optional[int], timeout_s: float, poll_s: float,
                 workdir: Path) -> ExperimentRecord:
    """Poll until DONE; raise DemoError on ERROR/STOPPED, a stuck NO_MORE_TRIAL, or timeout."""
    from nni.experiment import rest

    start = time.monotonic()
    last_line = ""
    stuck_since: Optional[float] = None
    reported_failures: set[str] = set()
    record: Optional[ExperimentRecord] = None
    while True:
        elapsed = time.monotonic() - start
        try:
            check = rest.get(experiment.port, "/check-status")
            record = read_experiment(experiment, workdir)
        except Exception as exc:  # requests' ConnectionError and friends
            raise DemoError(f"NNI manager of experiment {experiment.id} stopped answering"
                            f"{' (it exited: stopped from outside, e.g. nnictl stop --all?)' if not _manager_alive(experiment) else ''}:"
                            f" {type(exc).__name__} (logs: {workdir / experiment.id / 'log'})", record) from None
        status = check.get("status", "UNKNOWN")
        line = progress_line(status, record, max_trials, elapsed)
        if line.split("s ", 1)[1] != last_line.split("s ", 1)[-1]:
            print(line, flush=True)
            last_line = line
        for t in record.trials:
            if t.status == "FAILED" and t.trial_id not in reported_failures:
                if not reported_failures:  # show why the first failure happened
                    print(f"[demo] trial {t.trial_id} FAILED; end of its trial.stderr:\n"
                          f"{_trial_stderr_tail(t)}", flush=True)
                reported_failures.add(t.trial_id)
        if status == "DONE":
            return record
        if status in FAILED_STATUSES:
            errors = _dispatcher_errors(workdir / experiment.id / "log" / "nnimanager.log")
            errors += [str(e) for e in check.get("errors") or [] if str(e) not in errors]
            raise DemoError(f"experiment {experiment.id} ended {status}: {'; '.join(map(str, errors)) or 'no reason given'}"
                            f" (logs: {workdir / experiment.id / 'log'})", record)
        active = sum(t.status in ("WAITING", "RUNNING") for t in record.trials)
        if status in NO_MORE_TRIAL_STATUSES and active == 0:
            stuck_since = stuck_since if stuck_since is not None else time.monotonic()
            if time.monotonic() - stuck_since > NO_MORE_TRIAL_GRACE_S:
                raise DemoError(f"experiment {experiment.id} sits in {status} with no trial running and "
                                f"{len(record.trials)}/{max_trials or '?'} trials created: the tuner stopped proposing",
                                record)
        else:
            stuck_since = None
        if elapsed > timeout_s:
            raise DemoError(f"experiment {experiment.id} did not finish within {timeout_s:.0f} s (status {status})",
                            record)
        time.sleep(poll_s)


def _dispatcher_errors(manager_log: Path) -> list[str]:
    """What the tuner said when it stopped the experiment ("Dispatcher error: ..." lines of NNI's
    manager log): NNI's status often shows only the later "Dispatcher stream error"."""
    marker = "Dispatcher error: "
    try:
        lines = manager_log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line.split(marker, 1)[1].strip() for line in lines if marker in line]


def write_report(record: ExperimentRecord, out_dir: Path = RESULTS_DIR, experiment_dir: Optional[Path] = None) -> Path:
    """The end-of-demo report: the trials as JSON (results/demo-<id>.json), and the experiment
    report of `gensynth report` (results/<id>/index.html, from the stopped experiment's database).
    A failing report is a warning, not a failed demo. Returns the JSON's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"demo-{record.experiment_id}.json"
    path.write_text(json.dumps({"experiment_id": record.experiment_id,
                                "requirements": record.constraints,
                                "trials": [trial_summary(record, t) for t in record.trials]},
                               indent=1, sort_keys=True, default=str))
    if experiment_dir is not None:
        try:
            from .results import write_report as write_experiment_report

            index = write_experiment_report(record.experiment_id, out_dir / record.experiment_id,
                                            experiment_dir=experiment_dir)
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
    outcome = 1
    try:
        experiment.start(port)
        wait_for_end(experiment, max_trials, timeout_s, poll_s, workdir)
        outcome = 0
    except DemoError as exc:
        print(f"[demo] FAILED: {exc}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("[demo] interrupted; stopping the experiment", file=sys.stderr, flush=True)
    finally:
        stop_experiment(experiment)
    wall = time.monotonic() - started
    record = _final_record(experiment.id, workdir)
    if record is None:
        print(f"[demo] experiment {experiment.id}: no record could be read (logs: {workdir / experiment.id / 'log'})",
              file=sys.stderr)
        return 1
    succeeded = sum(t.status == "SUCCEEDED" for t in record.trials)
    failed = sum(t.status == "FAILED" for t in record.trials)
    ranked = ranked_feasible(record)
    print(f"\n[demo] experiment {experiment.id}: {len(record.trials)} trials, {succeeded} succeeded, "
          f"{failed} failed, wall time {wall:.0f} s")
    if record.prototype_result:
        print(f"[demo] prototype (evaluated by the tuner first): {_prototype_line(record.prototype_result)}")
    print(f"[demo] requirements: {record.constraints or 'none'}")
    print(f"[demo] best feasible networks ({len(ranked)} feasible of "
          f"{sum(1 for t in record.trials if has_result(t))} with results):")
    print(format_table(ranked[:top]) if ranked else "  none")
    if ranked:
        print(f"[demo] best parameters: {json.dumps(ranked[0].parameters, sort_keys=True)}")
    report = write_report(record, experiment_dir=workdir)
    print(f"[demo] results: {report}")
    if outcome == 0 and succeeded == 0:
        print("[demo] FAILED: the experiment ended DONE but no trial succeeded", file=sys.stderr)
        outcome = 1
    return outcome


def _prototype_line(metrics: dict) -> str:
    parts = [f"{key} {metrics[key]:.4g}" for key in ("accuracy", "latency_ms", "params", "macs", "netscore")
             if isinstance(metrics.get(key), (int, float))]
    return ", ".join(parts)


def _final_record(experiment_id: str, workdir: Path) -> Optional[ExperimentRecord]:
    """The stopped experiment, read from its database (None when even that fails)."""
    from .results import load_experiment

    try:
        return load_experiment(experiment_id, experiment_dir=workdir)
    except Exception as exc:  # noqa: BLE001 - the summary is best effort
        print(f"[demo] warning: could not read experiment {experiment_id}: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return None


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
