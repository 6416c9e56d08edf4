"""Hardware profiles: one YAML file per device under hw_profiles/, validated into a frozen
``HardwareProfile``.

Lookup order for ``load_profile(name_or_path)``: an explicit path to a .yml/.yaml file; then
``$GENSYNTH_HW_PROFILES/<name>.yml``; then the repository's ``hw_profiles/<name>.yml`` (found
relative to this package; an editable install is the supported install).

Bad profiles raise ``ProfileError`` (a ValueError) whose message names the file and the field.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping as MappingABC
from dataclasses import asdict, dataclass, field, fields as dataclass_fields
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

PROFILE_DIR_ENV = "GENSYNTH_HW_PROFILES"
REPO_PROFILE_DIR = Path(__file__).resolve().parents[2] / "hw_profiles"
BACKENDS = ("onnxruntime", "litert")
TRANSPORTS = ("local", "ssh", "adb")
ENERGY_SOURCES = ("auto", "rapl", "battery", "pmic", "ina219", "model")
ADB_MODES = ("benchmark_model", "device_runner")


class ProfileError(ValueError):
    """A hardware profile is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class TransportConfig(MappingABC):
    """How to reach the device. ssh: host..workdir; adb: serial..mode (+ python, workdir).

    Also a read-only Mapping of its fields (``config["host"]``, ``config.get("port")``), so
    transports can take either a profile's TransportConfig or a plain dict.
    """

    kind: str = "local"
    # ssh
    host: Optional[str] = None
    port: int = 22
    user: Optional[str] = None
    key_file: Optional[str] = None
    known_hosts: Optional[str] = None
    python: str = "python3"
    workdir: Optional[str] = None
    # adb
    serial: Optional[str] = None
    adb_host: str = "127.0.0.1"
    adb_port: int = 5037
    benchmark_binary: str = "/data/local/tmp/benchmark_model"
    mode: str = "benchmark_model"
    # any remote transport: seconds a single device-runner call may take
    timeout_s: float = 600.0

    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):  # type: ignore[override]
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _names(cls) -> Tuple[str, ...]:
        return tuple(f.name for f in dataclass_fields(cls))


@dataclass(frozen=True)
class WarmupPolicy:
    """Warm up for at least min_time_s AND min_runs inferences."""

    min_time_s: float = 1.0
    min_runs: int = 10


@dataclass(frozen=True)
class RepeatPolicy:
    """Time at least min_time_s of inference AND min_runs samples, at most max_runs; with
    target_rse, go on (up to max_time_s, default 3 x min_time_s) while the median's relative
    standard error is above it."""

    min_time_s: float = 2.0
    min_runs: int = 30
    max_runs: int = 10000
    target_rse: Optional[float] = None
    max_time_s: Optional[float] = None

    def runner_args(self) -> List[str]:
        """The device runner's timing arguments."""
        args = ["--min-time-s", repr(self.min_time_s), "--min-runs", str(self.min_runs),
                "--max-runs", str(self.max_runs)]
        if self.target_rse is not None:
            args += ["--target-rse", repr(self.target_rse),
                     "--max-time-s", repr(self.max_time_s if self.max_time_s is not None else 3 * self.min_time_s)]
        return args


@dataclass(frozen=True)
class EnergyConfig:
    """Energy source and its settings (see nni_gensynth.device.energy for each source)."""

    source: str = "auto"
    active_power_w: Optional[float] = None  # model source: W per busy core
    idle_s: Optional[float] = None  # idle baseline length for measured sources
    sample_interval_s: Optional[float] = None
    ina219_hwmon: Optional[str] = None  # e.g. /sys/class/hwmon/hwmon2
    battery_supply: Optional[str] = None  # e.g. "battery" under /sys/class/power_supply
    pmic_command: Optional[Tuple[str, ...]] = None  # default: vcgencmd pmic_read_adc

    def runner_config(self) -> Dict[str, Any]:
        """The --energy-config object for the device runner (unset settings left out)."""
        out = {k: v for k, v in asdict(self).items() if k != "source" and v is not None}
        if "pmic_command" in out:
            out["pmic_command"] = list(out["pmic_command"])
        return out


