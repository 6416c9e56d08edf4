"""Hardware profiles: one YAML file per device under hw_profiles/, validated into a frozen
``HardwareProfile``. A profile may name a pool of identical devices instead (``transport.devices``
and ``pool``: measured one free device at a time under device-side leases, see pool.py).

Lookup order for ``load_profile(name_or_path)``: an explicit path to a .yml/.yaml file; then
``$GENSYNTH_HW_PROFILES/<name>.yml``; then the repository's ``hw_profiles/<name>.yml`` (found
relative to this package; an editable install is the supported install).

Bad profiles raise ``ProfileError`` (a ValueError) whose message names the file and the field.
Each config dataclass carries its table of field constraints (``CONSTRAINTS``, see
``nni_gensynth.constraints``) and, where fields depend on each other, ``check_together``:
every number must be finite and in a sensible range when the profile is loaded, never later on
a device.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping as MappingABC
from dataclasses import asdict, dataclass, field, fields as dataclass_fields, replace
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..device.protocol import BACKENDS, DELEGATES, ENERGY_SOURCES, RUNNER_DELEGATES
from ..constraints import (
    AnyOf,
    Choice,
    Constraint,
    FieldError,
    Integer,
    ListOf,
    Nullable,
    Real,
    Record,
    Text,
    checked_fields,
)
from .limits import MAX_RUN_TIMEOUT_S, MAX_RUNS, RUN_TIMEOUT_S
from .precision import FP32, PRECISIONS
from .shapes import parse_input_shape

PROFILE_DIR_ENV = "GENSYNTH_HW_PROFILES"
REPO_PROFILE_DIR = Path(__file__).resolve().parents[2] / "hw_profiles"  # a checkout (editable install)
SHIPPED_PROFILE_DIR = Path(__file__).resolve().parents[1] / "shipped" / "hw_profiles"  # an installed wheel
TRANSPORTS = ("local", "ssh", "adb")
ADB_MODES = ("benchmark_model", "device_runner")
MAX_PHASE_S = 3600.0  # the longest warm-up, idle baseline or timing phase a profile may ask for
MAX_THREADS = 256
MAX_CORE_ID = 4095
MAX_POOL_DEVICES = 256


class ProfileError(ValueError):
    """A hardware profile is malformed; the message names the file and the field (``field``)."""

    def __init__(self, message: str, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.field = field


_NAME = Text(max_len=255, pattern=r"\S+")  # host names, users, serials: no blanks
_PATH = Text(max_len=4096)
_PORT = Integer(1, 65535)


@dataclass(frozen=True)
class _AsText(Constraint):
    """A string, or an integer taken as its digits (an adb serial such as 12345678 in YAML)."""

    inner: Text

    def check(self, value: Any, field: str) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value) if value.bit_length() <= 64 else value
        return self.inner.check(value, field)


@dataclass(frozen=True)
class _Devices(Constraint):
    """``transport.devices``: a pool's devices, 1..MAX_POOL_DEVICES mappings of the address fields
    of the transport's ``kind`` (``TransportConfig.DEVICE_FIELDS``; the ``DEVICE_KEY`` one
    required), each overriding the transport's own fields. ``_Transport`` merges them."""

    kind: Optional[str] = None  # set by _Transport; without a kind no device is valid

    def check(self, value: Any, field: str) -> Tuple[Dict[str, Any], ...]:
        if self.kind not in TransportConfig.DEVICE_FIELDS:
            raise FieldError(field, "a pool needs transport kind ssh or adb")
        table = {name: TransportConfig.CONSTRAINTS[name] for name in TransportConfig.DEVICE_FIELDS[self.kind]}
        item = Record(table, (TransportConfig.DEVICE_KEY[self.kind],))
        return ListOf(item, 1, MAX_POOL_DEVICES).check(value, field)


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
    # any transport: seconds a single device-runner call may take
    timeout_s: float = RUN_TIMEOUT_S
    # ssh, adb: a pool of devices of one kind, each this transport with its own address (see _Devices)
    devices: Tuple["TransportConfig", ...] = ()

    CONSTRAINTS: ClassVar[Dict[str, Constraint]] = {
        "kind": Choice(TRANSPORTS), "host": _NAME, "port": _PORT, "user": _NAME, "key_file": _PATH,
        "known_hosts": _PATH, "python": _PATH, "workdir": _PATH, "serial": _AsText(_NAME), "adb_host": _NAME,
        "adb_port": _PORT, "benchmark_binary": _PATH, "mode": Choice(ADB_MODES),
        "timeout_s": Real(0.0, MAX_RUN_TIMEOUT_S, low_open=True), "devices": _Devices(),
    }
    # the fields each kind may set, and must set
    FIELDS: ClassVar[Dict[str, Tuple[str, ...]]] = {
        "local": ("kind", "timeout_s"),
        "ssh": ("kind", "host", "port", "user", "key_file", "known_hosts", "python", "workdir", "timeout_s",
                "devices"),
        "adb": ("kind", "serial", "adb_host", "adb_port", "benchmark_binary", "mode", "python", "workdir",
                "timeout_s", "devices"),
    }
    # a pool's device: the fields one item of ``devices`` may set, and the one that names it
    DEVICE_FIELDS: ClassVar[Dict[str, Tuple[str, ...]]] = {
        "ssh": ("host", "port", "user", "key_file", "known_hosts", "python", "workdir"),
        "adb": ("serial", "adb_host", "adb_port", "benchmark_binary", "python", "workdir"),
    }
    DEVICE_KEY: ClassVar[Dict[str, str]] = {"ssh": "host", "adb": "serial"}
    REQUIRED: ClassVar[Dict[str, Tuple[str, ...]]] = {"local": ("kind",), "ssh": ("kind", "host"), "adb": ("kind",)}

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

    CONSTRAINTS: ClassVar[Dict[str, Constraint]] = {
        "min_time_s": Real(0.0, MAX_PHASE_S), "min_runs": Integer(0, MAX_RUNS)}


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

    CONSTRAINTS: ClassVar[Dict[str, Constraint]] = {
        "min_time_s": Real(0.0, MAX_PHASE_S), "min_runs": Integer(1, MAX_RUNS), "max_runs": Integer(1, MAX_RUNS),
        "target_rse": Nullable(Real(0.0, 1.0, low_open=True, high_open=True)),
        "max_time_s": Nullable(Real(0.0, MAX_PHASE_S))}

    @property
    def time_limit_s(self) -> Optional[float]:
        """How long timing may go on while the median settles (None without target_rse)."""
        if self.target_rse is None:
            return None
        return self.max_time_s if self.max_time_s is not None else 3 * self.min_time_s

    def check_together(self, where: str) -> None:
        if self.max_runs < self.min_runs:
            raise FieldError(f"{where}.max_runs", f"must be >= {where}.min_runs ({self.min_runs}), got {self.max_runs}")
        if self.max_time_s is not None and self.max_time_s < self.min_time_s:
            raise FieldError(f"{where}.max_time_s",
                             f"must be >= {where}.min_time_s ({self.min_time_s}), got {self.max_time_s}")


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

    CONSTRAINTS: ClassVar[Dict[str, Constraint]] = {
        "source": Choice(ENERGY_SOURCES), "active_power_w": Real(0.0, 1000.0, low_open=True),
        "idle_s": Real(0.0, MAX_PHASE_S), "sample_interval_s": Real(0.001, 60.0), "ina219_hwmon": _PATH,
        # a name under /sys/class/power_supply, never a path or a shell word
        "battery_supply": Text(max_len=255, pattern=r"[A-Za-z0-9_.:@+-]+"),
        "pmic_command": ListOf(Text(), 1, 32)}


