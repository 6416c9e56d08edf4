"""Does one device of a pool measure differently from its peers? Evidence and the verdict.

Every fresh measurement on a pool records (pool, network key, device, median). Where the same
network was measured on a device and on its peers (a pool's cross-check, ``--no-cache`` runs, or
several hosts sharing the pool), the device's drift is the median over those networks of
``its median / the median of its peers' medians - 1``: +0.25 means 25% slower than its peers. With
two devices both sides of a gap show it (one at +x, the other at about -x): a third device tells
which one moved. A sqlite file in the cache folder, safe for several processes.
"""
from __future__ import annotations

import sqlite3
import statistics
import time
import warnings
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from .cache import CacheWarning, cache_dir
from .limits import CACHE_BUSY_TIMEOUT_S

DRIFT_FILE = "pool_medians.sqlite"
RECENT_NETWORKS = 50  # a device's drift is judged on the networks it measured last

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
        """``device``'s drift from its peers, None while no network was measured on both."""
        try:
            with closing(self._connect()) as db:
                rows = db.execute(
                    "SELECT m.key, m.device, m.median_ms FROM medians m JOIN (SELECT key FROM medians "
                    "WHERE pool = ? AND device = ? ORDER BY created DESC LIMIT ?) recent ON m.key = recent.key "
                    "WHERE m.pool = ?", (pool, device, RECENT_NETWORKS, pool)).fetchall()
        except sqlite3.Error as exc:
            warnings.warn(f"pool drift log {self.path}: cannot read: {exc}", CacheWarning, stacklevel=2)
            return None
        by_key: Dict[str, Dict[str, float]] = {}
        for key, who, median in rows:
            by_key.setdefault(key, {})[who] = median
        ratios = []
        for medians in by_key.values():
            own = medians.pop(device, None)
            peers = [m for m in medians.values() if m > 0]
            if own is not None and own > 0 and peers:
                ratios.append(own / statistics.median(peers))
        if not ratios:
            return None
        return Drift(statistics.median(ratios) - 1.0, len(ratios))


__all__ = ["DRIFT_FILE", "Drift", "DriftLog"]
