"""What an exported model file really computes in: its ops and their tensor types, read from
the file (the .tflite flatbuffer through LiteRT's schema, the ONNX graph through ``onnx``).

An int8 export is checked here, not assumed: ``kernel_report(path)`` lists every op and says
which ones still compute in float32. For .tflite, an op computes in float when a float32 tensor
goes in or out (QUANTIZE / DEQUANTIZE at the model's edges only convert). For ONNX's QDQ
format, a compute node (Conv, Gemm, MatMul, ...) is integer when every tensor input comes out of
a DequantizeLinear of 8-bit data: ONNX Runtime then fuses it into an integer kernel
(QLinearConv, ...); ``onnx_runtime_report`` reads the graph ONNX Runtime really runs, which
is the last word (its fusion rules depend on the CPU: u8s8 on x86).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Union

# Ops whose cost is the network's cost: int8 must reach them, or the export is not an int8 network.
TFLITE_COMPUTE_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D",
                                "BATCH_MATMUL", "UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM",
                                "UNIDIRECTIONAL_SEQUENCE_RNN", "LSTM", "SVDF"})
ONNX_COMPUTE_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "LSTM", "GRU", "RNN", "Einsum"})
ONNX_INTEGER_COMPUTE_OPS = frozenset({"QLinearConv", "QLinearMatMul", "QGemm", "ConvInteger", "MatMulInteger",
                                      "DynamicQuantizeMatMul", "MatMulIntegerToFloat"})
_COMPUTE_OPS = TFLITE_COMPUTE_OPS | ONNX_COMPUTE_OPS | ONNX_INTEGER_COMPUTE_OPS
_TFLITE_EDGE_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})
_ONNX_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
_INTEGER_TYPES = frozenset({"INT8", "UINT8", "INT16", "INT32", "INT64", "BOOL"})


@dataclass(frozen=True)
class Kernel:
    """One op of a model file: its type, the layer it comes from, and whether it computes in float."""

    op: str
    layer: str
    float_compute: bool

    def describe(self) -> str:
        return f"{self.op} {self.layer!r}" if self.layer else self.op


@dataclass(frozen=True)
class KernelReport:
    """Every op of a model file, in graph order."""

    path: str
    kernels: tuple[Kernel, ...]

    @property
    def compute(self) -> tuple[Kernel, ...]:
        """The heavy ops (convolutions, matrix products, recurrent cells)."""
        return tuple(k for k in self.kernels if k.op in _COMPUTE_OPS)

    @property
    def float_compute(self) -> tuple[Kernel, ...]:
        """Heavy ops that still compute in float32."""
        return tuple(k for k in self.compute if k.float_compute)

    @property
    def float_ops(self) -> tuple[Kernel, ...]:
        """Every op that computes in float32 (elementwise ones included)."""
        return tuple(k for k in self.kernels if k.float_compute)

    @property
    def integer(self) -> bool:
        """True when there are heavy ops and every one of them is integer."""
        return bool(self.compute) and not self.float_compute

    @property
    def precision(self) -> str:
        """"int8" when the heavy ops are integer, else "fp32"."""
        return "int8" if self.integer else "fp32"


def kernel_report(path: Union[str, os.PathLike]) -> KernelReport:
    """The ops of a .tflite or .onnx file and which compute in float (ValueError for other files)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        kernels = tuple(_tflite_kernels(path.read_bytes()))
    elif suffix == ".onnx":
        kernels = tuple(_onnx_kernels(path))
    else:
        raise ValueError(f"kernel_report reads .tflite and .onnx files, got {path.name}")
    return KernelReport(str(path), kernels)


# ---------------------------------------------------------------------------------------------
# .tflite


