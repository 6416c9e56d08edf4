"""Deterministic CPU training and evaluation for trials.

Seeded (weights, batch order), one thread by default so that two concurrent trials on a small
machine do not fight over cores. Progress goes to stderr through tqdm (NNI keeps a trial's
stderr in trial.stderr), one update per epoch. Accuracy is returned as a fraction in [0, 1].

Training hyperparameters may come from the search space: `lr` (Adam peak learning rate, one-cycle
schedule), `weight_decay`, `batch_size`; HYPERPARAMETER_KEYS lists them so that model builders
can skip them.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Optional

import torch
from torch import nn
from tqdm import tqdm

from .data import DataSplit

HYPERPARAMETER_KEYS = frozenset({"lr", "weight_decay", "batch_size"})


@dataclass(frozen=True)
class TrainConfig:
    """How to train one candidate. `lr` is the one-cycle peak learning rate for Adam(W)."""

    epochs: int = 8
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


@dataclass
class TrainResult:
    """Held-out accuracy (fraction 0-1) after the last epoch, and per-epoch history."""

    accuracy: float
    history: list[dict[str, float]] = field(default_factory=list)


def seed_everything(seed: int, threads: int = 1) -> None:
    """Fix torch's RNG and thread count, and ask for deterministic kernels."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy of `model` on (x, y) as a fraction in [0, 1]."""
    if len(x) == 0:
        raise ValueError("evaluate: empty evaluation set")
    model.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = model(x[start:start + batch_size])
        correct += int((logits.argmax(dim=1) == y[start:start + batch_size]).sum())
    return correct / len(x)


def train(model: nn.Module, data: DataSplit, config: TrainConfig = TrainConfig(),
          on_epoch: Optional[Callable[[int, dict[str, float]], None]] = None,
          progress: bool = True) -> TrainResult:
    """Train `model` on data's training split, evaluating on the held-out split after each epoch.

    The caller seeds before building the model (weight init); this seeds the batch order.
    `on_epoch(epoch, {"loss", "accuracy"})` is called after each epoch (NNI intermediate results).
    """
    torch.set_num_threads(config.threads)
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
    accuracy = 0.0
    for epoch in bar:
        model.train()
        order = torch.randperm(n, generator=generator)
        total_loss = 0.0
        for start in range(0, n, config.batch_size):
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
        accuracy = evaluate(model, data.x_test, data.y_test)
        record = {"loss": total_loss / n, "accuracy": accuracy}
        history.append(record)
        bar.set_postfix(loss=f"{record['loss']:.4f}", acc=f"{accuracy:.4f}", refresh=False)
        if on_epoch is not None:
            on_epoch(epoch + 1, record)
    bar.close()
    return TrainResult(accuracy=accuracy, history=history)
