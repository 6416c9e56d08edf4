"""Static int8 export on both backends, for every shipped builder, on the real toolchains of this
CPU: the integer kernels are read from the files (the .tflite through LiteRT's own interpreter
with no delegate, the .onnx through onnx and through the graph ONNX Runtime really runs), the
models run, and their accuracy on digits stays within 2 points of the float network's. A network
that cannot be quantized is a clear error naming its layer."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from nni_gensynth.evaluator import EvaluationSpec, Evaluator
from nni_gensynth.evaluator.int8 import file_accuracy
from nni_gensynth.hardware.calibration import from_noise, from_training
from nni_gensynth.hardware.export import export_model
from nni_gensynth.hardware.kernels import kernel_report
from nni_gensynth.hardware.quantize import QuantizationError, weights_digest
from nni_gensynth.models import mobilenetv2, resnet

BACKENDS = ("onnxruntime", "litert")
MAX_DROP = 0.02  # 2 points of accuracy


def _smallest(space: dict) -> dict:
    return {name: entry["_value"][0] for name, entry in space.items()}


def _mobilenetv2() -> dict:
    """Small widths, and two residual blocks in a row in stage 3 (chained adds)."""
    params = _smallest(mobilenetv2.search_space())
    params.update({k: "skip" for k in params if k.endswith("_block")})
    params.update({k: 2 for k in params if k.endswith("_expansion")})
    return {**params, "b5_block": "keep", "b6_block": "keep", "lr": 0.01}


def _resnet18() -> dict:
    """Small widths; blocks 1 and 2 keep their identity shortcuts (residual adds)."""
    params = _smallest(resnet.search_space())
    params.update({k: "skip" for k in params if k.endswith("_block")})
    return {**params, "b1_block": "keep", "b2_block": "keep", "lr": 0.01}


MACRO = {"stem_width": 8, "stage1_depth": 1, "stage1_width": 8, "stage1_kernel": 3, "stage1_expansion": 1,
         "stage2_depth": 1, "stage2_width": 16, "stage2_kernel": 3, "stage2_expansion": 3,
         "stage3_depth": 1, "stage3_width": 24, "stage3_kernel": 5, "stage3_expansion": 3,
         "stage4_depth": 0, "stage4_width": 32, "stage4_kernel": 3, "stage4_expansion": 1, "lr": 0.01}
BUILDERS = {  # builder: (parameters, image size, channels)
    "macro_mobilenet": (MACRO, 16, 1),
    "mobilenetv2": (_mobilenetv2(), 32, 3),
    "resnet18": (_resnet18(), 32, 3),
}


@dataclasses.dataclass
class Trained:
    evaluator: Evaluator
    model: nn.Module
    val: float
    test: float
    exports: dict


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def trained(request, tmp_path_factory) -> Trained:
    """A network of each builder trained on digits, exported as int8 for both backends."""
    params, size, channels = BUILDERS[request.param]
    evaluator = Evaluator(EvaluationSpec(builder=request.param, image_size=size, channels=channels, hw_profiles=(),
                                         epochs=5))
    torch.manual_seed(0)
    model = evaluator.build(params)
    result = evaluator.train(model, params, progress=False)
    model.eval()
    folder = tmp_path_factory.mktemp(f"int8-{request.param}")
    exports = {backend: export_model(model, backend, evaluator.input_shape, precision="int8",
                                     calibration=evaluator.calibration(), directory=folder)
               for backend in BACKENDS}
    return Trained(evaluator, model, result.accuracy, result.test_accuracy, exports)


def test_the_tflite_runs_integer_kernels_end_to_end(trained):
    """Read by LiteRT itself, without any delegate: every convolution and the classifier take int8
    data and int8 weights, the model's input and output are int8, and no op computes in float."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(trained.exports["litert"]),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()
    heavy = [op for op in ops if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    assert len(heavy) >= 3
    for op in heavy:
        data, weights = op["operand_types"][:2]
        assert (data, weights) == (np.int8, np.int8), op
        assert op["result_types"] == [np.int8], op
    assert not [op["op_name"] for op in ops if np.float32 in op["operand_types"] + op["result_types"]]
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    assert kernel_report(trained.exports["litert"]).integer


def test_the_onnx_file_is_qdq_with_int8_weights_and_runs_qlinear_kernels(trained, tmp_path):
    """In the file: QuantizeLinear nodes and every Conv/Gemm weight stored as an int8 initializer.
    In the graph ONNX Runtime runs: QLinearConv / QGemm, and no float Conv, Gemm or MatMul left."""
    import onnx
    import onnxruntime

    model = onnx.load(str(trained.exports["onnxruntime"]))
    initializers = {t.name: t for t in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}
    ops = [node.op_type for node in model.graph.node]
    assert "QuantizeLinear" in ops
    heavy = [node for node in model.graph.node if node.op_type in ("Conv", "Gemm", "MatMul")]
    assert len(heavy) >= 3
    for node in heavy:
        weight = producer[node.input[1]]
        assert weight.op_type == "DequantizeLinear"
        assert initializers[weight.input[0]].data_type == onnx.TensorProto.INT8, node.name

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    onnxruntime.InferenceSession(str(trained.exports["onnxruntime"]), options, providers=["CPUExecutionProvider"])
    runs = [node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node]
    assert runs.count("QLinearConv") + runs.count("QGemm") == len(heavy)
    assert not {"Conv", "Gemm", "MatMul"} & set(runs)
    assert kernel_report(trained.exports["onnxruntime"]).integer


@pytest.mark.parametrize("backend", BACKENDS)
def test_int8_accuracy_stays_within_two_points(trained, backend):
    data = trained.evaluator.data
    val = file_accuracy(trained.exports[backend], data.x_val, data.y_val).value
    test = file_accuracy(trained.exports[backend], data.x_test, data.y_test).value
    assert trained.val > 0.9, "the float network must have learned digits for the comparison to mean anything"
    assert val >= trained.val - MAX_DROP and test >= trained.test - MAX_DROP, (trained.val, val, trained.test, test)


def test_float_exports_read_as_float(trained, tmp_path):
    for backend in BACKENDS:
        path = export_model(trained.model, backend, trained.evaluator.input_shape, directory=tmp_path)
        assert kernel_report(path).precision == "fp32" and kernel_report(path).float_compute


# -- cache keys -----------------------------------------------------------------------------------


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).eval()


