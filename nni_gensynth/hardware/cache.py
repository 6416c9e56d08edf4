"""On-disk caches: the sqlite measurement cache and the cache directory everything lives in.

Measurements are keyed by (architecture hash, profile fingerprint, device, runtime versions);
only successful measurements are stored. SQLite in WAL mode with a busy timeout, one connection
per call: safe for several processes (NNI trials) and threads at once.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import zlib
from contextlib import closing
from pathlib import Path
from typing import Iterator, Optional, Union

from .measurement import Measurement, MeasurementSpec

CACHE_DIR_ENV = "GENSYNTH_CACHE_DIR"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS measurements (
    key TEXT PRIMARY KEY,
    arch_hash TEXT NOT NULL,
    profile TEXT NOT NULL,
    profile_fingerprint TEXT NOT NULL,
    device_id TEXT NOT NULL,
    backend TEXT NOT NULL,
    runtime TEXT NOT NULL,
    created REAL NOT NULL,
    measurement BLOB NOT NULL  -- zlib-compressed Measurement JSON (raw samples compress ~3x)
);
CREATE TABLE IF NOT EXISTS runtimes (
    device_id TEXT NOT NULL,
    backend TEXT NOT NULL,
    runtime TEXT NOT NULL,
    seen REAL NOT NULL,
    PRIMARY KEY (device_id, backend)
);
"""


def cache_dir() -> Path:
    """$GENSYNTH_CACHE_DIR, else ~/.cache/nni-gensynth (created)."""
    path = Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "nni-gensynth").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def measurement_key(arch_hash: str, profile_fingerprint: str, device_id: str, runtime: str) -> str:
    """The cache key: what was measured, with which settings, on which device, by which runtime
    (``runtime`` also names the exporter for models exported from torch)."""
    text = "\x1f".join([arch_hash, profile_fingerprint, device_id, runtime])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class MeasurementCache:
    """A sqlite file of Measurements (default: cache_dir()/measurements.sqlite)."""

    def __init__(self, path: Optional[Union[str, os.PathLike]] = None) -> None:
        self.path = Path(path) if path is not None else cache_dir() / "measurements.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.execute("PRAGMA busy_timeout=30000")
        return db

    def get(self, key: str) -> Optional[Measurement]:
        """The stored measurement for ``key``, or None."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT measurement FROM measurements WHERE key = ?", (key,)).fetchone()
        return _decode(row[0]) if row else None

    def put(self, key: str, measurement: Measurement) -> None:
        """Store a successful measurement (and remember the device's runtime)."""
        spec: MeasurementSpec = measurement.spec
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT OR REPLACE INTO measurements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, spec.arch_hash, spec.profile, spec.profile_fingerprint, spec.device_id, spec.backend,
                 spec.runtime, measurement.created, zlib.compress(measurement.to_json().encode("utf-8"), 6)))
            db.execute("INSERT OR REPLACE INTO runtimes VALUES (?, ?, ?, ?)",
                       (spec.device_id, spec.backend, spec.runtime, time.time()))
            db.execute("COMMIT")

    def last_runtime(self, device_id: str, backend: str) -> Optional[str]:
        """The runtime this device last reported for ``backend`` (remote devices), or None."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT runtime FROM runtimes WHERE device_id = ? AND backend = ?",
                             (device_id, backend)).fetchone()
        return row[0] if row else None

    def prune(self, older_than_s: float, now: Optional[float] = None) -> int:
        """Delete measurements made more than ``older_than_s`` seconds ago; how many went."""
        if older_than_s < 0:
            raise ValueError(f"older_than_s must be >= 0, got {older_than_s}")
        cutoff = (time.time() if now is None else now) - older_than_s
        with closing(self._connect()) as db:
            deleted = db.execute("DELETE FROM measurements WHERE created < ?", (cutoff,)).rowcount
            db.execute("VACUUM")
        return int(deleted)

    def __len__(self) -> int:
        with closing(self._connect()) as db:
            return int(db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0])

    def __iter__(self) -> Iterator[Measurement]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT measurement FROM measurements ORDER BY created").fetchall()
        return iter([_decode(r[0]) for r in rows])


def _decode(blob: "bytes | str") -> Measurement:
    text = blob if isinstance(blob, str) else zlib.decompress(blob).decode("utf-8")  # str: rows before compression
    return Measurement.from_json(text, from_cache=True)


def prune_files(directory: Path, older_than_s: float, now: Optional[float] = None) -> "tuple[int, int]":
    """Delete files under ``directory`` last written more than ``older_than_s`` seconds ago
    (exports: rebuilt on demand); (files deleted, bytes freed)."""
    if older_than_s < 0:
        raise ValueError(f"older_than_s must be >= 0, got {older_than_s}")
    cutoff = (time.time() if now is None else now) - older_than_s
    count = freed = 0
    for path in Path(directory).rglob("*") if Path(directory).is_dir() else ():
        try:
            info = path.stat()
            if path.is_file() and info.st_mtime < cutoff:
                path.unlink()
                count, freed = count + 1, freed + info.st_size
        except FileNotFoundError:  # another process pruned or replaced it meanwhile
            continue
    return count, freed


def folder_size(directory: Path) -> "tuple[int, int]":
    """(files, bytes) under ``directory`` (0, 0 when absent)."""
    files = [p for p in Path(directory).rglob("*") if p.is_file()] if Path(directory).is_dir() else []
    return len(files), sum(p.stat().st_size for p in files)

