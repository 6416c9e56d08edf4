"""A device runner's answer: read from its output (``read_answer``), then checked field by field
(``validate_answer``) before anything is built from it or cached.

The answer is the JSON object on the last stdout line that holds one, parsed with ``json.loads``
only: nothing received from a device is unpickled or run. Every field is checked against
``ANSWER`` (types, finiteness, ranges, lengths); a bad one is an ``AnswerError`` (a DeviceError)
that names it, never another exception and never a cache entry.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from ..device.protocol import BACKENDS, MEASURED_ENERGY_SOURCES
from ..constraints import (
    MAX_DEPTH,
    MAX_TEXT,
    Choice,
    FieldError,
    Flag,
    Integer,
    Json,
    ListOf,
    Nullable,
    Real,
    Record,
    Text,
    short_repr,
)
from .limits import MAX_ENERGY_MJ, MAX_LATENCY_MS, MAX_MEMORY_MB, MAX_OUTPUT_BYTES, MAX_RUNS
from .transports.base import DeviceError

SAMPLE_KINDS = ("raw", "summary")
_INSIDE = Json(depth=MAX_DEPTH - 1)  # the extra fields of a mapping field: the field nests at most MAX_DEPTH

# The constraints a measurement's figures obey, on the wire and in the cache (measurement.py).
LATENCIES_MS = ListOf(Real(0.0, MAX_LATENCY_MS, low_open=True), 1, MAX_RUNS)
CPU_TIMES_MS = Nullable(ListOf(Real(0.0, MAX_LATENCY_MS), 0, MAX_RUNS))
COUNT = Integer(0, 1 << 62, whole_floats=True)  # how many of something (a JSON count may read as 3.0)
SUMMARY_MS = Record({"count": COUNT}, extra=Real(0.0, MAX_LATENCY_MS * MAX_RUNS))  # statistics of samples
WARMUP = Record({"runs": COUNT, "time_s": Real(0.0, 1e7)}, extra=_INSIDE)
ENERGY = Record({"energy_mj": Real(0.0, MAX_ENERGY_MJ, low_open=True), "source": Choice(MEASURED_ENERGY_SOURCES)},
                required=("energy_mj", "source"), extra=_INSIDE)
PEAK_MEM_MB = Real(0.0, MAX_MEMORY_MB)
AFFINITY = Nullable(ListOf(Integer(0, 1 << 16)))
THREADS = Integer(1, 1 << 16)
THERMAL = Record({"load_avg_start": Nullable(Real(0.0, 1e6)), "cpu_count": Nullable(Integer(1, 1 << 20)),
                  "throttled": Nullable(Flag()), "throttled_raw": Nullable(Text(max_len=64)),
                  "max_temp_c": Nullable(Real(-273.15, 1000.0))}, extra=_INSIDE)
DEVICE = Record({}, extra=_INSIDE)  # facts about the device, shown as they are
EMULATED = Flag()  # measured under an emulator (qemu-user): a plumbing check, never a figure
WARNINGS = ListOf(Text(max_len=MAX_TEXT), 0, 16)  # what the device says about its own result
# which delegate really took the graph: asked for ("default" when the runtime chose), applied (None:
# none took any node), how many delegate kernels (partitions) replaced nodes, and the other nodes
DELEGATE = Record({"requested": Nullable(Text(max_len=64)), "applied": Nullable(Text(max_len=64)),
                   "delegated_kernels": Nullable(COUNT), "nodes": Nullable(COUNT)}, extra=_INSIDE)

ANSWER = Record({
    "ok": Flag(),
    "samples_ms": LATENCIES_MS,
    "samples_kind": Choice(SAMPLE_KINDS),
    "summary_ms": Nullable(SUMMARY_MS),
    "cpu_samples_ms": CPU_TIMES_MS,
    "backend": Choice(BACKENDS),
    "runtime": Text(max_len=256),
    "threads": THREADS,
    "affinity": AFFINITY,
    "warmup": Nullable(WARMUP),
    "peak_mem_mb": PEAK_MEM_MB,
    "energy": ENERGY,
    "thermal": Nullable(THERMAL),
    "device": Nullable(DEVICE),
    "emulated": EMULATED,
    "warnings": WARNINGS,
    "delegate": Nullable(DELEGATE),
}, required=("ok", "samples_ms", "backend", "peak_mem_mb", "energy"), extra=Json())


class AnswerError(DeviceError):
    """A device's answer has a bad field (``field``); a device that answers so would again."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message, retryable=False)
        self.field = field


