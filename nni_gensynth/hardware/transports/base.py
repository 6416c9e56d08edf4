"""The Transport protocol every way of reaching a device implements, and its error."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Protocol, runtime_checkable

if TYPE_CHECKING:  # the request module imports profiles; transports need it for types only
    from ..request import RunRequest


class DeviceError(RuntimeError):
    """A measurement on a device failed. ``retryable`` is True for transient failures (a dropped
    connection, a device that went away) that are worth another attempt, False for failures that
    would repeat (the runner reported an error, a host key was refused, a bad answer)."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@runtime_checkable
class Transport(Protocol):
    """Runs one measurement on one device.

    ``run(request)`` pushes ``request.model_path`` to the device when it is remote, runs the
    measurement ``request`` describes there (``python -m nni_gensynth.device`` with
    ``runner_argv(request, path on the device)``, or a tool such as TFLite's benchmark_model
    driven from the typed fields), and returns the answer as parsed from the device's output
    (``read_answer``), unchecked: ``measure`` validates it. Reading stops at
    ``limits.MAX_OUTPUT_BYTES`` of output and after ``request.timeout_s``. It raises DeviceError
    (with ``retryable``) on a disconnect, a timeout, too much output or a failed run.
    ``device_id()`` names the device stably (used for the per-device lock and the cache);
    ``close()`` releases connections.
    """

    def run(self, request: "RunRequest") -> Dict[str, Any]: ...

    def device_id(self) -> str: ...

    def close(self) -> None: ...
