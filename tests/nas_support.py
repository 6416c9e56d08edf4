"""Small NNI model spaces, evaluators and a runner for the NAS strategy tests.

Top-level names only: NNI's training-service trials import them by module path (tests/ is the
trial code directory of the end-to-end test).
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Optional

import nni
import torch
from nni.mutable import ExpressionConstraint
from nni.nas.evaluator import FunctionalEvaluator
from nni.nas.nn.pytorch import LayerChoice, ModelSpace, MutableConv2d, MutableDropout, MutableLinear, Repeat
from nni.nas.space import model_context
from torch import nn

INPUT_SHAPE = (1, 1, 8, 8)


class ToySpace(ModelSpace, label_prefix="toy"):
    """Categorical width and depth, a Numerical dropout (unless not `numerical`: NNI's TPE strategy
    takes choices only), a LayerChoice whose conv candidate has its own kernel (nested), and, when
    `constrained`, width * depth <= 16 (an ExpressionConstraint)."""

    def __init__(self, constrained: bool = True, numerical: bool = True) -> None:
        super().__init__()
        width = nni.choice("width", [4, 8, 16])
        depth = nni.choice("depth", [1, 2, 3])
        if constrained:
            self.add_mutable(ExpressionConstraint(width * depth <= 16, label="budget"))
        self.stem = MutableConv2d(1, width, 3, padding=1)
        self.blocks = Repeat(lambda i: MutableConv2d(width, width, 3, padding=1), depth)
        self.block = LayerChoice({
            "conv": MutableConv2d(width, width, nni.choice("kernel", [1, 3, 5]), padding="same"),
            "pool": nn.MaxPool2d(3, 1, 1),
            "skip": nn.Identity(),
        }, label="block")
        self.drop = MutableDropout(nni.uniform("dropout", 0.0, 0.5) if numerical else 0.0)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = MutableLinear(width, 10)

    def freeze(self, sample: Mapping[str, Any]) -> nn.Module:
        """NNI's recipe for a space with mutables of its own (the constraint): rebuild in context."""
        with model_context(sample):
            return self.__class__(*self.trace_args, **self.trace_kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.pool(self.block(self.blocks(self.stem(x))))).flatten(1))


def toy_accuracy(sample: Mapping[str, Any]) -> float:
    """A made-up accuracy that grows with width, depth and kernel and favours the conv block."""
    width, depth = sample["toy/width"], sample["toy/depth"]
    block = {"conv": 0.1 + 0.02 * sample["toy/kernel"], "pool": 0.05, "skip": 0.0}[sample["toy/block"]]
    return round(0.5 + 0.015 * width + 0.03 * depth + block - 0.1 * sample.get("toy/dropout", 0.0), 6)


def toy_latency(sample: Mapping[str, Any]) -> dict[str, float]:
    """A made-up device: latency in ms grows with width, depth and the conv kernel."""
    kernel = sample["toy/kernel"] if sample["toy/block"] == "conv" else 1
    return {"latency_ms": round(0.1 * sample["toy/width"] * sample["toy/depth"] * kernel / 3, 6)}


def report_toy(model: nn.Module) -> None:
    """The toy evaluation: reports a dict whose `default` is 0, so only the event dict carries the
    accuracy (NNI's model.metric keeps only `default`)."""
    sample = nni.get_current_parameter().sample
    nni.report_final_result({"default": 0.0, "accuracy": toy_accuracy(sample), **toy_latency(sample)})


def run_sequential(strategy: Any, evaluate: Any = report_toy, trials: int = 8, space: Optional[ModelSpace] = None,
                   workdir: Optional[Path] = None, experiment_id: Optional[str] = None, resume: bool = False,
                   **evaluator_kwargs: Any) -> Any:
    """A real NasExperiment on the sequential engine (raw format); returns it, stopped."""
    from nni.nas.experiment import NasExperiment, NasExperimentConfig

    logging.getLogger("nni.nas.experiment.config").setLevel(logging.ERROR)
    config = NasExperimentConfig("sequential", "raw", "local")
    config.max_trial_number = trials
    config.execution_engine.continue_on_failure = True
    config.experiment_working_directory = str(workdir or tempfile.mkdtemp(prefix="nas-test-"))
    experiment = NasExperiment(space if space is not None else ToySpace(), FunctionalEvaluator(evaluate, **evaluator_kwargs),
                               strategy, config, id=experiment_id)
    try:
        experiment.resume() if resume else experiment.run()
    except BaseException:
        experiment.stop()
        forget(experiment)
        raise
    experiment.stop()
    return experiment


def forget(experiment: Any) -> None:
    """Remove a finished experiment from NNI's experiment list and delete its folder."""
    from nni.tools.nnictl.config_utils import Experiments

    Experiments().remove_experiment(experiment.id)
    shutil.rmtree(Path(experiment.config.experiment_working_directory) / experiment.id, ignore_errors=True)


def run_training_service(port: int, workdir: str, trials: int = 4) -> dict:
    """GenSynthStrategy on NNI's default engine: a real NNI manager and trial processes (run with
    tests/ as the working directory, the trials' code directory). Returns what was learned."""
    from nni.nas.experiment import NasExperiment, NasExperimentConfig

    from nni_gensynth import GenSynthStrategy

    strategy = GenSynthStrategy(objective="accuracy", constraints={"latency_ms": {"max": 2.0}}, profiler=toy_latency,
                                seed=0, population_size=2)
    config = NasExperimentConfig("ts", "simplified", "local")
    config.max_trial_number = trials
    config.trial_concurrency = 2
    config.experiment_working_directory = workdir
    experiment = NasExperiment(ToySpace(), FunctionalEvaluator(report_toy), strategy, config)
    try:
        experiment.run(port=port)
        jobs = [job.status for job in experiment.list_trial_jobs()]
        space = strategy.search_space
        records = [{"sample": space.to_sample(r.arch), "metrics": r.metrics, "trained": r.score is not None}
                   for r in strategy.gensynth.records.values()]
        return {"status": experiment.get_status(), "jobs": jobs, "records": records, "state": strategy.state_dict()}
    finally:
        experiment.stop()
        forget(experiment)