def _tflite_kernels(buffer: bytes) -> Iterable[Kernel]:
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(buffer, 0)
    op_names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    type_names = {value: name for name, value in vars(schema.TensorType).items() if not name.startswith("_")}
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)

        def tensor_types(indices: Iterable[int]) -> list[str]:
            return [type_names.get(graph.Tensors(i).Type(), "?") for i in indices if i >= 0]

        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            code = model.OperatorCodes(op.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            name = op_names.get(builtin, f"op{builtin}")
            if name == "CUSTOM":
                name = f"CUSTOM:{code.CustomCode().decode('utf-8', 'replace')}"
            inputs = [op.Inputs(j) for j in range(op.InputsLength())]
            outputs = [op.Outputs(j) for j in range(op.OutputsLength())]
            types = tensor_types(inputs) + tensor_types(outputs)
            layer = graph.Tensors(outputs[0]).Name().decode("utf-8", "replace") if outputs else ""
            floats = any(t not in _INTEGER_TYPES for t in types)
            yield Kernel(name, _short_layer(layer), floats and name not in _TFLITE_EDGE_OPS)


def _short_layer(name: str) -> str:
    """The torch module path of a litert-torch tensor name (its last '/'-separated part)."""
    return name.rsplit("/", 1)[-1][:120]


# ---------------------------------------------------------------------------------------------
# .onnx


def _onnx_kernels(path: Path) -> Iterable[Kernel]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    eight_bit = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}
    initializer_types = {t.name: t.data_type for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}

    def dequantized(name: str, allowed: set) -> bool:
        """``name`` is a DequantizeLinear's output of ``allowed``-typed data (a weight, a bias, or
        an activation a QuantizeLinear made)."""
        node = producer.get(name)
        if node is None or node.op_type != "DequantizeLinear":
            return False
        source = node.input[0]
        if source in initializer_types:
            return initializer_types[source] in allowed
        quantizer = producer.get(source)
        return quantizer is not None and quantizer.op_type == "QuantizeLinear" and \
            _output_type(quantizer, initializer_types) in allowed

    for node in graph.node:
        if node.op_type in _ONNX_QDQ_OPS or node.op_type == "Constant":
            yield Kernel(node.op_type, node.name, False)
            continue
        if node.op_type.startswith("QLinear") or node.op_type in ONNX_INTEGER_COMPUTE_OPS:
            yield Kernel(node.op_type, node.name, False)
            continue
        if node.op_type in ONNX_COMPUTE_OPS:
            # data and weights in 8 bits; a bias (Conv/Gemm input 2) as int32, each through its own
            # DequantizeLinear: ONNX Runtime fuses nothing else into an integer kernel
            inputs = [(name, eight_bit if i < 2 else {onnx.TensorProto.INT32})
                      for i, name in enumerate(node.input) if name]
        else:
            inputs = [(name, eight_bit) for name in node.input if name and name not in initializer_types]
        yield Kernel(node.op_type, node.name, not all(dequantized(name, allowed) for name, allowed in inputs))


def _output_type(quantizer: Any, initializer_types: dict) -> Optional[int]:
    """A QuantizeLinear's output type: its zero point's type (uint8 when it has none)."""
    import onnx

    inputs = list(quantizer.input)
    if len(inputs) < 3 or not inputs[2]:
        return onnx.TensorProto.UINT8
    return initializer_types.get(inputs[2])


def onnx_runtime_report(path: Union[str, os.PathLike], optimized_path: Union[str, os.PathLike]) -> KernelReport:
    """The kernels ONNX Runtime (this host's) really runs for ``path``: its ORT_ENABLE_ALL graph,
    written to ``optimized_path``, where QDQ groups it could fuse became QLinearConv, QGemm, ...
    and any Conv, Gemm or MatMul left computes in float32."""
    import onnx
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(optimized_path)
    options.log_severity_level = 3
    onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    nodes = onnx.load(str(optimized_path)).graph.node
    return KernelReport(str(path), tuple(Kernel(n.op_type, n.name, n.op_type in ONNX_COMPUTE_OPS) for n in nodes))


def precision_of_file(path: Union[str, os.PathLike]) -> Optional[str]:
    """"int8" or "fp32" for a model file, None when it cannot be read here."""
    try:
        return kernel_report(path).precision
    except Exception:  # noqa: BLE001 - a file the host cannot parse is measured all the same
        return None
