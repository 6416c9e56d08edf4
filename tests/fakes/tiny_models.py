"""Small real models for transport tests: an ONNX MLP built with onnx.helper (no torch needed)
and a .tflite MLP converted with litert-torch."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def tiny_onnx(path: Path, width: int = 256, seed: int = 0) -> Path:
    """Input float32[1, 64] -> MatMul(64 x width) -> Relu -> MatMul(width x 10)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.standard_normal((64, width)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((width, 10)).astype(np.float32), "w2")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]),
         helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["y"])],
        "tiny_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        initializer=[w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def tiny_tflite(path: Path, width: int = 256) -> Path:
    """The same MLP shape as a .tflite file (litert-torch conversion, about a second)."""
    import torch
    import litert_torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(64, width), torch.nn.ReLU(), torch.nn.Linear(width, 10)).eval()
    path = Path(path)
    litert_torch.convert(module, (torch.zeros(1, 64),)).export(str(path))
    return path
