"""A hardware measurement: raw latency samples plus a frozen, hashable spec of what was measured.

Statistics (median, p90, IQR, CV) are derived from the raw samples by
``nni_gensynth.device.stats``, the one place they are computed. A measurement carries warnings
when it is noisy, the device throttled or the device is emulated (``emulated``: its figures are an
emulator's, a plumbing check, never a figure). Noisy means the outlier-resistant CV (IQR / 1.349 /
median) is above the profile's ``cv_warn_threshold``: on a shared CPU a handful of preempted
inferences inflate the classic CV (std / mean, also reported) by orders of magnitude while the
median stays put.

A Measurement checks its own fields (the same constraints a device's answer is held to), so a
damaged cache row cannot become one.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields as dataclass_fields
from functools import cached_property
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from ..defaults import NOISY_LATENCY_RSE
from ..device import stats
from ..engine.objective import UPPER_SUFFIX
from ..device.protocol import BACKENDS
from .answer import (
    AFFINITY,
    CPU_TIMES_MS,
    DELEGATE,
    DEVICE,
    EMULATED,
    ENERGY,
    LATENCIES_MS,
    PEAK_MEM_MB,
    SAMPLE_KINDS,
    SUMMARY_MS,
    THERMAL,
    THREADS,
    RunnerAnswer,
    validate_answer,
)
from ..constraints import Choice, FieldError, Nullable, Real, Record, Text, checked_fields
from .precision import MEASURED


@dataclass(frozen=True)
class MeasurementSpec:
    """What was measured, where and how; hashable, and part of the cache key."""

    arch_hash: str
    profile: str
    profile_fingerprint: str
    backend: str
    runtime: str
    threads: int
    device_id: str
    precision: str = "fp32"  # of the measured model: "fp32" or "int8" (stored rows from before: fp32)

    def __post_init__(self) -> None:
        _SPEC.check(asdict(self), "spec")


_SPEC = Record({"arch_hash": Text(max_len=256), "profile": Text(max_len=256), "profile_fingerprint": Text(max_len=256),
                "backend": Choice(BACKENDS), "runtime": Text(max_len=256), "threads": THREADS,
                "device_id": Text(max_len=1024), "precision": Choice(MEASURED)},
               required=tuple(f.name for f in dataclass_fields(MeasurementSpec) if f.name != "precision"))
checked_fields(_SPEC.table, [f.name for f in dataclass_fields(MeasurementSpec)])


@dataclass(frozen=True)
class Measurement:
    """Raw per-inference latencies (ms) and the device's energy, memory and thermal reports."""

    spec: MeasurementSpec
    samples_ms: Tuple[float, ...]
    energy: Mapping[str, Any]
    peak_mem_mb: float
    thermal: Mapping[str, Any] = field(default_factory=dict)
    device: Mapping[str, Any] = field(default_factory=dict)
    affinity: Tuple[int, ...] = ()
    cv_warn_threshold: float = 0.05
    cpu_samples_ms: Optional[Tuple[float, ...]] = None  # single-thread runs: CPU time per inference
    # "raw": one sample per inference; "summary": the device only reported an average (TFLite's
    # benchmark_model), whose own statistics are kept in reported_summary_ms (avg, std, cv, count...)
    samples_kind: str = "raw"
    reported_summary_ms: Mapping[str, float] = field(default_factory=dict)
    emulated: bool = False  # the device ran under an emulator: its figures are the emulator's
    # which delegate took the graph (answer.DELEGATE): {"requested", "applied", "delegated_kernels", ...}
    delegate: Mapping[str, Any] = field(default_factory=dict)
    # a pool's measurement (spec.device_id is the pool): which device of it measured, and how far
    # that device's medians stand from its peers' (drift.py; None while unknown)
    measured_on: str = ""
    drift: Optional[float] = None
    drift_tolerance: Optional[float] = None
    created: float = field(default_factory=time.time)
    from_cache: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.spec, MeasurementSpec):
            raise FieldError("spec", f"must be a MeasurementSpec, got {type(self.spec).__name__}")
        _FIELDS.check({name: getattr(self, name) for name in _FIELDS.table}, "")

    # ---- derived statistics -------------------------------------------------------------
    @cached_property
    def summary(self) -> Dict[str, float]:
        return stats.summarize(self.samples_ms)

    @property
    def median_ms(self) -> float:
        return self.summary["median"]

    @property
    def p90_ms(self) -> float:
        return self.summary["p90"]

    @property
    def iqr_ms(self) -> float:
        return self.summary["iqr"]

    @property
    def cv(self) -> float:
        if self.samples_kind == "summary" and "cv" in self.reported_summary_ms:
            return float(self.reported_summary_ms["cv"])
        return self.summary["cv"]

    @property
    def cpu_median_ms(self) -> Optional[float]:
        """Median CPU time per inference (single-thread runs), robust to a busy device."""
        return stats.median(self.cpu_samples_ms) if self.cpu_samples_ms else None

    @property
    def robust_cv(self) -> float:
        return self.cv if self.samples_kind == "summary" else self.summary["robust_cv"]

    @property
    def median_rse(self) -> Optional[float]:
        """Relative standard error of the median (``stats.median_rse``; None for summary-only runs)."""
        return None if self.samples_kind == "summary" else stats.median_rse(self.samples_ms)

    @property
    def energy_mj(self) -> float:
        return float(self.energy["energy_mj"])

    @property
    def energy_source(self) -> str:
        return str(self.energy["source"])

    @property
    def delegate_claimed_nothing(self) -> bool:
        """A delegate was asked for (or the runtime's default one) and took no node of the graph."""
        requested = self.delegate.get("requested")
        if requested in (None, "none"):
            return False
        explicit_but_absent = requested != "default" and not self.delegate.get("applied")
        return self.delegate.get("delegated_kernels") == 0 or explicit_but_absent

    @property
    def warnings(self) -> Tuple[str, ...]:
        """Why this measurement may not be trustworthy (empty when it is clean)."""
        out = []
        if self.samples_kind != "raw":
            count = self.reported_summary_ms.get("count")
            out.append(f"the device reported only an average over {'?' if count is None else f'{count:.0f}'} runs: "
                       f"latency_ms is that average; p90 and IQR are not known")
        if self.robust_cv > self.cv_warn_threshold:
            out.append(f"noisy: robust CV {self.robust_cv:.1%} (IQR/1.349/median; CV {self.cv:.1%}) > "
                       f"{self.cv_warn_threshold:.1%} over {len(self.samples_ms)} samples "
                       f"(close other programs, pin cores, or lengthen repeat.min_time_s)")
        load, cores = self.thermal.get("load_avg_start"), self.thermal.get("cpu_count")
        if load is not None and cores and load > cores - self.spec.threads + 0.5:
            out.append(f"device busy: load average {load:.1f} on {cores} cores before measuring "
                       f"(other programs compete with the {self.spec.threads} measuring thread(s))")
        if self.emulated:
            emulation = self.device.get("emulation")
            how = emulation.get("emulator") if isinstance(emulation, Mapping) else None
            out.append(f"emulated device ({self.device.get('machine', '?')} under {how or 'an emulator'}): latency "
                       f"and energy are the emulator's, not the real board's (a plumbing check, never a figure)")
        if self.delegate_claimed_nothing:
            out.append(f"the {self.delegate['requested']} delegate claimed no node of the model: it ran on "
                       f"{self.spec.runtime}'s built-in kernels, not on the delegate asked for")
        if self.drifted:
            out.append(f"device {self.measured_on} drifts {self.drift:+.0%} from its pool peers' medians "
                       f"(pool.drift_tolerance {self.drift_tolerance:.0%}): check its cooling, clocks and software")
        if self.thermal.get("throttled"):
            out.append(f"device throttled during the measurement (vcgencmd get_throttled={self.thermal.get('throttled_raw')})")
        return tuple(out)

    def metrics(self) -> Dict[str, Any]:
        """The figures reported to NNI and printed by ``gensynth profile`` (``emulated``: True only
        for a measurement from an emulated device)."""
        figures = {
            "latency_ms": self.median_ms,
            "latency_p90_ms": self.p90_ms,
            "latency_iqr_ms": self.iqr_ms,
            "latency_cpu_ms": self.cpu_median_ms,
            "cv": self.cv,
            "robust_cv": self.robust_cv,
            "latency_rse": self.median_rse,
            "energy_mj": self.energy_mj,
            "energy_source": self.energy_source,
            "peak_mem_mb": float(self.peak_mem_mb),
            "backend": self.spec.backend,
            "device": self.spec.device_id,
            "profile": self.spec.profile,
            "runtime": self.spec.runtime,
            "samples": len(self.samples_ms),
        }
        if figures["latency_rse"] is not None and figures["latency_rse"] > NOISY_LATENCY_RSE:
            # judged on this, not the median, by a `max` requirement (engine.objective.Requirements)
            figures["latency_ms" + UPPER_SUFFIX] = stats.median_upper_bound(self.samples_ms)
        if self.delegate:
            figures["delegate"] = self.delegate.get("applied") or "none"
        if self.emulated:
            figures["emulated"] = True
        if self.measured_on:
            figures.update(device=self.measured_on, device_pool=self.spec.device_id)
            if self.drift is not None:
                figures.update(device_drift=self.drift, device_drifted=self.drifted)
        return figures

    @property
    def drifted(self) -> bool:
        """The pool device that measured this drifts from its peers by more than the tolerance."""
        return self.drift is not None and self.drift_tolerance is not None and abs(self.drift) > self.drift_tolerance

    # ---- construction and JSON ----------------------------------------------------------
    @classmethod
    def from_runner(cls, answer: Union[RunnerAnswer, Mapping[str, Any]], spec: MeasurementSpec,
                    cv_warn_threshold: float) -> "Measurement":
        """Build from the device's answer: a RunnerAnswer, or a parsed answer that is checked first
        (``validate_answer``: AnswerError naming the bad field)."""
        if not isinstance(answer, RunnerAnswer):
            answer = validate_answer(answer)
        return cls(spec=spec, samples_ms=answer.samples_ms, energy=dict(answer.energy),
                   peak_mem_mb=answer.peak_mem_mb, thermal=dict(answer.thermal), device=dict(answer.device),
                   affinity=answer.affinity, cv_warn_threshold=cv_warn_threshold,
                   cpu_samples_ms=answer.cpu_samples_ms, samples_kind=answer.samples_kind,
                   reported_summary_ms=dict(answer.summary_ms), emulated=answer.emulated,
                   delegate=dict(answer.delegate))

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data.pop("from_cache")
        data["samples_ms"] = list(self.samples_ms)
        data["affinity"] = list(self.affinity)
        data["cpu_samples_ms"] = None if self.cpu_samples_ms is None else list(self.cpu_samples_ms)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], from_cache: bool = False) -> "Measurement":
        """The inverse of ``to_dict``; ValueError (naming the field where it can) if ``data`` is
        not a valid measurement."""
        try:
            data = dict(data)
            spec = MeasurementSpec(**data.pop("spec"))
            for name in ("samples_ms", "affinity", "cpu_samples_ms"):
                if isinstance(data.get(name), list):
                    data[name] = tuple(data[name])
            data.setdefault("affinity", ())
            return cls(spec=spec, from_cache=from_cache, **data)
        except FieldError:
            raise
        except (TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"not a stored measurement: {type(exc).__name__}: {exc}") from None

    @classmethod
    def from_json(cls, text: str, from_cache: bool = False) -> "Measurement":
        try:
            data = json.loads(text)
        except RecursionError:
            raise ValueError("not a stored measurement: JSON nested too deeply") from None
        return cls.from_dict(data, from_cache=from_cache)

    def __repr__(self) -> str:
        return (f"Measurement({self.spec.profile} {self.spec.runtime}: median {self.median_ms:.4g} ms, "
                f"p90 {self.p90_ms:.4g} ms, CV {self.cv:.1%}, {self.energy_mj:.4g} mJ ({self.energy_source}), "
                f"{self.peak_mem_mb:.1f} MB, n={len(self.samples_ms)}{', EMULATED' if self.emulated else ''})")


_FIELDS = Record({
    "samples_ms": LATENCIES_MS, "energy": ENERGY, "peak_mem_mb": PEAK_MEM_MB, "thermal": THERMAL, "device": DEVICE,
    "affinity": AFFINITY, "cv_warn_threshold": Real(0.0, 10.0, low_open=True), "cpu_samples_ms": CPU_TIMES_MS,
    "samples_kind": Choice(SAMPLE_KINDS), "reported_summary_ms": SUMMARY_MS, "emulated": EMULATED,
    "delegate": DELEGATE, "measured_on": Text(max_len=1024, allow_empty=True), "drift": Nullable(Real(-1.0, 1e6)),
    "drift_tolerance": Nullable(Real(0.0, 10.0, low_open=True)), "created": Real(0.0, 1e11)})
checked_fields(_FIELDS.table, [f.name for f in dataclass_fields(Measurement) if f.name not in ("spec", "from_cache")])
