"""The int8 accuracy of a trained network, for every profile that measures int8.

The trained network is quantized for the profile's backend exactly as the latency measurement's
model was (hardware.export with precision "int8": same recipe, calibrated on training images,
but now with the trained weights and the full calibration set), and that file is run on this
host's interpreter (hardware.predict, the profile's delegate) over the validation split
(`int8_accuracy`, what the tuner may constrain or optimise) and the test split
(`test_int8_accuracy`, for reports only), each with its Wilson interval like `accuracy`.
"""
from __future__ import annotations

from typing import Any

from ..hardware.precision import INT8, scoped
from ..stats import Accuracy


def file_accuracy(path: Any, x: Any, y: Any, *, delegate: Any = None) -> Accuracy:
    """Top-1 accuracy of an exported model file on (x, y), on this host."""
    from ..hardware.predict import predict_classes

    labels = y.numpy() if hasattr(y, "numpy") else y
    predicted = predict_classes(path, x, delegate=delegate)
    return Accuracy(int((predicted == labels).sum()), len(labels))


def int8_accuracy_metrics(evaluator: Any, model: Any, key: str) -> dict[str, Any]:
    """`int8_accuracy` (validation) and `test_int8_accuracy` (test), with intervals, scoped per
    profile (`litert_int8_accuracy`, ...), for the trained `model` of `evaluator`."""
    from ..hardware.export import export_model

    data = evaluator.data
    metrics: dict[str, Any] = {}
    for index, profile in enumerate(evaluator.profiles):
        if INT8 not in evaluator.precisions(index):
            continue
        path = export_model(model, profile.backend, evaluator.input_shape, arch_hash=key, precision=INT8,
                            calibration=evaluator.calibration())
        name = scoped(evaluator.scope(index, INT8), "accuracy")
        metrics.update(file_accuracy(path, data.x_val, data.y_val, delegate=profile.delegate).as_metrics(name))
        metrics.update(file_accuracy(path, data.x_test, data.y_test, delegate=profile.delegate)
                       .as_metrics(f"test_{name}"))
    return metrics