@dataclass(frozen=True)
class RunnerAnswer:
    """A checked answer: the figures a Measurement is made of (other fields are dropped)."""

    samples_ms: Tuple[float, ...]
    backend: str
    peak_mem_mb: float
    energy: Mapping[str, Any]
    runtime: str = "unknown"
    threads: Optional[int] = None
    samples_kind: str = "raw"
    summary_ms: Mapping[str, float] = field(default_factory=dict)
    cpu_samples_ms: Optional[Tuple[float, ...]] = None
    affinity: Tuple[int, ...] = ()
    thermal: Mapping[str, Any] = field(default_factory=dict)
    device: Mapping[str, Any] = field(default_factory=dict)
    emulated: bool = False
    delegate: Mapping[str, Any] = field(default_factory=dict)


def validate_answer(raw: Any, where: str = "the device") -> RunnerAnswer:
    """``raw`` (a parsed answer) checked against ``ANSWER``; AnswerError naming the field if not."""
    try:
        data = ANSWER.check(raw, "")
        if data["ok"] is not True:
            raise FieldError("ok", "must be true in a measurement")
        cpu = data.get("cpu_samples_ms") or None
        if cpu is not None and len(cpu) != len(data["samples_ms"]):
            raise FieldError("cpu_samples_ms", f"must have one item per latency sample ({len(data['samples_ms'])}), "
                                               f"got {len(cpu)}")
        kind = data.get("samples_kind", "raw")
        if kind == "summary" and len(data["samples_ms"]) != 1:
            raise FieldError("samples_ms", "must hold one average when samples_kind is 'summary'")
    except FieldError as exc:
        raise AnswerError(f"{where} gave an unusable answer: field '{exc.field}': {exc.reason}", exc.field) from None
    return RunnerAnswer(
        samples_ms=data["samples_ms"], backend=data["backend"], peak_mem_mb=data["peak_mem_mb"],
        energy=data["energy"], runtime=data.get("runtime", "unknown"), threads=data.get("threads"),
        samples_kind=kind, summary_ms=(data.get("summary_ms") or {}) if kind == "summary" else {},
        cpu_samples_ms=cpu, affinity=tuple(data.get("affinity") or ()), thermal=data.get("thermal") or {},
        device=data.get("device") or {}, emulated=data.get("emulated", False), delegate=data.get("delegate") or {})


# ---------------------------------------------------------------------------------------------
# Reading the answer from a runner's output


def tail(text: str, lines: int = 8, width: int = 300) -> str:
    """The last few non-empty lines of a command's output, each cut to ``width`` characters, for
    error messages."""
    kept = [line for line in text[-lines * 16 * width:].strip().splitlines() if line.strip()]
    return "\n".join(line if len(line) <= width else line[:width - 3] + "..." for line in kept[-lines:])


def too_much_output(where: str) -> DeviceError:
    """The error for a device that printed more than MAX_OUTPUT_BYTES (stdout and stderr
    together); not retried, it would again."""
    return DeviceError(f"device runner on {where} printed more than {MAX_OUTPUT_BYTES // (1024 * 1024)} MB; "
                       f"stopped reading and stopped it", retryable=False)


def _last_json_object(stdout: str) -> Optional[Dict[str, Any]]:
    """The JSON object on the last stdout line that holds one, or None (anything else, including
    JSON nested too deeply to parse, is ignored)."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    return None


def read_answer(stdout: str, stderr: str, exit_code: int, where: str,
                not_found_hint: Optional[str] = None) -> Dict[str, Any]:
    """The runner's answer from its output and exit code, or a DeviceError saying why there is
    none: the runner's own error message, ``not_found_hint`` for exit 127 (no interpreter), else
    the output's tail. Retryable only when the runner was killed by a signal (exit < 0)."""
    answer = _last_json_object(stdout)
    if answer is not None and exit_code == 0 and answer.get("ok") is True:
        return answer
    if answer is not None and "error" in answer:
        error = answer["error"]
        reason = (error if isinstance(error, str) else short_repr(error))[:MAX_TEXT]
    elif exit_code == 127 and not_found_hint:
        reason = not_found_hint
    else:
        reason = f"no JSON answer: {tail(stderr) or tail(stdout) or '(no output)'}"
    raise DeviceError(f"device runner on {where} failed (exit {exit_code}): {reason}", retryable=exit_code < 0)
