"""How the host reaches a device: local subprocess, SSH (Raspberry Pi), ADB (Android phone).

``make_transport(profile)`` picks the class from ``profile.transport.kind``; the SSH and ADB
modules (and paramiko / adbutils) are imported only when such a profile is used.
"""
from __future__ import annotations

import importlib
from typing import Any

from .base import DeviceError, Transport

_CLASSES = {
    "local": ("nni_gensynth.hardware.transports.local", "LocalTransport"),
    "ssh": ("nni_gensynth.hardware.transports.ssh", "SSHTransport"),
    "adb": ("nni_gensynth.hardware.transports.adb", "ADBTransport"),
}


def _transport_class(kind: str) -> Any:
    if kind not in _CLASSES:
        raise ValueError(f"transport.kind must be one of {', '.join(_CLASSES)}, got {kind!r}")
    module_name, class_name = _CLASSES[kind]
    return getattr(importlib.import_module(module_name), class_name)


def make_transport(profile: Any) -> Transport:
    """A connected-on-demand transport for ``profile`` (a HardwareProfile)."""
    return _transport_class(profile.transport.kind)(profile)


def make_device_transport(config: Any) -> Transport:
    """A transport for one device's settings (a TransportConfig, or a mapping with ``kind``): a
    pool's device. The transports read their settings from it as they do from a profile."""
    return _transport_class(config["kind"])(config)


__all__ = ["DeviceError", "Transport", "make_device_transport", "make_transport"]