def test_an_int8_file_is_keyed_by_weights_and_calibration_a_float_one_by_architecture(tmp_path):
    shape = (1, 1, 8, 8)
    calibration = from_noise(shape, 16)
    model = _tiny()
    first = export_model(model, "onnxruntime", shape, precision="int8", calibration=calibration, directory=tmp_path)
    assert export_model(model, "onnxruntime", shape, precision="int8", calibration=calibration,
                        directory=tmp_path) == first  # cached
    other_data = export_model(model, "onnxruntime", shape, precision="int8", calibration=from_noise(shape, 16, seed=1),
                              directory=tmp_path)
    before = weights_digest(model)
    with torch.no_grad():
        model[0].weight.add_(0.1)
    assert weights_digest(model) != before
    retrained = export_model(model, "onnxruntime", shape, precision="int8", calibration=calibration, directory=tmp_path)
    assert len({first, other_data, retrained}) == 3 and all(p.name.endswith("-int8.onnx") for p in (first, retrained))
    float_before = export_model(_tiny(), "onnxruntime", shape, directory=tmp_path)
    assert export_model(model, "onnxruntime", shape, directory=tmp_path) == float_before  # weights do not count
    with pytest.raises(ValueError, match="calibration"):
        export_model(model, "onnxruntime", shape, precision="int8", directory=tmp_path)
    with pytest.raises(ValueError, match="calibration images have shape"):
        export_model(model, "onnxruntime", shape, precision="int8", calibration=from_noise((1, 1, 4, 4)),
                     directory=tmp_path)


def test_calibration_reads_the_training_split_only():
    data = Evaluator(EvaluationSpec(hw_profiles=())).data
    poisoned = dataclasses.replace(data, x_val=torch.full_like(data.x_val, float("nan")),
                                   x_test=torch.full_like(data.x_test, float("nan")))
    calibration = from_training(poisoned, count=64)
    assert len(calibration) == 64 and np.isfinite(calibration.inputs).all()
    rows = {row.tobytes() for row in data.x_train.numpy()}
    assert all(image.tobytes() in rows for image in calibration.inputs)
    assert from_training(data, count=64).digest == calibration.digest  # seeded: the same draw every time
    assert from_training(data, count=32).digest != calibration.digest


# -- what cannot be quantized -----------------------------------------------------------------------


class _Upsampler(nn.Module):
    """A transposed convolution: neither toolchain has an int8 kernel for it here."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.up = nn.ConvTranspose2d(4, 4, 2, stride=2)
        self.fc = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.up(torch.relu(self.conv(x))).mean((2, 3)))


class _DataDependent(nn.Module):
    """Control flow on a tensor's value: torch.export (the LiteRT path) cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if y.sum() > 0:
            y = y * 2
        return self.fc(y.mean((2, 3)))


@pytest.mark.parametrize("backend, op", [("onnxruntime", "ConvTranspose '/up/ConvTranspose'"),
                                         ("litert", "TRANSPOSE_CONV 'torch.nn.modules.conv.ConvTranspose2d_up")])
def test_a_layer_without_int8_kernels_is_named(tmp_path, backend, op):
    with pytest.raises(QuantizationError) as info:
        export_model(_Upsampler().eval(), backend, (1, 1, 8, 8), precision="int8",
                     calibration=from_noise((1, 1, 8, 8), 8), directory=tmp_path)
    message = str(info.value)
    assert f"int8 quantization for {backend}" in message and "1 of 3 compute layers in float32" in message
    assert op in message
    assert not list(tmp_path.glob("*.onnx")) + list(tmp_path.glob("*.tflite"))  # nothing cached


def test_a_failing_conversion_step_is_named(tmp_path):
    with pytest.raises(QuantizationError, match="failed in torch.export: .*data-dependent"):
        export_model(_DataDependent().eval(), "litert", (1, 1, 8, 8), precision="int8",
                     calibration=from_noise((1, 1, 8, 8), 8), directory=tmp_path)


def test_the_benchmark_takes_its_compact_network_from_a_report_or_a_parameter_file(tmp_path):
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.quantization import FALLBACK_COMPACT, compact_parameters

    report = tmp_path / "summary.json"
    report.write_text(json.dumps({"best_feasible": [{"trial_id": "T7", "parameters": {"stem_width": 8}}]}))
    assert compact_parameters(report) == ({"stem_width": 8}, "summary.json: best feasible trial T7")
    plain = tmp_path / "best.json"
    plain.write_text(json.dumps(FALLBACK_COMPACT))
    assert compact_parameters(plain)[0] == FALLBACK_COMPACT
    (tmp_path / "none.json").write_text(json.dumps({"best_feasible": []}))
    for bad, message in ((tmp_path / "none.json", "no feasible"), (tmp_path / "missing.json", "not a readable")):
        with pytest.raises(SystemExit, match=message):
            compact_parameters(bad)