@dataclass(frozen=True)
class PoolConfig:
    """How a pool of identical devices is shared (``nni_gensynth.hardware.pool``).

    ``name`` is the pool's identity, the device KIND its measurements are cached under (any device
    of the pool serves a cache hit; default: the profile's name): give one name to devices of one
    hardware model and software. ``drift_tolerance``: a device whose medians differ from its
    peers' by more than this fraction is flagged. ``lease_wait_s``: how long a measurement waits
    for a free device. ``probe_interval_s``: an offline device is tried again after this long.
    ``cross_check_every``: one fresh measurement in this many is repeated on another device, so
    every device is compared with its peers (0: never).
    """

    name: Optional[str] = None
    drift_tolerance: float = 0.1
    lease_wait_s: float = 1800.0
    probe_interval_s: float = 30.0
    cross_check_every: int = 10

    CONSTRAINTS: ClassVar[Dict[str, Constraint]] = {
        "name": Text(max_len=255, pattern=r"[A-Za-z0-9._:@+-]+"), "drift_tolerance": Real(0.0, 10.0, low_open=True),
        "lease_wait_s": Real(0.0, MAX_RUN_TIMEOUT_S, low_open=True), "probe_interval_s": Real(0.1, 86400.0),
        "cross_check_every": Integer(0, 1_000_000)}


