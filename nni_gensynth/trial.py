"""The trial NNI runs for every candidate: a thin command line over the evaluator.

    python -m nni_gensynth.trial [--parameters JSON] [--save-weights PATH] [--no-progress]
                                 [evaluation options: --builder --image-size --channels --data
                                  --hw-profile --precision --constraints --epochs --seed --threads
                                  --probe --probe-fraction --skip-infeasible --no-cache]

Parameters come from `nni.get_next_parameter()`, or from `--parameters` to run outside NNI.
The evaluation options make an `EvaluationSpec`; `Evaluator.evaluate` builds the network,
counts params and MACs, measures it on each hardware profile FIRST (stopping at the first broken
requirement: latency and energy do not depend on trained weights), then trains and evaluates it,
probes it, and returns the metrics reported here.

Final result (`nni.report_final_result`), a dict:
    default         accuracy if the network is feasible (meets --constraints), else 0.0 —
                    so tuners that only read `default` (TPE, Random, ...) optimise accuracy
                    subject to the constraints;
    accuracy        top-1 accuracy on the validation split, fraction 0-1 (None when
                    --skip-infeasible skipped training of a network measured infeasible), with
                    accuracy_low / accuracy_high (Wilson 95% interval) and accuracy_n;
    test_accuracy   the same on the test split (and its interval): for reports only; the tuner
                    never learns from it;
    latency_ms, latency_p90_ms, cv, energy_mj, energy_source, peak_mem_mb, backend, device,
    delegate, ...   the first profile's measurement (nni_gensynth.hardware); the other profiles'
                    prefixed with their backend (litert_latency_ms, ...); `delegate` is what really
                    ran the graph (xnnpack, none, CPUExecutionProvider, ...);
    int8_latency_ms, int8_energy_mj, ..., litert_int8_latency_ms, ...
                    with --precision int8|both (or a profile's `precision`): the same figures of
                    the static int8 model (calibrated on training images), measured before training;
    int8_accuracy   the trained network quantized to int8 for that profile's backend, run on this
                    host, on the validation split (with its interval), and test_int8_accuracy on
                    the test split (reports only); per profile: litert_int8_accuracy, ...;
    params, macs    raw counts (MACs = FLOPs / 2, see nni_gensynth.counting);
    netscore        NetScore in dB from accuracy %, params in M and MACs in G;
    feasible        bool: every constraint met by the measured/reported metrics;
    responses       probe responses after training (nni_gensynth.probing), {decision: {"target",
                    "weight"}}, when probing ran (default: networks with probe_sites());
    trained, arch, network (arch without skipped stages), arch_hash (measurement cache key), lr,
                    train_seconds, measure_seconds, split sizes and the training threads.
Per epoch `nni.report_intermediate_result({"default": accuracy, "accuracy", "loss"})`.
Outside NNI the final dict is also printed as JSON on the last line of stdout. An exception
prints its traceback to stderr and exits with status 1, which NNI marks as FAILED.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from typing import Optional, Sequence

from .evaluator import Evaluator, add_spec_arguments, json_object, spec_from_args
from .hardware.host_lease import cores_in_use


def _log(message: str) -> None:
    print(f"[trial] {message}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nni_gensynth.trial", description=__doc__.split("\n\n")[0])
    parser.add_argument("--parameters", help="parameter dict as JSON (instead of nni.get_next_parameter())")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    parser.add_argument("--save-weights", metavar="PATH", default=None,
                        help="save the trained state_dict there (under NNI, default: "
                             "$NNI_OUTPUT_DIR/model.pt, which `gensynth export` loads)")
    add_spec_arguments(parser)
    return parser


def _deliverable(metrics: dict) -> dict:
    """The metrics with no "//" in any text: NNI 3.0's dispatcher reads a result nested as JSON in
    JSON in JSON and strips "//..." as a comment there, so a result holding "ssh://..." never
    reaches the tuner (the trial would count as ended without a result)."""
    return {k: v.replace("//", "/") if isinstance(v, str) else v for k, v in metrics.items()}


def _nni_weights_path() -> Optional[str]:
    """$NNI_OUTPUT_DIR/model.pt inside an NNI trial (the trial's own folder), else None."""
    folder = os.environ.get("NNI_OUTPUT_DIR")
    return os.path.join(folder, "model.pt") if folder else None


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with cores_in_use():  # imports cannot pause: a local measurement waits for them instead
            import nni
            import torch  # noqa: F401  (the heavy import, under the lease)

            evaluator = Evaluator(spec_from_args(args))
        if args.parameters is not None:
            parameters = json_object(args.parameters, "--parameters")
        else:
            parameters = nni.get_next_parameter()
            if not parameters:
                raise ValueError("no parameters: nni.get_next_parameter() returned none "
                                 "(outside NNI pass --parameters JSON)")
        _log(f"parameters={json.dumps(parameters, sort_keys=True)}")
        metrics = _deliverable(evaluator.evaluate(parameters, reporter=nni, progress=not args.no_progress,
                                                  weights_path=args.save_weights or _nni_weights_path()))
        nni.report_final_result(metrics)
    except Exception as exc:  # a failed trial must say why and exit non-zero: NNI marks it FAILED
        traceback.print_exc(file=sys.stderr)
        if isinstance(exc, ImportError):
            _log(f"this interpreter ({sys.executable}) lacks {exc.name or 'a dependency'}: NNI runs trialCommand "
                 f"with the PATH of the shell that started it; activate the venv before `nnictl create` "
                 f"(or use `python -m nni_gensynth.demo`, which puts the venv first on PATH)")
        return 1
    print(json.dumps(metrics, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
