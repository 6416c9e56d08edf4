"""One measurement as the device is asked to run it: a frozen, typed ``RunRequest``.

``measure`` builds it from the profile once (``RunRequest.for_profile``); a transport receives
it whole. Only where a device runner is started does it become a command line
(``runner_argv``); TFLite's benchmark_model mode reads the typed fields instead.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ..device.protocol import BACKENDS, DELEGATES
from .lease import LeaseSpec
from .limits import RUN_TIMEOUT_S
from .profiles import EnergyConfig, HardwareProfile, RepeatPolicy, WarmupPolicy


@dataclass(frozen=True)
class RunRequest:
    """What to run on the device and how.

    ``model_path`` is the model file on the host (a remote transport pushes it and names the
    device's copy); ``input_shape`` is the shape it was exported for (the runner reads the shapes
    from the file itself); ``timeout_s`` bounds one call on the device; ``delegate`` is the LiteRT
    delegate to apply (None: the runtime's default).
    """

    model_path: Path
    backend: str
    threads: int = 1
    affinity: Union[None, str, Tuple[int, ...]] = None  # core ids, or "big"
    warmup: WarmupPolicy = field(default_factory=WarmupPolicy)
    repeat: RepeatPolicy = field(default_factory=RepeatPolicy)
    energy: EnergyConfig = field(default_factory=EnergyConfig)
    input_shape: Optional[Tuple[int, ...]] = None
    timeout_s: float = RUN_TIMEOUT_S
    delegate: Optional[str] = None
    lease: Optional[LeaseSpec] = None  # a pool's run: hold the device's lease (lease.py)

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_path", Path(self.model_path))
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.delegate is not None and (self.delegate not in DELEGATES or self.backend != "litert"):
            raise ValueError(f"delegate must be None or, for backend litert, one of {', '.join(DELEGATES)}; "
                             f"got {self.delegate!r} for backend {self.backend!r}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"threads must be an integer >= 1, got {self.threads!r}")
        if not (isinstance(self.timeout_s, (int, float)) and math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ValueError(f"timeout_s must be a finite number > 0, got {self.timeout_s!r}")

    @classmethod
    def for_profile(cls, profile: HardwareProfile, model_path: Union[str, os.PathLike],
                    input_shape: Optional[Sequence[int]] = None) -> "RunRequest":
        """The request ``profile`` makes for ``model_path`` (its input shape unless given)."""
        return cls(model_path=Path(model_path), backend=profile.backend, threads=profile.threads,
                   affinity=profile.cpu_affinity, warmup=profile.warmup, repeat=profile.repeat,
                   energy=profile.energy,
                   input_shape=tuple(input_shape) if input_shape is not None else profile.input_shape,
                   timeout_s=profile.transport.timeout_s, delegate=profile.delegate)

    @property
    def affinity_spec(self) -> Optional[str]:
        """The affinity as the runner writes it: "big", "0,1", or None (leave as is)."""
        if self.affinity is None or isinstance(self.affinity, str):
            return self.affinity
        return ",".join(str(core) for core in self.affinity)


def energy_settings(energy: EnergyConfig) -> Dict[str, Any]:
    """The runner's --energy-config object: the energy settings that are set (source aside)."""
    out = {k: v for k, v in asdict(energy).items() if k != "source" and v is not None}
    if "pmic_command" in out:
        out["pmic_command"] = list(out["pmic_command"])
    return out


def runner_argv(request: RunRequest, model_path_on_device: str) -> List[str]:
    """The device runner's command line (after ``python -m nni_gensynth.device``) for ``request``,
    with the model at ``model_path_on_device``."""
    argv = ["measure", "--model", str(model_path_on_device), "--backend", request.backend,
            "--threads", str(request.threads),
            "--warmup-min-time-s", repr(float(request.warmup.min_time_s)),
            "--warmup-min-runs", str(request.warmup.min_runs),
            "--min-time-s", repr(float(request.repeat.min_time_s)),
            "--min-runs", str(request.repeat.min_runs), "--max-runs", str(request.repeat.max_runs)]
    if request.repeat.time_limit_s is not None:
        argv += ["--target-rse", repr(float(request.repeat.target_rse)),
                 "--max-time-s", repr(float(request.repeat.time_limit_s))]
    argv += ["--energy-source", request.energy.source,
             "--energy-config", json.dumps(energy_settings(request.energy), sort_keys=True, allow_nan=False)]
    if request.affinity_spec is not None:
        argv += ["--affinity", request.affinity_spec]
    if request.delegate is not None:
        argv += ["--delegate", request.delegate]
    return argv
