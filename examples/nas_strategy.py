"""GenSynth as an NNI NAS strategy: a model space on the embedded digits, under a latency budget.

    .venv/bin/python examples/nas_strategy.py            # about 3.5 minutes on 2 cores

The model space is written with `nni.nas.nn.pytorch`: a stem of searchable width, then 1 to 3
blocks (`Repeat`), each a `LayerChoice` of a 3x3 convolution, a depthwise-separable convolution
of searchable kernel (a mutable nested inside a candidate) or a skip. GenSynthStrategy measures
every proposed network on the `host-cpu` profile (ONNX Runtime) *before* it is trained and trains
only those within the latency budget; each trained network reports its validation accuracy.
At the end the best feasible networks are printed with their measured latency.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import nni
import torch
from nni.nas.evaluator import FunctionalEvaluator
from nni.nas.experiment import NasExperiment, NasExperimentConfig
from nni.nas.nn.pytorch import LayerChoice, ModelSpace, MutableBatchNorm2d, MutableConv2d, MutableLinear, Repeat
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from nni_gensynth import GenSynthStrategy  # noqa: E402
from nni_gensynth.data import load_dataset  # noqa: E402
from nni_gensynth.training import TrainConfig, seed_everything, train  # noqa: E402

IMAGE_SIZE = 16
INPUT_SHAPE = (1, 1, IMAGE_SIZE, IMAGE_SIZE)


class SeparableConv(nn.Sequential):
    """Depthwise k x k, then pointwise 1 x 1, batch norm, ReLU."""

    def __init__(self, channels: nni.mutable.MutableExpression, kernel: nni.mutable.Categorical) -> None:
        super().__init__(MutableConv2d(channels, channels, kernel, padding="same", groups=channels, bias=False),
                         MutableConv2d(channels, channels, 1, bias=False), MutableBatchNorm2d(channels), nn.ReLU())


class DigitsSpace(ModelSpace, label_prefix="digits"):
    """Stem width, depth, and per block: conv3x3 | separable (kernel 3 or 5) | skip."""

    def __init__(self) -> None:
        super().__init__()
        width = nni.choice("width", [8, 16, 32, 64])
        self.stem = nn.Sequential(MutableConv2d(1, width, 3, padding=1, bias=False), MutableBatchNorm2d(width),
                                  nn.ReLU())

        def block(i: int) -> LayerChoice:
            return LayerChoice({
                "conv3x3": nn.Sequential(MutableConv2d(width, width, 3, padding=1, bias=False),
                                         MutableBatchNorm2d(width), nn.ReLU()),
                "separable": SeparableConv(width, nni.choice(f"kernel{i}", [3, 5])),
                "skip": nn.Identity(),
            }, label=f"block{i}")

        self.blocks = Repeat(block, nni.choice("depth", [1, 2, 3]))
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = MutableLinear(width * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.blocks(self.stem(x))).flatten(1))


@lru_cache(maxsize=1)
def digits():
    """scikit-learn's digits (embedded), 16x16 grey: train / validation / test splits."""
    return load_dataset(None, image_size=IMAGE_SIZE, channels=1)


def evaluate(model: nn.Module, epochs: int = 6) -> None:
    """Train a frozen network on the digits and report its validation accuracy (the whole dict
    reaches the strategy; NNI keeps `default`)."""
    seed_everything(0)
    for module in model.modules():  # the same weights for the same network, whatever was built before it
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    result = train(model, digits(), TrainConfig(epochs=epochs, lr=1e-2), progress=False)
    metrics = result.metrics()
    nni.report_final_result({"default": metrics["accuracy"], "accuracy": metrics["accuracy"],
                             "test_accuracy": metrics["test_accuracy"]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trainings", type=int, default=20, help="networks to train (default 20)")
    parser.add_argument("--max-latency-ms", type=float, default=0.05,
                        help="latency budget on host-cpu, ONNX Runtime, batch 1 (default 0.05 ms)")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs per network (default 6)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.getLogger("nni.nas.experiment.config").setLevel(logging.ERROR)  # "training_service ignored", each time

    strategy = GenSynthStrategy(objective="accuracy", constraints={"latency_ms": {"max": args.max_latency_ms}},
                                hw_profile="host-cpu", input_shape=INPUT_SHAPE, population_size=5, seed=args.seed)
    config = NasExperimentConfig("sequential", "raw", "local")
    config.max_trial_number = args.trainings
    config.experiment_working_directory = tempfile.mkdtemp(prefix="nas-strategy-")
    experiment = NasExperiment(DigitsSpace(), FunctionalEvaluator(evaluate, epochs=args.epochs), strategy, config)
    started = time.perf_counter()
    experiment.run()
    experiment.stop()
    minutes = (time.perf_counter() - started) / 60

    engine = strategy.gensynth
    trained = sum(1 for r in engine.records.values() if r.score is not None)
    print(f"\n[nas_strategy] {trained} networks trained, {len(engine.measurements)} measured on host-cpu, "
          f"{minutes:.1f} min; latency budget {args.max_latency_ms} ms")
    best = strategy.best(3)
    if not best:
        print("[nas_strategy] no trained network met the latency budget; try a larger --max-latency-ms")
        return 1
    print(f"{'accuracy':>9} {'test acc':>9} {'latency ms':>11} {'params':>8} {'MACs':>9}  network")
    for entry in best:
        m, sample = entry["metrics"], entry["sample"]
        used = sorted(strategy.search_space.used_labels(sample))
        network = " ".join(f"{label.split('/')[-1]}={sample[label]}" for label in used)
        print(f"{m['accuracy']:>9.4f} {m['test_accuracy']:>9.4f} {m['latency_ms']:>11.4f} {int(m['params']):>8} "
              f"{int(m['macs']):>9}  {network}")
    top = best[0]
    print(f"\nbest feasible: accuracy {top['metrics']['accuracy']:.4f}, measured latency "
          f"{top['metrics']['latency_ms']:.4f} ms (<= {args.max_latency_ms} ms) on host-cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
