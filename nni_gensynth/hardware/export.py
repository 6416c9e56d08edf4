"""torch.nn.Module -> ONNX (checked with onnx.checker) or .tflite (litert-torch), float32 or
static int8, cached on disk.

Exports live in ``cache_dir()/exports/<arch>-<key>[-int8].<suffix>``; the key covers the
architecture hash, the export settings (format, input shape, opset) and the exporter versions,
so the same network is exported once per toolchain. A float32 file does not depend on the
weights (its latency does not). An int8 file does: its key adds the quantization recipe, the
digest of the calibration inputs and the digest of the weights (``quantize.weights_digest``), so
a trained network is never confused with the untrained one measured before training. Files are
written under a temporary name and renamed when complete, so concurrent trials never see half a
model.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Tuple

from ..device.protocol import BACKEND_FORMATS
from ..engine.fingerprint import text_hash
from .cache import cache_dir, writable_dir

if TYPE_CHECKING:
    from .calibration import CalibrationSet

ONNX_OPSET = 17
FORMATS = BACKEND_FORMATS  # backend -> file format
_TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier at bytes 4..8 of a .tflite


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def exporter_versions(fmt: str) -> str:
    """The toolchain that turns a module into ``fmt`` ("onnx" or "tflite"), e.g. "torch 2.13.0"."""
    if fmt == "onnx":
        return f"torch {_version('torch')}, onnx {_version('onnx')}"
    if fmt == "tflite":
        return f"torch {_version('torch')}, litert-torch {_version('litert-torch')}"
    raise ValueError(f"export format must be 'onnx' or 'tflite', got {fmt!r}")


def module_hash(module: Any, input_shape: Sequence[int]) -> str:
    """16 hex digits over a module's structure (its repr: layer types and hyperparameters), its
    parameter and buffer names/shapes/dtypes, and the input shape. Weights do not count:
    latency and energy do not depend on them. Pass an explicit arch hash where two modules
    share a repr but differ in forward()."""
    lines = [f"{type(module).__module__}.{type(module).__qualname__}", repr(module),
             f"input {tuple(int(d) for d in input_shape)}"]
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        lines.append(f"{name} {tuple(tensor.shape)} {tensor.dtype}")
    return text_hash("\n".join(lines))


def export_key(arch_hash: str, fmt: str, input_shape: Sequence[int], quantized: str = "") -> str:
    """The export's cache key; ``quantized`` describes an int8 export (recipe, calibration and
    weights digests), empty for float32."""
    settings = f"{arch_hash}|{fmt}|{tuple(input_shape)}|opset {ONNX_OPSET}|{exporter_versions(fmt)}"
    return text_hash(settings + (f"|int8 {quantized}" if quantized else ""))


def _atomic_target(path: Path) -> Tuple[Path, Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    return path, Path(tmp)


def _example_input(module: Any, input_shape: Sequence[int]) -> Any:
    import torch

    if not input_shape or any(int(d) < 1 for d in input_shape):
        raise ValueError(f"input_shape must be positive integers, got {list(input_shape)}")
    return torch.zeros(tuple(int(d) for d in input_shape), dtype=torch.float32)


def write_onnx(module: Any, example: Any, target: Path) -> None:
    """``module`` as a checked float32 .onnx at ``target`` (input "input", output "output")."""
    import onnx
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(target), dynamo=False, opset_version=ONNX_OPSET,
                          input_names=["input"], output_names=["output"])
    onnx.checker.check_model(str(target), full_check=True)


def _write_tflite(module: Any, example: Any, target: Path) -> None:
    import litert_torch

    # litert-torch prints progress on stdout: keep stdout for our own answers (--json).
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        litert_torch.convert(module, (example,)).export(str(target))
    with open(target, "rb") as handle:
        header = handle.read(8)
    if header[4:8] != _TFLITE_IDENTIFIER:
        raise RuntimeError(f"litert-torch wrote {target} without the TFLite file identifier")


def export_model(module: Any, backend: str, input_shape: Sequence[int], arch_hash: Optional[str] = None,
                 directory: Optional[Path] = None, precision: str = "fp32",
                 calibration: Optional["CalibrationSet"] = None) -> Path:
    """The path of ``module`` exported for ``backend`` ("onnxruntime" -> .onnx, "litert" -> .tflite),
    exporting only when no cached export exists. ``precision`` "int8" quantizes statically with
    ``calibration`` (training images, see hardware.calibration; QuantizationError when the
    network cannot be quantized)."""
    if backend not in FORMATS:
        raise ValueError(f"backend must be one of {', '.join(FORMATS)}, got {backend!r}")
    if precision not in ("fp32", "int8"):
        raise ValueError(f"export precision must be 'fp32' or 'int8', got {precision!r}")
    fmt = FORMATS[backend]
    arch_hash = arch_hash or module_hash(module, input_shape)
    directory = Path(directory) if directory is not None else writable_dir(cache_dir() / "exports")
    quantized = _int8_settings(module, backend, input_shape, calibration) if precision == "int8" else ""
    suffix = "-int8" if quantized else ""
    path = directory / f"{arch_hash}-{export_key(arch_hash, fmt, input_shape, quantized)}{suffix}.{fmt}"
    if path.is_file():
        return path
    path, tmp = _atomic_target(path)
    was_training = module.training
    module.eval()
    try:
        if quantized:
            from .quantize import write_int8

            write_int8(module, backend, calibration, tmp)
        else:
            example = _example_input(module, input_shape)
            (write_onnx if fmt == "onnx" else _write_tflite)(module, example, tmp)
        os.replace(tmp, path)
    finally:
        module.train(was_training)
        if tmp.exists():
            tmp.unlink()
    return path


def _int8_settings(module: Any, backend: str, input_shape: Sequence[int], calibration: Any) -> str:
    """What an int8 export depends on besides the architecture: recipe, calibration, weights."""
    from .calibration import CalibrationSet
    from .quantize import recipe, weights_digest

    if not isinstance(calibration, CalibrationSet):
        raise ValueError("an int8 export needs calibration inputs (a CalibrationSet of training images)")
    if tuple(calibration.sample_shape) != tuple(int(d) for d in input_shape):
        raise ValueError(f"calibration images have shape {calibration.sample_shape[1:]}, the model's input is "
                         f"{tuple(input_shape)[1:]}")
    return f"{recipe(backend)}|calibration {calibration.digest}|weights {weights_digest(module)}"


def export_onnx(module: Any, input_shape: Sequence[int], **kwargs: Any) -> Path:
    """``module`` as a checked .onnx file (cached)."""
    return export_model(module, "onnxruntime", input_shape, **kwargs)


def export_tflite(module: Any, input_shape: Sequence[int], **kwargs: Any) -> Path:
    """``module`` as a .tflite file (cached)."""
    return export_model(module, "litert", input_shape, **kwargs)