@dataclass(frozen=True)
class HardwareProfile:
    """One device: where it is, which interpreter runs models, and how to measure on it."""

    name: str
    backend: str
    transport: TransportConfig
    description: str = ""
    threads: int = 1
    cpu_affinity: Union[None, str, Tuple[int, ...]] = None  # core ids, or "big"
    warmup: WarmupPolicy = field(default_factory=WarmupPolicy)
    repeat: RepeatPolicy = field(default_factory=RepeatPolicy)
    energy: EnergyConfig = field(default_factory=EnergyConfig)
    input_shape: Tuple[int, ...] = (1, 3, 32, 32)
    cv_warn_threshold: float = 0.05
    source_path: Optional[str] = field(default=None, compare=False)

    def runner_args(self) -> List[str]:
        """Device-runner arguments for this profile (all but --model)."""
        args = ["--backend", self.backend, "--threads", str(self.threads),
                "--warmup-min-time-s", repr(self.warmup.min_time_s),
                "--warmup-min-runs", str(self.warmup.min_runs),
                *self.repeat.runner_args(),
                "--energy-source", self.energy.source,
                "--energy-config", json.dumps(self.energy.runner_config(), sort_keys=True)]
        if self.cpu_affinity is not None:
            affinity = self.cpu_affinity
            args += ["--affinity", affinity if isinstance(affinity, str) else ",".join(map(str, affinity))]
        return args

    def to_dict(self) -> Dict[str, Any]:
        """Plain-data form (what a YAML file would hold), without source_path."""
        data = asdict(self)
        data.pop("source_path")
        return data

    def fingerprint(self) -> str:
        """16 hex digits over every setting that changes a measurement (not name/description)."""
        data = self.to_dict()
        data.pop("name")
        data.pop("description")
        data["transport"].pop("timeout_s")
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=list)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Validation


