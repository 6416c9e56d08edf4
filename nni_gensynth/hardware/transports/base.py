"""The Transport protocol every way of reaching a device implements, and its error."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Protocol, runtime_checkable


class DeviceError(RuntimeError):
    """A measurement on a device failed. ``retryable`` is True for transient failures (a dropped
    connection, a device that went away) that are worth another attempt, False for failures that
    would repeat (the runner reported an error, a host key was refused)."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@runtime_checkable
class Transport(Protocol):
    """Runs the device runner on one device.

    ``run_device_runner(model_path, args)`` pushes ``model_path`` to the device when it is remote,
    runs ``python -m nni_gensynth.device`` there with ``args`` (the local model path in ``args``
    is replaced by the device's path), and returns the runner's JSON answer as a dict (``ok`` is
    True). It raises DeviceError (with ``retryable``) on a disconnect, a timeout or an
    ``{"ok": false}`` answer. ``device_id()`` names the device stably (used for the per-device lock
    and the cache); ``close()`` releases connections.
    """

    def run_device_runner(self, model_path: Path, args: List[str]) -> Dict[str, Any]: ...

    def device_id(self) -> str: ...

    def close(self) -> None: ...
