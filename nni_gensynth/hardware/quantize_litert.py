"""Static int8 .tflite through litert-torch's PT2E path: torch.export, ``prepare_pt2e`` with
litert-torch's PT2EQuantizer, calibration on training images, ``convert_pt2e``, then the
converter with that quantizer as its ``QuantConfig`` (full-integer static: int8 kernels, int8
inputs and outputs; never dynamic-range).
"""
from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from .calibration import CalibrationSet
from .quantize import step

BACKEND = "litert"
CALIBRATION_BATCH = 64  # images per calibration call: the histogram observers cost per call


def _quantizer() -> Any:
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config

    return PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))


def requantize_shared_outputs(graph_module: Any) -> int:
    """Give every consumer of a quantized output the dequantized value; returns the edges fixed.

    ``convert_pt2e`` leaves an edge in float32 when a quantized op's output feeds another
    annotated op directly (a residual add whose sum goes into the next block's add): the
    converter then runs that add in float between a DEQUANTIZE and a QUANTIZE. Routing the edge
    through the quantize node the producer already has makes it int8 like the others.
    """
    import torch

    quantize = torch.ops.quantized_decomposed.quantize_per_tensor.default
    dequantize = torch.ops.quantized_decomposed.dequantize_per_tensor.default
    graph = graph_module.graph
    fixed = 0
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target in (quantize, dequantize):
            continue
        for source in list(node.all_input_nodes):
            if source.op != "call_function" or source.target in (quantize, dequantize):
                continue
            quantized = next((user for user in source.users if user.target == quantize), None)
            if quantized is None:
                continue
            with graph.inserting_before(node):
                dequantized = graph.call_function(dequantize, (quantized, *quantized.args[1:]))
            node.replace_input_with(source, dequantized)
            fixed += 1
    if fixed:
        graph_module.recompile()
    return fixed


def _export_for_calibration(module: Any, example: Any) -> "tuple[Any, int]":
    """(exported module, calibration batch size): with a dynamic batch axis when the network
    allows one, so calibration runs CALIBRATION_BATCH images per call, else with a batch of 1.
    The converter exports the quantized module again at the example's batch of 1."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pair = torch.cat([example, example])  # a batch of 2: export specializes a batch of 1
            batch = torch.export.Dim("batch", min=1, max=1 << 16)
            return torch.export.export(module, (pair,), dynamic_shapes=({0: batch},)).module(), CALIBRATION_BATCH
        except Exception:  # noqa: BLE001 - e.g. a reshape to a fixed batch: calibrate one by one
            return torch.export.export(module, (example,)).module(), 1


def quantize_tflite(module: Any, calibration: CalibrationSet, target: Path) -> None:
    """Write ``module`` as a static int8 .tflite to ``target`` (QuantizationError naming the step)."""
    import torch

    example = torch.zeros(calibration.sample_shape, dtype=torch.float32)
    quantizer = _quantizer()
    with step(BACKEND, "torch.export"):
        exported, batch_size = _export_for_calibration(module.eval(), example)
    with step(BACKEND, "prepare_pt2e (placing observers)"):
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        prepared = prepare_pt2e(exported, quantizer)
    with step(BACKEND, "calibration"), torch.no_grad():
        for batch in calibration.batches(batch_size):
            prepared(torch.tensor(batch))
    with step(BACKEND, "convert_pt2e"):
        converted = convert_pt2e(prepared, fold_quantize=False)
        requantize_shared_outputs(converted)
    with step(BACKEND, "litert-torch conversion"):
        import litert_torch
        from litert_torch.quantize.quant_config import QuantConfig

        # litert-torch prints progress on stdout and the converter logs on fd 2: keep stdout for answers.
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            edge = litert_torch.convert(converted, (example,), quant_config=QuantConfig(pt2e_quantizer=quantizer))
            edge.export(os.fspath(target))
