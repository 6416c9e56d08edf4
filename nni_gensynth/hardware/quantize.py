"""Static int8 quantization of a torch module for the backend it ships on, checked in the file.

``write_int8(module, backend, calibration, target)`` quantizes with the backend's own toolchain
(``quantize_litert``: litert-torch's PT2E path; ``quantize_onnx``: ONNX Runtime's
``quantize_static``), then reads the written file back (``kernels.kernel_report``; for ONNX
Runtime also the graph it really runs after its fusions): an export whose convolutions or matrix
products still compute in float32 is a ``QuantizationError`` naming those layers, never a file
measured as int8. Every failure of the toolchain is a
``QuantizationError`` that names the step and, where the tool says it, the op.

The recipe (``recipe(backend)``: method, granularity, tool versions) is part of every int8 cache
key; the weights and the calibration inputs are part of an int8 file's key (``weights_digest``),
not of a latency measurement's, since int8 kernels cost the same whatever their values.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Union

from .calibration import CalibrationSet
from .kernels import KernelReport, kernel_report, onnx_runtime_report

# What each backend's int8 export is (the text is part of the cache keys).
RECIPES = {
    "litert": "PT2E static int8: per-channel symmetric weights, per-tensor activations (histogram "
              "observers), int8 model inputs and outputs",
    # reduce_range (7-bit weights): without it, ONNX Runtime's u8s8 kernels on x86 CPUs without VNNI
    # saturate (VPMADDUBSW) and lost up to 4 points on digits here; ONNX Runtime's quantization guide
    # gives this remedy.
    # U8S8: ONNX Runtime's x86 kernels fuse QDQ groups into QLinearConv only for uint8
    # activations (S8S8 groups whose activation has several consumers stayed float32 Conv here).
    "onnxruntime": "quantize_static QDQ: uint8 activations, per-channel int8 weights with reduce_range, "
                   "MinMax calibration",
}
_TOOLS = {"litert": ("torch", "torchao", "litert-torch"), "onnxruntime": ("torch", "onnx", "onnxruntime")}


class QuantizationError(RuntimeError):
    """A network could not be quantized to int8 for a backend; the message says where and why."""


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def recipe(backend: str) -> str:
    """The backend's int8 recipe with its tool versions (a cache-key component)."""
    if backend not in RECIPES:
        raise ValueError(f"no int8 recipe for backend {backend!r}; known: {', '.join(RECIPES)}")
    return f"{RECIPES[backend]} ({', '.join(f'{t} {_version(t)}' for t in _TOOLS[backend])})"


def weights_digest(module: Any) -> str:
    """16 hex digits over a module's parameter and buffer values: an int8 file depends on them."""
    digest = hashlib.sha256()
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        digest.update(f"{name} {tuple(tensor.shape)} {tensor.dtype}\n".encode("utf-8"))
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def step(backend: str, what: str) -> Iterator[None]:
    """Turn any failure inside into a QuantizationError naming the backend and the step."""
    try:
        yield
    except QuantizationError:
        raise
    except Exception as exc:  # noqa: BLE001 - every toolchain failure becomes one clear error
        detail = " ".join(str(exc).split())
        raise QuantizationError(f"int8 quantization for {backend} failed in {what}: {type(exc).__name__}: "
                                f"{detail[:600]}") from exc


def write_int8(module: Any, backend: str, calibration: CalibrationSet, target: Union[str, os.PathLike]) -> KernelReport:
    """Quantize ``module`` (eval mode, input shape ``calibration.sample_shape``) for ``backend``
    into ``target`` and check the file has integer kernels; QuantizationError otherwise."""
    if not isinstance(calibration, CalibrationSet):
        raise TypeError(f"calibration must be a CalibrationSet, got {type(calibration).__name__}")
    target = Path(target)
    if backend == "litert":
        from .quantize_litert import quantize_tflite

        quantize_tflite(module, calibration, target)
    elif backend == "onnxruntime":
        from .quantize_onnx import quantize_onnx

        quantize_onnx(module, calibration, target)
    else:
        raise ValueError(f"no int8 recipe for backend {backend!r}; known: {', '.join(RECIPES)}")
    with step(backend, "reading the quantized file back"):
        report = kernel_report(target)
    _require_integer(report, backend, "the quantized file")
    if backend == "onnxruntime":
        optimized = target.with_name(target.name + ".optimized")
        try:
            with step(backend, "loading the quantized file in ONNX Runtime"):
                runtime = onnx_runtime_report(target, optimized)
        finally:
            optimized.unlink(missing_ok=True)
        _require_integer(runtime, backend, "ONNX Runtime's optimized graph")
    return report


def _require_integer(report: KernelReport, backend: str, where: str) -> None:
    """QuantizationError naming the compute layers of ``report`` that are float32."""
    if not report.compute:
        raise QuantizationError(f"int8 quantization for {backend}: {where} has no convolution or matrix product")
    floats = report.float_compute
    if floats:
        more = f" and {len(floats) - 6} more" if len(floats) > 6 else ""
        shown = ", ".join(k.describe() for k in floats[:6]) + more
        raise QuantizationError(f"int8 quantization for {backend}: {where} keeps {len(floats)} of "
                                f"{len(report.compute)} compute layers in float32: {shown}")
