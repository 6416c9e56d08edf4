"""train(): validation per epoch, test once at the end, bit-identical under the same seed."""
from dataclasses import replace

import pytest
import torch
from torch import nn

from nni_gensynth.data import load_digits
from nni_gensynth.stats import Accuracy
from nni_gensynth.training import (TrainConfig, TrainResult, count_correct, evaluate, evaluate_accuracy,
                                   seed_everything, train)

CONFIG = TrainConfig(epochs=2, lr=1e-2, batch_size=64, seed=0, threads=1)


@pytest.fixture(scope="module")
def digits():
    return load_digits(image_size=8)


def tiny_net() -> nn.Module:
    """Conv + BatchNorm + Dropout, so weight init, batch statistics and dropout masks all use RNG."""
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Dropout(0.2), nn.Linear(32, 10))


def trained(data, seed: int) -> tuple[nn.Module, TrainResult]:
    seed_everything(seed, threads=1)
    model = tiny_net()
    return model, train(model, data, replace(CONFIG, seed=seed), progress=False)


def test_same_seed_gives_identical_weights_and_accuracy(digits):
    model_a, a = trained(digits, 0)
    torch.rand(5)  # disturb the global RNG between the runs: train must not depend on it
    model_b, b = trained(digits, 0)
    assert a.val == b.val and a.test == b.test and a.history == b.history
    for (name, wa), wb in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(wa, wb), name


def test_different_seed_gives_different_weights(digits):
    model_a, _ = trained(digits, 0)
    model_b, _ = trained(digits, 1)
    assert not torch.equal(model_a[0].weight, model_b[0].weight)
    assert not torch.equal(model_a[-1].weight, model_b[-1].weight)


def test_result_reports_validation_and_test_separately(digits):
    seed_everything(0)
    model = tiny_net()
    epochs = []
    result = train(model, digits, CONFIG, on_epoch=lambda e, r: epochs.append((e, r)), progress=False)
    assert [e for e, _ in epochs] == [1, 2] and set(epochs[0][1]) == {"loss", "accuracy"}
    assert result.val.n == digits.sizes["val"] and result.test.n == digits.sizes["test"]
    assert result.accuracy == result.val.value == epochs[-1][1]["accuracy"]  # last epoch's validation
    assert result.test == evaluate_accuracy(model, digits.x_test, digits.y_test)
    assert result.val == evaluate_accuracy(model, digits.x_val, digits.y_val)
    assert result.test_accuracy == result.test.value
    assert result.threads == 1 and result.seed == 0 and result.torch_version == torch.__version__
    metrics = result.metrics()
    assert metrics["accuracy"] == result.val.value and metrics["accuracy_n"] == digits.sizes["val"]
    assert metrics["test_accuracy"] == result.test.value and metrics["test_accuracy_n"] == digits.sizes["test"]
    assert metrics["accuracy_low"] <= metrics["accuracy"] <= metrics["accuracy_high"]
    assert metrics["train_n"] == digits.sizes["train"] and metrics["train_threads"] == 1 and "torch_version" in metrics and "cpu_capability" in metrics


def test_threads_are_recorded(digits):
    seed_everything(0, threads=2)
    small = replace(digits, x_train=digits.x_train[:200], y_train=digits.y_train[:200])
    result = train(tiny_net(), small, replace(CONFIG, epochs=1, threads=2), progress=False)
    assert result.threads == 2
    seed_everything(0, threads=1)


class Constant(nn.Module):
    """Always answers class `k`."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(len(x), 10)
        logits[:, self.k] = 1.0
        return logits


def test_evaluate_counts_correct_answers():
    y = torch.tensor([3, 3, 1, 3, 0])
    x = torch.zeros(5, 1, 2, 2)
    assert count_correct(Constant(3), x, y, batch_size=2) == 3
    assert evaluate_accuracy(Constant(3), x, y) == Accuracy(3, 5)
    assert evaluate(Constant(3), x, y) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="empty"):
        evaluate(Constant(3), x[:0], y[:0])
    with pytest.raises(ValueError, match="labels"):
        count_correct(Constant(3), x, y[:4])


def test_seed_everything_rejects_non_integers():
    with pytest.raises(TypeError):
        seed_everything(1.5)
    with pytest.raises(TypeError):
        seed_everything(True)
