"""A hardware measurement: raw latency samples plus a frozen, hashable spec of what was measured.

Statistics (median, p90, IQR, CV) are derived from the raw samples by
``nni_gensynth.device.stats``, the one place they are computed. A measurement carries warnings
when it is noisy or the device throttled. Noisy means the outlier-resistant CV (IQR / 1.349 /
median) is above the profile's ``cv_warn_threshold``: on a shared CPU a handful of preempted
inferences inflate the classic CV (std / mean, also reported) by orders of magnitude while the
median stays put.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Dict, Mapping, Optional, Tuple

from ..device import stats


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
    created: float = field(default_factory=time.time)
    from_cache: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if not self.samples_ms:
            raise ValueError("a Measurement needs at least one latency sample")
        bad = [s for s in self.samples_ms if not (isinstance(s, (int, float)) and math.isfinite(s) and s >= 0)]
        if bad:
            raise ValueError(f"latency samples must be finite and >= 0, got {bad[:3]}")
        if "energy_mj" not in self.energy or "source" not in self.energy:
            raise ValueError(f"energy must name energy_mj and source, got {sorted(self.energy)}")

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
    def warnings(self) -> Tuple[str, ...]:
        """Why this measurement may not be trustworthy (empty when it is clean)."""
        out = []
        if self.samples_kind != "raw":
            out.append(f"the device reported only an average over {self.reported_summary_ms.get('count', '?')} runs: "
                       f"latency_ms is that average; p90 and IQR are not known")
        if self.robust_cv > self.cv_warn_threshold:
            out.append(f"noisy: robust CV {self.robust_cv:.1%} (IQR/1.349/median; CV {self.cv:.1%}) > "
                       f"{self.cv_warn_threshold:.1%} over {len(self.samples_ms)} samples "
                       f"(close other programs, pin cores, or lengthen repeat.min_time_s)")
        load, cores = self.thermal.get("load_avg_start"), self.thermal.get("cpu_count")
        if load is not None and cores and load > cores - self.spec.threads + 0.5:
            out.append(f"device busy: load average {load:.1f} on {cores} cores before measuring "
                       f"(other programs compete with the {self.spec.threads} measuring thread(s))")
        if self.thermal.get("throttled"):
            out.append(f"device throttled during the measurement (vcgencmd get_throttled={self.thermal.get('throttled_raw')})")
        return tuple(out)

    def metrics(self) -> Dict[str, Any]:
        """The figures reported to NNI and printed by ``gensynth profile``."""
        return {
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

    # ---- construction and JSON ----------------------------------------------------------
    @classmethod
    def from_runner(cls, answer: Mapping[str, Any], spec: MeasurementSpec, cv_warn_threshold: float) -> "Measurement":
        """Build from the device runner's JSON answer (ValueError if it is malformed)."""
        try:
            return cls(spec=spec, samples_ms=tuple(float(s) for s in answer["samples_ms"]),
                       energy=dict(answer["energy"]), peak_mem_mb=float(answer["peak_mem_mb"]),
                       thermal=dict(answer.get("thermal") or {}), device=dict(answer.get("device") or {}),
                       affinity=tuple(int(c) for c in answer.get("affinity") or ()),
                       cv_warn_threshold=cv_warn_threshold,
                       cpu_samples_ms=tuple(float(s) for s in answer["cpu_samples_ms"])
                       if answer.get("cpu_samples_ms") else None,
                       samples_kind=str(answer.get("samples_kind", "raw")),
                       reported_summary_ms=dict(answer.get("summary_ms") or {})
                       if answer.get("samples_kind", "raw") != "raw" else {})
        except (KeyError, TypeError) as exc:
            raise ValueError(f"device runner answer is missing or has a bad field: {exc}") from None

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
        data = dict(data)
        spec = MeasurementSpec(**data.pop("spec"))
        data["samples_ms"] = tuple(data["samples_ms"])
        data["affinity"] = tuple(data.get("affinity") or ())
        if data.get("cpu_samples_ms") is not None:
            data["cpu_samples_ms"] = tuple(data["cpu_samples_ms"])
        return cls(spec=spec, from_cache=from_cache, **data)

    @classmethod
    def from_json(cls, text: str, from_cache: bool = False) -> "Measurement":
        return cls.from_dict(json.loads(text), from_cache=from_cache)

    def __repr__(self) -> str:
        return (f"Measurement({self.spec.profile} {self.spec.runtime}: median {self.median_ms:.4g} ms, "
                f"p90 {self.p90_ms:.4g} ms, CV {self.cv:.1%}, {self.energy_mj:.4g} mJ ({self.energy_source}), "
                f"{self.peak_mem_mb:.1f} MB, n={len(self.samples_ms)})")
