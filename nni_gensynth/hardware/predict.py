"""Class predictions of an exported model file on this host, through the same interpreter and
settings the device runner uses (ONNX Runtime with all graph optimizations; LiteRT with the
profile's delegate), so an int8 model's accuracy is the accuracy of the kernels it ships with.

Images go in one at a time (exports have a batch of 1). A model with integer inputs (a
full-integer .tflite) gets each image quantized with its input's scale and zero point, and its
integer outputs are dequantized before the arg-max.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Optional, Union

import numpy as np

from ..device.runner import import_backend, open_litert


def _to_input(image: np.ndarray, dtype: Any, quantization: tuple) -> np.ndarray:
    """One float image as the model's input tensor (quantized when the input is integer)."""
    if np.issubdtype(dtype, np.floating):
        return image.astype(dtype)
    scale, zero_point = quantization
    if not scale:
        raise ValueError("an integer model input without a quantization scale cannot take images")
    info = np.iinfo(dtype)
    return np.clip(np.round(image / scale) + zero_point, info.min, info.max).astype(dtype)


def _from_output(values: np.ndarray, quantization: tuple) -> np.ndarray:
    scale, zero_point = quantization
    if np.issubdtype(values.dtype, np.floating) or not scale:
        return values.astype(np.float32)
    return (values.astype(np.float32) - zero_point) * scale


def _litert_runner(path: str, threads: int, delegate: Optional[str]) -> Callable[[np.ndarray], np.ndarray]:
    interpreter_class, _ = import_backend("litert")
    interpreter = open_litert(interpreter_class, path, threads, delegate)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def run(image: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(source["index"], _to_input(image[None], source["dtype"], source["quantization"]))
        interpreter.invoke()
        return _from_output(interpreter.get_tensor(target["index"])[0], target["quantization"])

    return run


def _onnx_runner(path: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    onnxruntime, _ = import_backend("onnxruntime")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda image: np.asarray(session.run(None, {name: image[None].astype(np.float32)})[0][0], np.float32)


def predict_classes(path: Union[str, os.PathLike], images: Any, *, threads: int = 1,
                    delegate: Optional[str] = None) -> np.ndarray:
    """The arg-max class of ``path`` (.onnx or .tflite) for each of ``images`` (N, C, H, W)."""
    path = os.fspath(path)
    array = images.numpy() if hasattr(images, "numpy") else np.asarray(images)
    if path.endswith(".tflite"):
        run = _litert_runner(path, threads, delegate)
    elif path.endswith(".onnx"):
        run = _onnx_runner(path, threads)
    else:
        raise ValueError(f"predict_classes reads .onnx and .tflite files, got {path}")
    return np.array([int(np.argmax(run(image))) for image in np.asarray(array, np.float32)], dtype=np.int64)
