"""Deterministic CPU training and evaluation for trials.

`train` learns on the training split, reports validation accuracy after every epoch (what a
trial reports as `accuracy` and the tuner learns from) and measures test accuracy once, after
the last epoch (reported apart as `test_accuracy`, never given to the tuner). Accuracies come as
`nni_gensynth.stats.Accuracy` (correct out of n, with a Wilson interval); `.accuracy` stays the
validation fraction in [0, 1]. One thread by default so that two concurrent trials on a small
machine do not fight over cores. Progress goes to stderr through tqdm (NNI keeps a trial's
stderr in trial.stderr), one update per epoch.

Reproducibility: call `seed_everything(seed, threads)` before building the model (weight
init); `train` seeds again from `config.seed` (dropout and other global-RNG draws), fixes the
thread count, draws the batch order from its own seeded generator and asks torch for
deterministic kernels (`use_deterministic_algorithms(True, warn_only=True)`: an op without a
deterministic kernel warns instead of failing). Then the same seed, code, data and thread count
give bit-identical weights and accuracy on one machine. What can still differ between machines
(each recorded in TrainResult where torch tells it): the CPU instruction set torch dispatches
to (`cpu_capability`: AVX2, AVX512, NEON, ...) and the oneDNN/MKL kernels chosen for it, which
sum floating-point numbers in different orders; the torch version (`torch_version`), whose
kernels and initialisers change between releases; the thread count (`threads`), which splits
reductions differently; and the BLAS/oneDNN builds linked into torch.

Training hyperparameters may come from the search space: `lr` (Adam peak learning rate, one-cycle
schedule), `weight_decay`, `batch_size`; HYPERPARAMETER_KEYS lists them so that model builders
can skip them.
"""
from __future__ import annotations

import math
import operator
import random
import sys
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Optional

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .data import DataSplit
from .defaults import DEFAULT_EPOCHS
from .hardware.host_lease import batches_on_host
from .stats import Accuracy

HYPERPARAMETER_KEYS = frozenset({"lr", "weight_decay", "batch_size"})


