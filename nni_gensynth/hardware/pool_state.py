"""Which devices of a pool are out of rotation, shared by every process of this host.

A device that drops (connection refused, lost mid-run, host key refused) is marked offline with
the time it may be probed again; every process measuring on the pool skips it until then, so a
dead board costs one failed connection per ``probe_interval_s`` on this host, not one per trial.
A JSON file per pool in the cache folder (``pools/<pool>.json``), changed under an flock.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Optional

from .cache import cache_dir, writable_dir


@dataclass(frozen=True)
class OfflineMark:
    """A device out of rotation: since when, when it may be probed again, and why."""

    since: float
    probe_at: float
    error: str


class PoolState:
    """The offline marks of one pool (``pool_id``), in ``directory`` (default: the cache's)."""

    def __init__(self, pool_id: str, directory: Optional[Path] = None) -> None:
        folder = writable_dir(Path(directory) if directory is not None else cache_dir() / "pools")
        self.path = folder / (re.sub(r"[^A-Za-z0-9._-]+", "_", pool_id) + ".json")

    def offline(self) -> Dict[str, OfflineMark]:
        """device id -> its mark, for the devices out of rotation now."""
        out = {}
        for device, mark in self._read().items():
            try:
                out[device] = OfflineMark(float(mark["since"]), float(mark["probe_at"]), str(mark["error"]))
            except (KeyError, TypeError, ValueError):
                continue  # a damaged entry: the device is tried again
        return out

    def mark_offline(self, device: str, error: str, probe_after_s: float) -> None:
        """Take ``device`` out of rotation until ``probe_after_s`` from now (keeps its first
        ``since``)."""
        now = time.time()
        with self._locked() as marks:
            since = marks.get(device, {}).get("since", now) if isinstance(marks.get(device), dict) else now
            marks[device] = {"since": since, "probe_at": now + probe_after_s, "error": error[:500]}

    def mark_online(self, device: str) -> None:
        """``device`` answered: back in rotation."""
        if device in self._read():
            with self._locked() as marks:
                marks.pop(device, None)

    def _read(self) -> Dict[str, dict]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @contextmanager
    def _locked(self) -> Iterator[Dict[str, dict]]:
        """The marks, read and written back under the pool's lock (atomic replace)."""
        with open(f"{self.path}.lock", "a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            marks = self._read()
            yield marks
            fd, staging = tempfile.mkstemp(prefix=".pool-", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(marks, out, sort_keys=True)
            os.replace(staging, self.path)


__all__ = ["OfflineMark", "PoolState"]
