"""Parameter and MAC counts with torch's own counter (torch.utils.flop_counter.FlopCounterMode).

MACs = FLOPs / 2: FlopCounterMode counts a multiply-accumulate as two FLOPs for the ops it
knows (convolution, linear/matmul, ...); element-wise ops, BatchNorm, activations and pooling
are not counted, which matches the NetScore convention of counting conv and linear MACs.
Params = every element of `model.parameters()` (weights, biases, BatchNorm affine).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    """Number of parameter elements (trainable or not; buffers such as BN statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one forward pass on an input of `input_shape` (batch included)."""
    if len(input_shape) < 2 or any(int(d) < 1 for d in input_shape):
        raise ValueError(f"input_shape must be a full shape with a batch dimension, got {tuple(input_shape)}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(tuple(int(d) for d in input_shape)))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // 2


def count(model: nn.Module, input_shape: Sequence[int]) -> dict[str, int]:
    """{"params": ..., "macs": ...} for `model` on `input_shape`."""
    return {"params": count_params(model), "macs": count_macs(model, input_shape)}
