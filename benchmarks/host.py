"""The machine and libraries a benchmark's figures belong to, recorded with every result.

The same seed trains to different weights and the same network times differently on another CPU,
so results are compared on one machine only; this is what tells the machines apart."""
from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any, Optional


def host_facts() -> dict[str, Any]:
    """CPU model, cores, Python, and the versions of torch and the two runtimes (None when absent)."""
    from nni_gensynth.device.system import cpu_model, installed_runtime

    return {"cpu": cpu_model() or platform.processor(), "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": _version("torch"), "onnxruntime": installed_runtime("onnxruntime"),
            "litert": installed_runtime("litert")}


def _version(distribution: str) -> Optional[str]:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
