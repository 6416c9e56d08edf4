"""The NAS-Bench-201 table: cell strings <-> NNI parameters, accuracy and Pi 4 latency per cell."""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from .. import REPO_ROOT

EDGES: tuple[str, ...] = ("e10", "e20", "e21", "e30", "e31", "e32")
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
LATENCY_LIMIT_MS = 25.0

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "bench-data" / "nb201_cifar10_raspi4.csv"
DATA_ENV = "NB201_DATA"  # lets worker processes and the profiler find a --data override

Arch = tuple[str, ...]  # one op per edge, in EDGES order


def search_space() -> dict:
    """The NNI search space: one `choice` per cell edge."""
    return {edge: {"_type": "choice", "_value": list(OPS)} for edge in EDGES}


def parse_arch_str(arch_str: str) -> Arch:
    """`|op~0|+|op~0|op~1|+|op~0|op~1|op~2|` -> ops in EDGES order (e10, e20, e21, e30, e31, e32)."""
    ops: list[str] = []
    for node, group in enumerate(arch_str.strip("|").split("|+|"), start=1):
        tokens = group.split("|")
        if len(tokens) != node:
            raise ValueError(f"bad NAS-Bench-201 cell string {arch_str!r}: node {node} has {len(tokens)} inputs")
        for source, token in enumerate(tokens):
            op, _, src = token.partition("~")
            if op not in OPS or src != str(source):
                raise ValueError(f"bad NAS-Bench-201 cell string {arch_str!r}: token {token!r}")
            ops.append(op)
    if len(ops) != len(EDGES):
        raise ValueError(f"bad NAS-Bench-201 cell string {arch_str!r}: expected {len(EDGES)} edges")
    return tuple(ops)


def arch_of(parameters: Mapping[str, object]) -> Arch:
    """NNI parameters {e10: op, ...} -> Arch; names the missing edge or unknown op on bad input."""
    if not isinstance(parameters, Mapping):
        raise TypeError(f"parameters must be a dict of edge -> op, got {type(parameters).__name__}")
    ops = []
    for edge in EDGES:
        if edge not in parameters:
            raise ValueError(f"parameters lack edge {edge!r} (got keys {sorted(parameters)})")
        op = parameters[edge]
        if op not in OPS:
            raise ValueError(f"parameters[{edge!r}] = {op!r} is not one of {OPS}")
        ops.append(op)
    return tuple(ops)


def parameters_of(arch: Arch) -> dict[str, str]:
    return dict(zip(EDGES, arch))


@dataclass(frozen=True)
class Cell:
    accuracy: float  # CIFAR-10 validation accuracy in %, 200 epochs, mean of 3 seeds
    latency_ms: float  # Raspberry Pi 4 latency in ms


class Table:
    """All 15,625 cells, indexed by Arch."""

    def __init__(self, cells: dict[Arch, Cell], path: Path):
        self.cells = cells
        self.path = path

    def __getitem__(self, arch: Arch) -> Cell:
        return self.cells[arch]

    def lookup(self, parameters: Mapping[str, object]) -> Cell:
        return self.cells[arch_of(parameters)]

    def feasible_accuracies(self, limit_ms: float = LATENCY_LIMIT_MS) -> list[float]:
        """Accuracies of all cells meeting the latency limit, best first."""
        return sorted((c.accuracy for c in self.cells.values() if c.latency_ms <= limit_ms), reverse=True)

    def top_feasible(self, n: int = 5, limit_ms: float = LATENCY_LIMIT_MS) -> list[float]:
        """The n best distinct feasible accuracies, rounded to 2 decimals as the issue quotes them."""
        distinct: list[float] = []
        for acc in self.feasible_accuracies(limit_ms):
            value = round(acc, 2)
            if value not in distinct:
                distinct.append(value)
            if len(distinct) == n:
                break
        return distinct


def data_path(path: str | os.PathLike | None = None) -> Path:
    """Explicit path, else $NB201_DATA, else ../shared/bench-data next to the repository."""
    chosen = Path(path or os.environ.get(DATA_ENV) or DEFAULT_DATA)
    if not chosen.is_file():
        raise FileNotFoundError(f"NAS-Bench-201 table not found at {chosen} (pass --data or set ${DATA_ENV})")
    return chosen


@lru_cache(maxsize=4)
def _load(path: Path) -> Table:
    cells: dict[Arch, Cell] = {}
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        needed = {"arch_str", "cifar10_valid_acc", "raspi4_latency_ms"}
        if not needed <= set(reader.fieldnames or ()):
            raise ValueError(f"{path} lacks columns {sorted(needed - set(reader.fieldnames or ()))}")
        for row in reader:
            cells[parse_arch_str(row["arch_str"])] = Cell(
                float(row["cifar10_valid_acc"]), float(row["raspi4_latency_ms"]))
    if len(cells) != len(OPS) ** len(EDGES):
        raise ValueError(f"{path} has {len(cells)} distinct cells, expected {len(OPS) ** len(EDGES)}")
    return Table(cells, path)


def load_table(path: str | os.PathLike | None = None) -> Table:
    """The table at `data_path(path)`, parsed once per process."""
    return _load(data_path(path).resolve())
