"""Static int8 ONNX through ONNX Runtime: the float32 export (``export.write_onnx``, with the
module's current weights), then ``onnxruntime.quantization.quantize_static`` in QDQ format with
per-channel weights (uint8 activations, see ``quantize.RECIPES``), fed by a
``CalibrationDataReader`` over training images.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

from .calibration import CalibrationSet
from .quantize import step

BACKEND = "onnxruntime"
INPUT_NAME = "input"  # the name export.write_onnx gives the model's input


def _reader(calibration: CalibrationSet) -> Any:
    """A CalibrationDataReader that hands out the calibration images one feed at a time."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds: Iterator[dict] = iter({INPUT_NAME: batch} for batch in calibration.batches())

        def get_next(self) -> Optional[dict]:
            return next(self._feeds, None)

    return Reader()


def unshare_initializers(path: Path) -> int:
    """Give every use of an initializer its own copy, in place; returns the copies made.

    The torch exporter stores equal constants once and hands them out through Identity nodes:
    an untrained network's folded batch-norm biases are all zeros, so several convolutions share
    one bias. ``quantize_static`` then quantizes that bias with one scale, which can match only
    one of its convolutions, and ONNX Runtime runs the others as float32 Conv. Copies fix it.
    """
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    aliases = {node.output[0]: node.input[0] for node in graph.node
               if node.op_type == "Identity" and node.input[0] in initializers}
    uses: dict = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            source = aliases.get(name, name)
            if source in initializers and node.op_type != "Identity":
                uses.setdefault(source, []).append((node, i))
    copies = 0
    for source, users in uses.items():
        for k, (node, i) in enumerate(users):
            if k == 0:  # the first use keeps the original
                node.input[i] = source
                continue
            copy = onnx.TensorProto()
            copy.CopyFrom(initializers[source])
            copy.name = f"{source}/use{k}"
            graph.initializer.append(copy)
            node.input[i] = copy.name
            copies += 1
    kept = [node for node in graph.node if not (node.op_type == "Identity" and node.output[0] in aliases)]
    del graph.node[:]
    graph.node.extend(kept)
    onnx.save(model, str(path))
    return copies


def quantize_onnx(module: Any, calibration: CalibrationSet, target: Path) -> None:
    """Write ``module`` as a QDQ int8 .onnx to ``target`` (QuantizationError naming the step)."""
    import onnxruntime
    import torch
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from .export import write_onnx

    with tempfile.TemporaryDirectory(prefix="gensynth-int8-") as folder:
        float_path = Path(folder) / "float32.onnx"
        with step(BACKEND, "the float32 ONNX export"):
            write_onnx(module.eval(), torch.zeros(calibration.sample_shape, dtype=torch.float32), float_path)
            unshare_initializers(float_path)
        # the calibration sessions warn about every initializer they prune: errors only
        onnxruntime.set_default_logger_severity(3)
        with step(BACKEND, "quantize_static"):
            quantize_static(str(float_path), str(target), _reader(calibration), quant_format=QuantFormat.QDQ,
                            per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
