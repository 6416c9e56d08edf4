"""Numeric precision of a measured network: the names, and how a metric says which one it is.

A profile (``precision:``) or an evaluation (``--precision``) asks for ``fp32``, ``int8`` or
``both``. Float32 figures keep their names (``latency_ms``); int8 figures carry ``int8_`` after
the profile's backend prefix (``int8_latency_ms``, ``litert_int8_latency_ms``), so a metric's
name always says what was measured. Torch-free: specs and profiles read it.
"""
from __future__ import annotations

from typing import Optional

FP32, INT8, BOTH = "fp32", "int8", "both"
PRECISIONS = (FP32, INT8, BOTH)   # what a profile or an evaluation may ask for
MEASURED = (FP32, INT8)           # what one measurement is


def measured_precisions(setting: str) -> tuple[str, ...]:
    """The precisions one setting measures, float32 first: "both" -> ("fp32", "int8")."""
    if setting not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {setting!r}")
    return MEASURED if setting == BOTH else (setting,)


def metric_scope(precision: str, backend: Optional[str] = None) -> str:
    """What a metric's name starts with: "" (fp32 on the first profile), "int8", "litert",
    "litert_int8" (``backend``: a further profile's backend, None for the first profile)."""
    if precision not in MEASURED:
        raise ValueError(f"a measurement's precision is fp32 or int8, got {precision!r}")
    parts = [part for part in (backend, INT8 if precision == INT8 else None) if part]
    return "_".join(parts)


def scoped(scope: str, name: str) -> str:
    """``name`` within ``scope``: ("litert_int8", "latency_ms") -> "litert_int8_latency_ms"."""
    return f"{scope}_{name}" if scope else name