@dataclass(frozen=True)
class TrainConfig:
    """How to train one candidate. `lr` is the one-cycle peak learning rate for Adam(W)."""

    epochs: int = DEFAULT_EPOCHS
    lr: float = 3e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {self.epochs!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {self.lr!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"threads must be a positive int, got {self.threads!r}")

    def with_parameters(self, parameters: Mapping[str, Any]) -> "TrainConfig":
        """This config with the hyperparameters found in a search-space parameter dict."""
        updates: dict[str, Any] = {}
        if "lr" in parameters:
            updates["lr"] = float(parameters["lr"])
        if "weight_decay" in parameters:
            updates["weight_decay"] = float(parameters["weight_decay"])
        if "batch_size" in parameters:
            value = parameters["batch_size"]
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            updates["batch_size"] = value
        return replace(self, **updates)


@dataclass(frozen=True)
class TrainResult:
    """Validation and test accuracy after the last epoch, per-epoch history (validation), and
    what reproducing the numbers depends on (seed, thread count, torch version, CPU capability)."""

    val: Accuracy
    test: Accuracy
    history: list[dict[str, float]] = field(default_factory=list)
    train_n: int = 0
    seed: int = 0
    threads: int = 1
    torch_version: str = torch.__version__
    cpu_capability: str = ""

    @property
    def accuracy(self) -> float:
        """Validation accuracy, fraction in [0, 1] (what trials report and tuners learn from)."""
        return self.val.value

    @property
    def test_accuracy(self) -> float:
        """Test accuracy, fraction in [0, 1] (reported apart, never given to the tuner)."""
        return self.test.value

    def metrics(self) -> dict[str, Any]:
        """Flat metrics for a trial's report: accuracy, accuracy_low, accuracy_high, accuracy_n
        (validation), the same with prefix test_accuracy (test), train_n, train_threads,
        torch_version, cpu_capability. Accuracies are fractions 0-1, intervals Wilson 95%."""
        return {**self.val.as_metrics("accuracy"), **self.test.as_metrics("test_accuracy"),
                "train_n": self.train_n, "train_threads": self.threads, "torch_version": self.torch_version,
                "cpu_capability": self.cpu_capability}


def seed_everything(seed: int, threads: int = 1) -> None:
    """Seed torch, numpy and random, fix torch's thread count and ask for deterministic kernels.

    Call it before building a model so that weight init is reproducible."""
    if isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    seed = operator.index(seed)  # ints and numpy ints; floats are a TypeError
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _cpu_capability() -> str:
    """The instruction set torch's CPU kernels dispatch to (e.g. "AVX2"), or "" if unknown."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return ""


@torch.no_grad()
def count_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> int:
    """Number of top-1 correct predictions of `model` on (x, y), in eval mode."""
    if len(x) == 0:
        raise ValueError("evaluate: empty evaluation set")
    if len(x) != len(y):
        raise ValueError(f"evaluate: {len(x)} inputs but {len(y)} labels")
    model.eval()
    correct = 0
    with batches_on_host() as next_batch:  # a candidate timed on this host gets idle cores
        for start in range(0, len(x), batch_size):
            next_batch()
            logits = model(x[start:start + batch_size])
            correct += int((logits.argmax(dim=1) == y[start:start + batch_size]).sum())
    return correct


def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> Accuracy:
    """Top-1 accuracy of `model` on (x, y) as correct out of n (with its interval)."""
    return Accuracy(count_correct(model, x, y, batch_size), len(x))


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy of `model` on (x, y) as a fraction in [0, 1]."""
    return evaluate_accuracy(model, x, y, batch_size).value


def train(model: nn.Module, data: DataSplit, config: TrainConfig = TrainConfig(),
          on_epoch: Optional[Callable[[int, dict[str, float]], None]] = None,
          progress: bool = True) -> TrainResult:
    """Train `model` on data's training split, evaluating on the validation split after each
    epoch and on the test split once at the end.

    The caller seeds before building the model (weight init); this re-seeds the global RNGs
    from `config.seed` and draws the batch order from its own generator.
    `on_epoch(epoch, {"loss", "accuracy"})` is called after each epoch with the validation
    accuracy (NNI intermediate results).
    """
    seed_everything(config.seed, config.threads)
    generator = torch.Generator().manual_seed(config.seed)
    n = len(data.x_train)
    steps_per_epoch = math.ceil(n / config.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, epochs=config.epochs,
                                                    steps_per_epoch=steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    history: list[dict[str, float]] = []
    bar = tqdm(range(config.epochs), desc="train", unit="epoch", file=sys.stderr,
               disable=not progress, mininterval=0, ascii=True)
    val = None
    for epoch in bar:
        model.train()
        order = torch.randperm(n, generator=generator)
        total_loss = 0.0
        with batches_on_host() as next_batch:  # a candidate timed on this host gets idle cores
            for start in range(0, n, config.batch_size):
                next_batch()
                idx = order[start:start + config.batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(data.x_train[idx]), data.y_train[idx])
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"training loss became {loss.item()} in epoch {epoch + 1} "
                                             f"(lr={config.lr})")
                loss.backward()
                optimizer.step()
                scheduler.step()
                total_loss += loss.item() * len(idx)
        val = evaluate_accuracy(model, data.x_val, data.y_val)
        record = {"loss": total_loss / n, "accuracy": val.value}
        history.append(record)
        bar.set_postfix(loss=f"{record['loss']:.4f}", acc=f"{val.value:.4f}", refresh=False)
        if on_epoch is not None:
            on_epoch(epoch + 1, record)
    bar.close()
    assert val is not None  # epochs >= 1 (TrainConfig)
    test = evaluate_accuracy(model, data.x_test, data.y_test)
    return TrainResult(val=val, test=test, history=history, train_n=n, seed=config.seed,
                       threads=torch.get_num_threads(),
                       torch_version=torch.__version__, cpu_capability=_cpu_capability())
