"""On-disk caches: the sqlite measurement cache and the cache directory everything lives in.

Measurements are keyed by (architecture hash, profile fingerprint, device, runtime versions);
only successful measurements are stored. SQLite in WAL mode with a busy timeout, one connection
per call: safe for several processes (NNI trials) and threads at once.

The cache never costs a measurement: a damaged file (garbage, a malformed page) is moved aside
as ``<name>.corrupt-<time>`` with a ``CacheWarning`` and rebuilt; a row that does not decode into
a valid Measurement is dropped and measured again; a cache that cannot be written (a read-only
file or folder) warns and the measurement is returned unstored. ``check_cache`` reports damage
without repairing anything (``gensynth cache --check``).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import stat
import tempfile
import time
import warnings
import zlib
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple, TypeVar, Union

from .limits import CACHE_BUSY_TIMEOUT_S as _BUSY_TIMEOUT_S
from .measurement import Measurement, MeasurementSpec

CACHE_DIR_ENV = "GENSYNTH_CACHE_DIR"
CACHE_FILE = "measurements.sqlite"
CORRUPT_SUFFIX = ".corrupt-"
_T = TypeVar("_T")

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

# sqlite primary result codes (sqlite3.h)
_DAMAGED = {11, 26}        # SQLITE_CORRUPT, SQLITE_NOTADB
_READ_ONLY = {3, 8, 14}    # SQLITE_PERM, SQLITE_READONLY, SQLITE_CANTOPEN


class CacheWarning(RuntimeWarning):
    """The cache could not be read or written as usual; the measurement goes on without it."""


def _warn(message: str) -> None:
    warnings.warn(message, CacheWarning, stacklevel=3)


def cache_dir() -> Path:
    """$GENSYNTH_CACHE_DIR, else ~/.cache/nni-gensynth (created when it can be)."""
    path = Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "nni-gensynth").expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _warn(f"cannot create the cache folder {path}: {exc}")
    return path


def _private_temp_dir() -> Path:
    """This user's folder under the system temporary folder, refused unless it is private (a
    folder another user made there could hand us their files)."""
    base = Path(tempfile.gettempdir()) / f"nni-gensynth-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(base)
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise OSError(f"{base} is not a private folder of this user")
    return base


def writable_dir(preferred: Path) -> Path:
    """``preferred`` (created) when files can be written there, else a folder of the same name in
    this user's private temporary folder (with a CacheWarning): locks and exports still work when
    the cache folder is read-only."""
    preferred = Path(preferred)
    for fallback in (False, True):
        try:
            candidate = _private_temp_dir() / preferred.name if fallback else preferred
            candidate.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".probe-", dir=candidate)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            _warn(f"cannot write in {'a private temporary folder' if fallback else preferred}: {exc}")
            continue
        if fallback:
            _warn(f"{preferred} is not writable; using {candidate} instead")
        return candidate
    raise OSError(f"neither {preferred} nor a private temporary folder is writable")


def measurement_key(arch_hash: str, profile_fingerprint: str, device_id: str, runtime: str) -> str:
    """The cache key: what was measured, with which settings, on which device, by which runtime
    (``runtime`` also names the exporter for models exported from torch)."""
    text = "\x1f".join([arch_hash, profile_fingerprint, device_id, runtime])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _error_code(exc: sqlite3.Error) -> Optional[int]:
    """The primary sqlite result code of an error (by message before Python 3.11)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return int(code) & 0xFF
    text = str(exc).lower()
    if "malformed" in text or "not a database" in text:
        return 11
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return 8
    return None


def _decode(blob: "bytes | str") -> Measurement:
    """A stored row's Measurement; ValueError when the row is damaged in any way."""
    try:
        text = blob if isinstance(blob, str) else zlib.decompress(blob).decode("utf-8")  # str: rows before compression
    except (zlib.error, UnicodeDecodeError, TypeError) as exc:
        raise ValueError(f"not a compressed measurement: {exc}") from None
    return Measurement.from_json(text, from_cache=True)


