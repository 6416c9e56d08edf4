"""GenSynth's learned state on disk: written atomically, read without ever crashing a resume.

`save_state_file` writes JSON to a temporary file beside the target, fsyncs it, renames it
over the target and fsyncs the directory, so a kill or a power cut leaves the old state or
the new one, never half of one. `load_state_file` reads it back; a file that is not a JSON
object (truncated, garbage, empty) is moved aside as `<name>.corrupt-<timestamp>` with a
warning, and the search starts fresh instead of failing. `GenSynth.load_state_dict` then
validates each part of a readable state on its own and raises `StateError` only when nothing
in it is usable.
"""
from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np

from .metrics import short_repr

_logger = logging.getLogger("nni_gensynth.engine")

MAX_STATE_BYTES = 1 << 30  # a state file larger than this is not one GenSynth wrote


class StateError(ValueError):
    """A GenSynth state holds nothing usable for this engine (wrong version, wrong search
    space, or every part damaged); the search should start fresh."""


# Where the tuner keeps its state under NNI's checkpoint directory (<experiment>/checkpoint/).
CHECKPOINT_STATE = Path("gensynth", "state.json")


def json_safe(value: Any) -> Any:
    """`value` with NaN and ±inf replaced by None, numpy scalars and arrays made Python, tuples
    made lists, so `json.dumps(..., allow_nan=False)` accepts it."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def save_state_file(path: Union[str, Path], state: Mapping[str, Any]) -> bool:
    """Write `state` as JSON to `path` atomically and durably; True when it was written.

    Non-finite floats become null. A failure (full disk, unwritable folder, a value JSON
    cannot hold) is logged and returns False: saving must never stop the search."""
    path = Path(path)
    tmp: Optional[str] = None
    try:
        text = json.dumps(json_safe(state), allow_nan=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_directory(path.parent)
        return True
    except (OSError, TypeError, ValueError, RecursionError) as exc:
        _logger.error("GenSynth state could not be saved to %s (%s: %s)", path, type(exc).__name__,
                      short_repr(str(exc)))
        return False
    finally:
        if tmp is not None:
            _remove_quietly(tmp)


def load_state_file(path: Union[str, Path]) -> Optional[dict]:
    """The state saved at `path`, or None when there is none to resume from.

    A missing file is None. A file that cannot be read as a JSON object (truncated, garbage,
    not UTF-8, a list, larger than MAX_STATE_BYTES) is moved aside to
    `<name>.corrupt-<timestamp>`, with a warning naming both paths, and is None."""
    path = Path(path)
    try:
        if not path.exists():
            return None
        if path.stat().st_size > MAX_STATE_BYTES:
            raise ValueError(f"larger than {MAX_STATE_BYTES} bytes")
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict):
            raise ValueError(f"holds a JSON {type(state).__name__}, not an object")
        return state
    except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        kept = _move_aside(path)
        _logger.warning("GenSynth state file %s is unreadable (%s: %s); %s, starting fresh", path,
                        type(exc).__name__, short_repr(str(exc)),
                        f"kept as {kept}" if kept else "it could not be moved aside")
        return None


def _move_aside(path: Path) -> Optional[Path]:
    """Rename a damaged file to `<name>.corrupt-<timestamp>` (never over an earlier one)."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for n in range(100):
        kept = path.with_name(f"{path.name}.corrupt-{stamp}" + (f".{n}" if n else ""))
        if kept.exists():
            continue
        try:
            os.replace(path, kept)
            return kept
        except OSError:
            return None
    return None


def _fsync_directory(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
