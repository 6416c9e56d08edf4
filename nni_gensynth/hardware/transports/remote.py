"""Helpers shared by the remote transports (SSH, ADB): what is pushed, under which name, and how
the device runner's answer is read back.

Everything pushed is named by its content hash, so a device keeps several versions side by side,
a half-finished upload is never mistaken for a complete one, and nothing is pushed twice.
The runner's answer is read as JSON only: nothing received from a device is unpickled or run.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import nni_gensynth

from .base import DeviceError

PACKAGE_DIR = Path(nni_gensynth.__file__).resolve().parent
_HASH_CHUNK = 1 << 20


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


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


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


def substitute_model_path(args: Sequence[str], model_path: Path, remote_path: str) -> List[str]:
    """The runner arguments with the local model path replaced by the device path.

    Replaces an argument equal to the local path (``--model PATH``) or ``--model=PATH``; when no
    model argument is present, ``--model REMOTE`` is added. ``measure`` is put first when the
    caller gave only options.
    """
    local = {str(model_path), str(Path(model_path).resolve())}
    out: List[str] = []
    found = False
    for arg in args:
        if arg in local:
            out.append(remote_path)
            found = True
        elif arg.startswith("--model=") and arg[len("--model="):] in local:
            out.append(f"--model={remote_path}")
            found = True
        else:
            out.append(str(arg))
    if not out or out[0].startswith("-"):
        out.insert(0, "measure")
    if not found:
        if "--model" in out:
            raise ValueError(f"runner args name a model other than {model_path}: {list(args)}")
        out[1:1] = ["--model", remote_path]
    return out


def last_json_object(stdout: str) -> Optional[Dict]:
    """The JSON object on the last stdout line that holds one (the runner's answer), or None.

    Parsed with ``json.loads`` only; anything that is not a JSON object is ignored.
    """
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def tail(text: str, lines: int = 8) -> str:
    """The last few non-empty lines of a command's output, for error messages."""
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def runner_answer(stdout: str, exit_code: int, where: str, not_found_hint: str, output_tail: str) -> Dict:
    """The device runner's JSON answer, or DeviceError(retryable=False) saying why there is none:
    the runner's own error, `not_found_hint` for exit 127 (no interpreter), else `output_tail`."""
    result = last_json_object(stdout)
    if exit_code == 0 and result is not None and result.get("ok", False):
        return result
    if result is not None and "error" in result:
        reason = str(result["error"])
    elif exit_code == 127:
        reason = not_found_hint
    else:
        reason = f"no JSON result: {output_tail or '(no output)'}"
    raise DeviceError(f"device runner on {where} failed (exit {exit_code}): {reason}", retryable=False)