@dataclass(frozen=True)
class CacheReport:
    """What ``check_cache`` found: sqlite's integrity problems and rows that are no Measurement."""

    path: Path
    rows: int = 0
    integrity: Tuple[str, ...] = ()
    bad_rows: Tuple[Tuple[str, str], ...] = ()  # (key, why)
    exists: bool = True

    @property
    def ok(self) -> bool:
        return not self.integrity and not self.bad_rows

    def lines(self) -> List[str]:
        """A readable report."""
        if not self.exists:
            return [f"{self.path}: no cache file yet (nothing to check)"]
        out = [f"{self.path}: {self.rows} measurement row(s), "
               f"{'ok' if self.ok else 'DAMAGED'}"]
        out += [f"  integrity: {problem}" for problem in self.integrity]
        out += [f"  bad row {key[:16]}: {why}" for key, why in self.bad_rows]
        return out


def check_cache(path: Union[str, os.PathLike]) -> CacheReport:
    """PRAGMA integrity_check plus every row decoded and validated, reading ``path`` only."""
    path = Path(path)
    if not path.exists():
        return CacheReport(path, exists=False)
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=_BUSY_TIMEOUT_S)) as db:
            integrity = [row[0] for row in db.execute("PRAGMA integrity_check").fetchall()]
            problems = tuple(str(p) for p in integrity if p != "ok")
            rows = db.execute("SELECT key, measurement FROM measurements").fetchall()
    except sqlite3.Error as exc:
        return CacheReport(path, integrity=(f"{type(exc).__name__}: {exc}",))
    bad = []
    for key, blob in rows:
        try:
            _decode(blob)
        except ValueError as exc:
            bad.append((str(key), str(exc)[:200]))
    return CacheReport(path, rows=len(rows), integrity=problems, bad_rows=tuple(bad))


