"""Does one device of a pool measure differently from its peers? Evidence and the verdict.

Every fresh measurement on a pool records (pool, network key, device, median). Networks measured
on two devices or more (a pool's cross-check, ``--no-cache`` runs, several hosts sharing the pool)
compare devices; each device's speed factor is fitted over them (log median = device factor +
network size, by alternating least squares), and a device's drift is its factor relative to the
median factor of the pool: +0.25 means its medians run 25% above the pool's. With three devices
or more the median tells which one moved; with two, both sides of a gap show it (one at about +x/2,
the other at -x/2). A sqlite file in the cache folder, safe for several processes.
"""
from __future__ import annotations

import math
import sqlite3
import statistics
import time
import warnings
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .cache import CacheWarning, cache_dir
from .limits import CACHE_BUSY_TIMEOUT_S

DRIFT_FILE = "pool_medians.sqlite"
RECENT_NETWORKS = 200  # drift is judged on the networks measured on several devices last

_SCHEMA = """
CREATE TABLE IF NOT EXISTS medians (
    pool TEXT NOT NULL, key TEXT NOT NULL, device TEXT NOT NULL, median_ms REAL NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (pool, key, device)
);
"""


@dataclass(frozen=True)
class Drift:
    """A device's relative deviation from its peers (``value``), over ``networks`` shared networks."""

    value: float
    networks: int


class DriftLog:
    """The medians measured on each device of each pool (default: the cache folder's file)."""

    def __init__(self, path: Optional[Path] = None) -> None:
        self.path = Path(path) if path is not None else cache_dir() / DRIFT_FILE

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=CACHE_BUSY_TIMEOUT_S, isolation_level=None)
        db.execute(_SCHEMA)
        return db

    def record(self, pool: str, key: str, device: str, median_ms: float) -> None:
        """Remember that ``device`` measured network ``key`` at ``median_ms`` (latest wins)."""
        try:
            with closing(self._connect()) as db:
                db.execute("INSERT OR REPLACE INTO medians VALUES (?, ?, ?, ?, ?)",
                           (pool, key, device, float(median_ms), time.time()))
        except sqlite3.Error as exc:
            warnings.warn(f"pool drift log {self.path}: cannot record a median: {exc}", CacheWarning, stacklevel=2)

    def drift(self, pool: str, device: str) -> Optional[Drift]:
        """``device``'s drift from the pool, None while no network it measured was also measured
        on another device."""
        try:
            with closing(self._connect()) as db:
                rows = db.execute(
                    "SELECT m.key, m.device, m.median_ms FROM medians m JOIN (SELECT key FROM medians WHERE pool = ? "
                    "GROUP BY key HAVING COUNT(*) > 1 ORDER BY MAX(created) DESC LIMIT ?) shared ON m.key = shared.key "
                    "WHERE m.pool = ? AND m.median_ms > 0", (pool, RECENT_NETWORKS, pool)).fetchall()
        except sqlite3.Error as exc:
            warnings.warn(f"pool drift log {self.path}: cannot read: {exc}", CacheWarning, stacklevel=2)
            return None
        factors, networks = _device_factors([(key, who, math.log(median)) for key, who, median in rows])
        if device not in factors:
            return None
        reference = statistics.median(factors.values())
        return Drift(math.exp(factors[device] - reference) - 1.0, networks[device])


def _device_factors(rows: List[Tuple[str, str, float]], rounds: int = 50) -> Tuple[Dict[str, float], Dict[str, int]]:
    """Per device, the log-speed factor f fitting ``log median = f[device] + g[network]`` (least
    squares, alternating), and how many networks it was fitted on."""
    factor: Dict[str, float] = {device: 0.0 for _, device, _ in rows}
    size: Dict[str, float] = {}
    for _ in range(rounds):
        by_key: Dict[str, List[float]] = {}
        for key, device, value in rows:
            by_key.setdefault(key, []).append(value - factor[device])
        size = {key: statistics.fmean(values) for key, values in by_key.items()}
        by_device: Dict[str, List[float]] = {}
        for key, device, value in rows:
            by_device.setdefault(device, []).append(value - size[key])
        factor = {device: statistics.fmean(values) for device, values in by_device.items()}
    counts: Dict[str, int] = {}
    for _, device, _ in rows:
        counts[device] = counts.get(device, 0) + 1
    return factor, counts


__all__ = ["DRIFT_FILE", "Drift", "DriftLog"]