CPU_AFFINITY = Nullable(AnyOf((Choice(("big",)), ListOf(Integer(0, MAX_CORE_ID), 1, MAX_CORE_ID + 1))))


@dataclass(frozen=True)
class _InputShape(Constraint):
    def check(self, value: Any, field: str) -> Tuple[int, ...]:
        return parse_input_shape(value, name=field)


@dataclass(frozen=True)
class _Config(Constraint):
    """A config dataclass built from a mapping checked against its CONSTRAINTS table."""

    cls: type

    def check(self, value: Any, field: str) -> Any:
        config = self.cls(**Record(self.cls.CONSTRAINTS).check(value, field))
        if hasattr(config, "check_together"):
            config.check_together(field)
        return config


@dataclass(frozen=True)
class _Transport(Constraint):
    """A TransportConfig: the fields its kind allows, those it requires."""

    def check(self, value: Any, field: str) -> TransportConfig:
        if not isinstance(value, Mapping):
            Record({}).check(value, field)  # the "must be a mapping" error
        kind = Choice(TRANSPORTS).check(value.get("kind"), f"{field}.kind")
        table = {name: TransportConfig.CONSTRAINTS[name] for name in TransportConfig.FIELDS[kind]}
        required = TransportConfig.REQUIRED[kind]
        if "devices" in table and "devices" in value:  # a pool: each device names its own address
            table["devices"] = _Devices(kind)
            key = TransportConfig.DEVICE_KEY[kind]
            if key in value:
                raise FieldError(_dotted(field, key), f"a pool names each device's {key} in "
                                              f"{_dotted(field, 'devices')}, not one beside them")
            required = tuple(name for name in required if name != key)
        data = Record(table, required).check(value, field)
        devices = data.pop("devices", ())
        return _with_devices(TransportConfig(**data), devices, _dotted(field, "devices"))


