"""Helpers shared by the remote transports (SSH, ADB): their settings, what is pushed and under
which name. (The runner's answer is read by ``nni_gensynth.hardware.answer.read_answer``.)

Everything pushed is named by its content hash, so a device keeps several versions side by side,
a half-finished upload is never mistaken for a complete one, and nothing is pushed twice.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import nni_gensynth

from ..hashing import file_sha256

PACKAGE_DIR = Path(nni_gensynth.__file__).resolve().parent


def transport_settings(profile: Any, kind: str) -> Dict[str, Any]:
    """The transport settings of a HardwareProfile (its ``transport``), of a TransportConfig, or
    of a plain mapping, as a dict; checks that ``kind`` matches."""
    fields = getattr(profile, "transport", profile)
    if dataclasses.is_dataclass(fields) and not isinstance(fields, type):
        fields = dataclasses.asdict(fields)
    if not isinstance(fields, Mapping):
        raise TypeError(f"expected a HardwareProfile, a TransportConfig or a mapping of transport settings, "
                        f"got {type(profile).__name__}")
    if fields.get("kind", kind) != kind:
        raise ValueError(f"transport.kind must be {kind!r} for this transport, got {fields.get('kind')!r}")
    return dict(fields)


def runner_files(package_dir: Path = PACKAGE_DIR) -> List[Tuple[str, Path]]:
    """The files a device needs to run ``python -m nni_gensynth.device``: the package's
    ``__init__.py`` and the ``device/`` folder (no caches), as (posix relative path, local path),
    sorted so that the version hash is stable."""
    package_dir = Path(package_dir)
    device_dir = package_dir / "device"
    if not (device_dir / "__init__.py").is_file():
        raise FileNotFoundError(f"device runner package not found: {device_dir}/__init__.py")
    files = [("nni_gensynth/__init__.py", package_dir / "__init__.py")]
    for path in sorted(device_dir.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
            continue
        files.append((f"nni_gensynth/device/{path.relative_to(device_dir).as_posix()}", path))
    return files


def runner_version(files: Sequence[Tuple[str, Path]]) -> str:
    """A short content hash over the runner files' names and bytes (changes when any file does)."""
    digest = hashlib.sha256()
    for relative, path in files:
        digest.update(relative.encode("utf-8") + b"\0")
        digest.update(file_sha256(path).encode("ascii") + b"\n")
    return digest.hexdigest()[:16]


def remote_model_name(model_path: Path) -> str:
    """Content-hash file name for a model on the device, keeping its suffix (the runner and
    benchmark_model pick the interpreter from it)."""
    return f"{file_sha256(model_path)[:24]}{Path(model_path).suffix.lower()}"