class MeasurementCache:
    """A sqlite file of Measurements (default: cache_dir()/measurements.sqlite)."""

    def __init__(self, path: Optional[Union[str, os.PathLike]] = None) -> None:
        self.path = Path(path) if path is not None else cache_dir() / CACHE_FILE
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _warn(f"measurement cache {self.path}: cannot create its folder: {exc}")
        self._run("create the cache", self._create, None)

    # -- plumbing ------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
        return db

    @staticmethod
    def _create(db: sqlite3.Connection) -> None:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)

    def _run(self, what: str, op: Callable[[sqlite3.Connection], _T], default: _T) -> _T:
        """``op`` on a fresh connection. A damaged file is moved aside and rebuilt (a missing one
        rebuilt), and ``op`` tried once more; any other failure warns and gives ``default``."""
        for attempt in (1, 2):
            identity = _identity(self.path)
            try:
                with closing(self._connect()) as db:
                    return op(db)
            except sqlite3.Error as exc:
                code = _error_code(exc)
                if attempt == 1 and code in _DAMAGED and self._move_aside(identity, exc) and self._rebuild():
                    continue
                if attempt == 1 and "no such table" in str(exc) and self._rebuild():
                    continue  # another process moved the file aside under us
                hint = " (read-only?)" if code in _READ_ONLY else ""
                _warn(f"measurement cache {self.path}: cannot {what}{hint}: {type(exc).__name__}: {exc}")
            except OSError as exc:
                _warn(f"measurement cache {self.path}: cannot {what}: {exc}")
            return default
        return default  # pragma: no cover - the loop returns

    def _rebuild(self) -> bool:
        """Create the schema in a new (or emptied) file; False with a warning if that fails."""
        try:
            with closing(self._connect()) as db:
                self._create(db)
            return True
        except sqlite3.Error as exc:
            _warn(f"measurement cache {self.path}: cannot start a new cache file: {exc}")
            return False

    @contextmanager
    def _repair_lock(self) -> Iterator[None]:
        """One process at a time moves a damaged file aside (flock next to it, when possible)."""
        try:
            handle = open(f"{self.path}.repair-lock", "a+")
        except OSError:
            yield
            return
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            yield

    def _move_aside(self, identity: Optional[Tuple[int, int]], exc: Exception) -> bool:
        """Rename the damaged file (and its -wal/-shm) to ``<name>.corrupt-<time>``, unless another
        process already replaced it; True when the caller should try again on a fresh file."""
        with self._repair_lock():
            if _identity(self.path) != identity:
                return True  # someone else moved it aside (or rebuilt it) meanwhile
            stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
            target = Path(f"{self.path}{CORRUPT_SUFFIX}{stamp}")
            try:
                for suffix in ("-wal", "-shm", ""):
                    source = Path(f"{self.path}{suffix}")
                    if source.exists():
                        os.replace(source, Path(f"{target}{suffix}"))
            except OSError as error:
                _warn(f"measurement cache {self.path} is damaged ({exc}) and cannot be moved aside: {error}")
                return False
        _warn(f"measurement cache {self.path} was damaged ({exc}); moved it to {target.name} and started a new one")
        return True

    def _drop_row(self, key: str, why: Exception) -> None:
        _warn(f"measurement cache {self.path}: dropped a damaged entry ({why}); it will be measured again")
        self._run("drop a damaged entry", lambda db: db.execute("DELETE FROM measurements WHERE key = ?", (key,)),
                  None)

    # -- public API ----------------------------------------------------------------------------

    def get(self, key: str) -> Optional[Measurement]:
        """The stored measurement for ``key``, or None (also when the stored row was damaged:
        it is dropped)."""
        row = self._run("read", lambda db: db.execute("SELECT measurement FROM measurements WHERE key = ?",
                                                      (key,)).fetchone(), None)
        if row is None:
            return None
        try:
            return _decode(row[0])
        except ValueError as exc:
            self._drop_row(key, exc)
            return None

    def put(self, key: str, measurement: Measurement) -> bool:
        """Store a successful measurement (and remember the device's runtime); False (with a
        CacheWarning) when the cache cannot be written."""
        spec: MeasurementSpec = measurement.spec
        blob = zlib.compress(measurement.to_json().encode("utf-8"), 6)

        def store(db: sqlite3.Connection) -> bool:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("INSERT OR REPLACE INTO measurements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (key, spec.arch_hash, spec.profile, spec.profile_fingerprint, spec.device_id,
                            spec.backend, spec.runtime, measurement.created, blob))
                db.execute("INSERT OR REPLACE INTO runtimes VALUES (?, ?, ?, ?)",
                           (spec.device_id, spec.backend, spec.runtime, time.time()))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            return True

        return self._run("store a measurement (it is returned, not kept)", store, False)

    def last_runtime(self, device_id: str, backend: str) -> Optional[str]:
        """The runtime this device last reported for ``backend`` (remote devices), or None."""
        row = self._run("read", lambda db: db.execute("SELECT runtime FROM runtimes WHERE device_id = ? AND "
                                                      "backend = ?", (device_id, backend)).fetchone(), None)
        return row[0] if row and isinstance(row[0], str) else None

    def prune(self, older_than_s: float, now: Optional[float] = None) -> int:
        """Delete measurements made more than ``older_than_s`` seconds ago; how many went."""
        if older_than_s < 0:
            raise ValueError(f"older_than_s must be >= 0, got {older_than_s}")
        cutoff = (time.time() if now is None else now) - older_than_s

        def delete(db: sqlite3.Connection) -> int:
            deleted = db.execute("DELETE FROM measurements WHERE created < ?", (cutoff,)).rowcount
            db.execute("VACUUM")
            return int(deleted)

        return self._run("prune", delete, 0)

    def __len__(self) -> int:
        return int(self._run("count", lambda db: db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0], 0))

    def __iter__(self) -> Iterator[Measurement]:
        """Every valid stored measurement, oldest first (damaged rows are dropped)."""
        rows = self._run("read", lambda db: db.execute("SELECT key, measurement FROM measurements "
                                                       "ORDER BY created").fetchall(), [])
        good = []
        for key, blob in rows:
            try:
                good.append(_decode(blob))
            except ValueError as exc:
                self._drop_row(key, exc)
        return iter(good)


def _identity(path: Path) -> Optional[Tuple[int, int]]:
    """(device, inode) of a file, None when absent: tells a replaced file from the one that failed."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


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


__all__ = ["CACHE_DIR_ENV", "CacheReport", "CacheWarning", "MeasurementCache", "cache_dir", "check_cache",
           "folder_size", "measurement_key", "prune_files", "writable_dir"]