class _Checker:
    """Type checks that name the file and the dotted field."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, where: str, message: str) -> ProfileError:
        return ProfileError(f"hardware profile {self.origin}: field '{where}': {message}")

    def mapping(self, value: Any, where: str, allowed: Tuple[str, ...], required: Tuple[str, ...] = ()) -> Dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"must be a mapping, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                prefix = f"{where}." if where != "<top>" else ""
                raise ProfileError(f"hardware profile {self.origin}: unknown field '{prefix}{key}' "
                                   f"(allowed: {', '.join(allowed)})")
        for key in required:
            if key not in value:
                prefix = f"{where}." if where != "<top>" else ""
                raise ProfileError(f"hardware profile {self.origin}: missing required field '{prefix}{key}'")
        return dict(value)

    def string(self, value: Any, where: str, choices: Optional[Tuple[str, ...]] = None) -> str:
        if not isinstance(value, str) or value == "":
            raise self.fail(where, f"must be a non-empty string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(where, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def integer(self, value: Any, where: str, minimum: int, maximum: int = 2 ** 31) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"must be an integer, got {value!r}")
        if not minimum <= value <= maximum:
            raise self.fail(where, f"must be within [{minimum}, {maximum}], got {value}")
        return value

    def number(self, value: Any, where: str, minimum: float = 0.0, strict: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, f"must be a number, got {value!r}")
        if value < minimum or (strict and value == minimum):
            raise self.fail(where, f"must be {'>' if strict else '>='} {minimum}, got {value}")
        return float(value)


def _build_transport(c: _Checker, raw: Any) -> TransportConfig:
    ssh = ("host", "port", "user", "key_file", "known_hosts", "python", "workdir", "timeout_s")
    adb = ("serial", "adb_host", "adb_port", "benchmark_binary", "mode", "python", "workdir", "timeout_s")
    base = c.mapping(raw, "transport", ("kind",) + tuple(dict.fromkeys(ssh + adb)), ("kind",))
    kind = c.string(base["kind"], "transport.kind", TRANSPORTS)
    allowed = {"local": ("kind",), "ssh": ("kind",) + ssh, "adb": ("kind",) + adb}[kind]
    data = c.mapping(raw, "transport", allowed, ("kind", "host") if kind == "ssh" else ("kind",))
    out: Dict[str, Any] = {"kind": kind}
    for key, value in data.items():
        where = f"transport.{key}"
        if key in ("port", "adb_port"):
            out[key] = c.integer(value, where, 1, 65535)
        elif key == "timeout_s":
            out[key] = c.number(value, where, 0.0, strict=True)
        elif key == "mode":
            out[key] = c.string(value, where, ADB_MODES)
        elif key != "kind":
            out[key] = c.string(str(value) if key == "serial" and isinstance(value, int) else value, where)
    return TransportConfig(**out)


def _build_energy(c: _Checker, raw: Any) -> EnergyConfig:
    fields = ("source", "active_power_w", "idle_s", "sample_interval_s", "ina219_hwmon", "battery_supply",
              "pmic_command")
    data = c.mapping(raw, "energy", fields)
    out: Dict[str, Any] = {}
    for key, value in data.items():
        where = f"energy.{key}"
        if key == "source":
            out[key] = c.string(value, where, ENERGY_SOURCES)
        elif key in ("active_power_w", "sample_interval_s"):
            out[key] = c.number(value, where, 0.0, strict=True)
        elif key == "idle_s":
            out[key] = c.number(value, where, 0.0)
        elif key == "pmic_command":
            if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
                raise c.fail(where, f"must be a list of strings, got {value!r}")
            out[key] = tuple(value)
        else:
            out[key] = c.string(value, where)
    return EnergyConfig(**out)


def profile_from_dict(raw: Any, origin: str = "<dict>") -> HardwareProfile:
    """Validate a parsed profile mapping into a HardwareProfile (``origin`` names it in errors)."""
    c = _Checker(origin)
    top = ("name", "description", "backend", "transport", "threads", "cpu_affinity", "warmup", "repeat",
           "energy", "input_shape", "cv_warn_threshold")
    data = c.mapping(raw, "<top>", top, ("name", "backend", "transport"))
    out: Dict[str, Any] = {
        "name": c.string(data["name"], "name"),
        "backend": c.string(data["backend"], "backend", BACKENDS),
        "transport": _build_transport(c, data["transport"]),
        "source_path": origin,
    }
    if "description" in data:
        if not isinstance(data["description"], str):
            raise c.fail("description", "must be a string")
        out["description"] = data["description"].strip()
    if "threads" in data:
        out["threads"] = c.integer(data["threads"], "threads", 1, 256)
    if data.get("cpu_affinity") is not None:
        value = data["cpu_affinity"]
        if value == "big":
            out["cpu_affinity"] = "big"
        elif isinstance(value, list) and value:
            out["cpu_affinity"] = tuple(c.integer(v, f"cpu_affinity[{i}]", 0, 4095) for i, v in enumerate(value))
        else:
            raise c.fail("cpu_affinity", f"must be a non-empty list of core ids or \"big\", got {value!r}")
    if "warmup" in data:
        w = c.mapping(data["warmup"], "warmup", ("min_time_s", "min_runs"))
        out["warmup"] = WarmupPolicy(
            min_time_s=c.number(w.get("min_time_s", WarmupPolicy.min_time_s), "warmup.min_time_s"),
            min_runs=c.integer(w.get("min_runs", WarmupPolicy.min_runs), "warmup.min_runs", 0))
    if "repeat" in data:
        r = c.mapping(data["repeat"], "repeat", ("min_time_s", "min_runs", "max_runs", "target_rse", "max_time_s"))
        repeat = RepeatPolicy(
            min_time_s=c.number(r.get("min_time_s", RepeatPolicy.min_time_s), "repeat.min_time_s"),
            min_runs=c.integer(r.get("min_runs", RepeatPolicy.min_runs), "repeat.min_runs", 1),
            max_runs=c.integer(r.get("max_runs", RepeatPolicy.max_runs), "repeat.max_runs", 1),
            target_rse=None if r.get("target_rse") is None
            else c.number(r["target_rse"], "repeat.target_rse", 0.0, strict=True),
            max_time_s=None if r.get("max_time_s") is None else c.number(r["max_time_s"], "repeat.max_time_s"))
        if repeat.max_runs < repeat.min_runs:
            raise c.fail("repeat.max_runs", f"must be >= repeat.min_runs ({repeat.min_runs}), got {repeat.max_runs}")
        if repeat.target_rse is not None and repeat.target_rse >= 1.0:
            raise c.fail("repeat.target_rse", f"must be < 1 (a fraction such as 0.01), got {repeat.target_rse}")
        if repeat.max_time_s is not None and repeat.max_time_s < repeat.min_time_s:
            raise c.fail("repeat.max_time_s", f"must be >= repeat.min_time_s ({repeat.min_time_s}), "
                                              f"got {repeat.max_time_s}")
        out["repeat"] = repeat
    if "energy" in data:
        out["energy"] = _build_energy(c, data["energy"])
    if "input_shape" in data:
        shape = data["input_shape"]
        if not isinstance(shape, list) or not shape:
            raise c.fail("input_shape", f"must be a non-empty list of positive integers, got {shape!r}")
        out["input_shape"] = tuple(c.integer(v, f"input_shape[{i}]", 1) for i, v in enumerate(shape))
    if "cv_warn_threshold" in data:
        out["cv_warn_threshold"] = c.number(data["cv_warn_threshold"], "cv_warn_threshold", 0.0, strict=True)
    return HardwareProfile(**out)


# ---------------------------------------------------------------------------------------------
# Lookup


def profile_dirs() -> List[Path]:
    """Directories searched for profile names, in order."""
    dirs = []
    if os.environ.get(PROFILE_DIR_ENV):
        dirs.append(Path(os.environ[PROFILE_DIR_ENV]).expanduser())
    dirs.append(REPO_PROFILE_DIR)
    return dirs


def available_profiles() -> List[str]:
    """Names of every profile found in the search directories."""
    names = set()
    for directory in profile_dirs():
        if directory.is_dir():
            names.update(p.stem for p in directory.glob("*.yml"))
            names.update(p.stem for p in directory.glob("*.yaml"))
    return sorted(names)


def find_profile(name_or_path: Union[str, os.PathLike]) -> Path:
    """The file a profile name or path refers to (FileNotFoundError listing names if none)."""
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.suffix in (".yml", ".yaml") or os.sep in text:
        if path.is_file():
            return path
        raise FileNotFoundError(f"hardware profile file not found: {path}")
    for directory in profile_dirs():
        for suffix in (".yml", ".yaml"):
            candidate = directory / f"{text}{suffix}"
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(
        f"no hardware profile named {text!r} in {', '.join(str(d) for d in profile_dirs())}; "
        f"available: {', '.join(available_profiles()) or 'none'}")


def load_profile(name_or_path: Union[str, os.PathLike, HardwareProfile]) -> HardwareProfile:
    """Load and validate a hardware profile by name or path (a HardwareProfile passes through)."""
    if isinstance(name_or_path, HardwareProfile):
        return name_or_path
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"profile must be a name, a path or a HardwareProfile, got {type(name_or_path).__name__}")
    import yaml  # host only; the device runner never loads profiles

    path = find_profile(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProfileError(f"hardware profile {path}: not valid YAML: {exc}") from None
    return profile_from_dict(raw, str(path))


def load_profiles(spec: Union[str, os.PathLike, HardwareProfile, Sequence[Any]]) -> Tuple[HardwareProfile, ...]:
    """Several profiles: "host-cpu,host-tflite" (comma-separated names or paths), one profile,
    or a sequence of them. The first is the primary one. Each backend may appear once, because
    the others' metrics are named after it (``litert_latency_ms``, see ``measure_profiles``)."""
    if isinstance(spec, str):
        items: Sequence[Any] = [part.strip() for part in spec.split(",")]
        if not all(items):
            raise ValueError(f"hardware profiles {spec!r}: an empty name between commas")
    elif isinstance(spec, (os.PathLike, HardwareProfile)):
        items = [spec]
    else:
        items = list(spec)
    if not items:
        raise ValueError("at least one hardware profile is needed")
    profiles = tuple(load_profile(item) for item in items)
    seen: Dict[str, str] = {}
    for profile in profiles:
        if profile.backend in seen:
            raise ValueError(f"hardware profiles {seen[profile.backend]!r} and {profile.name!r} both run backend "
                             f"{profile.backend!r}; give one profile per backend")
        seen[profile.backend] = profile.name
    return profiles