def _dotted(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def _with_devices(config: TransportConfig, devices: Sequence[Mapping[str, Any]], field: str) -> TransportConfig:
    """``config`` with its pool: each device is ``config`` with the device's own fields; two
    items naming the same device are refused."""
    merged = tuple(replace(config, **device) for device in devices)
    seen: Dict[Tuple[Any, ...], int] = {}
    for i, device in enumerate(merged):
        address = ((device.host, device.port, device.user) if config.kind == "ssh"
                   else (device.serial, device.adb_host, device.adb_port))
        if address in seen:
            raise FieldError(f"{field}[{i}]", f"names the same device as {field}[{seen[address]}]")
        seen[address] = i
    return replace(config, devices=merged)


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
    # fp32 | int8 | both: which models a candidate is measured as (int8: static, calibrated on
    # the training images; figures named int8_latency_ms, ...; see hardware.precision)
    precision: str = FP32
    # LiteRT only; None: the runtime's default (XNNPACK). See device.protocol.DELEGATES.
    delegate: Optional[str] = None
    # several devices of one kind under device-side leases (hardware/pool.py); None: one device
    pool: Optional[PoolConfig] = None
    source_path: Optional[str] = field(default=None, compare=False)

    CONSTRAINTS: ClassVar[Dict[str, Constraint]] = {
        "name": Text(max_len=255), "backend": Choice(BACKENDS), "transport": _Transport(),
        "description": Text(allow_empty=True), "threads": Integer(1, MAX_THREADS), "cpu_affinity": CPU_AFFINITY,
        "warmup": _Config(WarmupPolicy), "repeat": _Config(RepeatPolicy), "energy": _Config(EnergyConfig),
        "input_shape": _InputShape(), "cv_warn_threshold": Real(0.0, 10.0, low_open=True),
        "precision": Choice(PRECISIONS), "delegate": Nullable(Choice(DELEGATES)),
        "pool": Nullable(_Config(PoolConfig))}
    REQUIRED: ClassVar[Tuple[str, ...]] = ("name", "backend", "transport")
    # settings whose default leaves the fingerprint as it was before they existed (cached
    # measurements stay valid); precision never counts: each precision's measurement has its own key
    _FINGERPRINT_DEFAULTS: ClassVar[Dict[str, Any]] = {"delegate": None}

    def check_together(self) -> None:
        """A call may not time out before the phases the profile asks for can have run; a
        delegate must be one the backend and the transport can apply."""
        if self.pooled and self.transport.kind == "local":
            raise FieldError("pool", "a local profile measures on this host only; pools are for ssh and adb devices")
        if self.pooled and self.transport.kind == "adb" and self.transport.mode != "device_runner":
            raise FieldError("transport.mode", "a pool of phones needs mode: device_runner (the device runner holds "
                                               "the phone's lease for the whole measurement, idle baseline included)")
        phases = (self.warmup.min_time_s + max(self.repeat.min_time_s, self.repeat.time_limit_s or 0.0)
                  + (self.energy.idle_s or 0.0))
        if self.transport.timeout_s <= phases:
            raise FieldError("transport.timeout_s", f"must be longer than the warm-up, idle and timing phases "
                                                    f"together ({phases:g} s), got {self.transport.timeout_s:g}")
        if self.delegate is None:
            return
        if self.backend != "litert":
            raise FieldError("delegate", f"applies to backend litert only (ONNX Runtime runs its CPU execution "
                                         f"provider), got {self.delegate!r} with backend {self.backend!r}")
        benchmark_model = self.transport.kind == "adb" and self.transport.mode == "benchmark_model"
        if self.delegate not in RUNNER_DELEGATES and not benchmark_model:
            raise FieldError("delegate", f"{self.delegate!r} needs TFLite's benchmark_model (transport kind adb, "
                                         f"mode benchmark_model); the device runner applies "
                                         f"{' or '.join(RUNNER_DELEGATES)}")

    @property
    def pooled(self) -> bool:
        """Measured on a pool of devices under device-side leases: ``pool`` or ``transport.devices``
        is set (a pool may have one device: the lease then shares it between hosts)."""
        return self.pool is not None or bool(self.transport.devices)

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
        data.pop("precision")
        data["transport"].pop("timeout_s")
        for name, default in self._FINGERPRINT_DEFAULTS.items():
            if data[name] == default:
                data.pop(name)
        _drop_pool_addresses(data, self.pooled)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=list)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# where a device is, not what it is: left out of a pool's fingerprint (every device of the pool
# serves the same cached measurement)
POOL_ADDRESS_FIELDS = ("host", "port", "user", "key_file", "known_hosts", "workdir", "serial", "adb_host",
                       "adb_port", "devices")


def _drop_pool_addresses(data: Dict[str, Any], pooled: bool) -> None:
    """A fingerprint's data without the pool settings and, for a pool, without device addresses;
    a profile without a pool keeps the fingerprint it had before pools existed."""
    pool = data.pop("pool", None)
    if not data["transport"].get("devices"):
        data["transport"].pop("devices", None)
    if pooled or pool is not None:
        for name in POOL_ADDRESS_FIELDS:
            data["transport"].pop(name, None)


for _cls in (TransportConfig, WarmupPolicy, RepeatPolicy, EnergyConfig, PoolConfig):
    checked_fields(_cls.CONSTRAINTS, [f.name for f in dataclass_fields(_cls)])
checked_fields(HardwareProfile.CONSTRAINTS, [f.name for f in dataclass_fields(HardwareProfile) if f.name != "source_path"])


def profile_from_dict(raw: Any, origin: str = "<dict>") -> HardwareProfile:
    """Validate a parsed profile mapping into a HardwareProfile (``origin`` names it in errors)."""
    try:
        data = Record(HardwareProfile.CONSTRAINTS, HardwareProfile.REQUIRED).check(raw, "")
        if "description" in data:
            data["description"] = data["description"].strip()
        profile = HardwareProfile(**data, source_path=origin)
        profile.check_together()
    except FieldError as exc:
        raise ProfileError(f"hardware profile {origin}: field '{exc.field}': {exc.reason}", exc.field) from None
    return profile


# ---------------------------------------------------------------------------------------------
# Lookup


def profile_dirs() -> List[Path]:
    """Directories searched for profile names, in order."""
    dirs = []
    if os.environ.get(PROFILE_DIR_ENV):
        dirs.append(Path(os.environ[PROFILE_DIR_ENV]).expanduser())
    dirs += [d for d in (REPO_PROFILE_DIR, SHIPPED_PROFILE_DIR) if d.is_dir()]
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

