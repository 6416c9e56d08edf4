"""``measure(model, profile)``: export as the profile's backend needs, look in the cache,
measure through the profile's transport (one measurement at a time per device), retry a
transient device failure, check the device's answer, cache only good results.

The device lock is held from the second cache look-up to the store, so two processes that ask
for the same measurement at once measure it once: the second finds the first one's result.

A pooled profile measures through a ``DevicePool`` (pool.py): one free device of the pool, under
a lease held on that device (lease.py), which serves every process on every host; this host's
lock is then per network, so its processes measure different networks on the pool's devices in
parallel. The result names the device that measured it and is cached under the pool's id.

A noisy median (relative standard error above the profile's `repeat.target_rse` and above
NOISY_LATENCY_RSE) is measured once more at once; a noisy one found in the cache is measured again
once per process ("retried later", when the load that spoiled it may have gone), and the steadier
of the two is kept.
"""
from __future__ import annotations

import fcntl
import os
import re
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, Union

from ..defaults import NOISY_LATENCY_RSE
from ..device.protocol import BACKEND_FORMATS
from .answer import validate_answer
from .cache import MeasurementCache, cache_dir, measurement_key, writable_dir
from .hashing import file_sha256
from .host_lease import host_lease
from .measurement import Measurement, MeasurementSpec
from .precision import MEASURED
from .profiles import HardwareProfile, load_profile, load_profiles
from .pool import DevicePool
from .request import RunRequest
from .shapes import parse_input_shape
from .transports import DeviceError, Transport, make_transport

MODEL_SUFFIXES = {f".{fmt}": backend for backend, fmt in BACKEND_FORMATS.items()}
RETRY_BACKOFF_S = 0.5
# Cache keys this process has measured: a noisy stored measurement (from another process, an
# earlier run) is measured again once per process ("retried later"), never on every look-up.
_RETRIED: set[str] = set()


@contextmanager
def device_lock(device_id: str, directory: Optional[Path] = None) -> Iterator[None]:
    """Hold an exclusive inter-process lock for ``device_id`` (flock on a file in the cache dir,
    or in a temporary folder when that is read-only): two measurements on one device at once
    would disturb each other."""
    directory = writable_dir(Path(directory) if directory is not None else cache_dir() / "locks")
    path = directory / (re.sub(r"[^A-Za-z0-9._-]+", "_", device_id) + ".lock")
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _runtime_before(transport: Any, backend: str, cache: Optional[MeasurementCache], device_id: str) -> Optional[str]:
    """The runtime the device will use, known before measuring: asked of the transport when it
    can tell (local), else the one the device last reported (remote)."""
    probe = getattr(transport, "runtime_version", None)
    if callable(probe):
        return probe(backend)
    return cache.last_runtime(device_id, backend) if cache is not None else None


def _model_source(model: Any, profile: HardwareProfile, input_shape: Sequence[int], arch_hash: Optional[str],
                  precision: Optional[str], calibration: Any) -> "tuple[str, str, str, Any]":
    """(arch hash, exporter versions, precision, how to get the model file) for a module or a
    model file. An int8 module's exporter text names the quantization recipe but neither its
    weights nor its calibration inputs: int8 kernels cost the same whatever their values, so a
    network measured before training is a cache hit after it."""
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        backend = MODEL_SUFFIXES.get(path.suffix.lower())
        if backend is None:
            raise ValueError(f"model file must end in {' or '.join(MODEL_SUFFIXES)}, got {path.name}")
        if backend != profile.backend:
            raise ValueError(f"{path.name} is a {path.suffix} model but profile {profile.name!r} runs "
                             f"backend {profile.backend!r} (needs .{BACKEND_FORMATS[profile.backend]})")
        if precision is not None:
            raise ValueError("precision applies to a module, which is exported as asked; a model file is measured "
                             "as it is (its precision is read from the file)")
        from .kernels import precision_of_file

        return arch_hash or file_sha256(path)[:16], "", precision_of_file(path) or "fp32", lambda: path
    try:
        from torch import nn
    except ImportError:  # pragma: no cover
        raise TypeError("model must be a path to an .onnx/.tflite file (torch is not installed)") from None
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module or a path to an .onnx/.tflite file, "
                        f"got {type(model).__name__}")
    from .export import FORMATS, export_model, exporter_versions, module_hash

    precision = precision or "fp32"
    if precision not in MEASURED:
        raise ValueError(f"precision must be one of {', '.join(MEASURED)}, got {precision!r}")
    arch = arch_hash or module_hash(model, input_shape)
    exporter = f"{exporter_versions(FORMATS[profile.backend])}|input {tuple(input_shape)}"
    if precision == "int8":
        from .quantize import recipe

        exporter += f"|int8 {recipe(profile.backend)}"
    return arch, exporter, precision, \
        lambda: export_model(model, profile.backend, input_shape, arch_hash=arch, precision=precision,
                             calibration=calibration)


def measure(model: Any, profile: Union[str, os.PathLike, HardwareProfile], *,
            input_shape: Optional[Sequence[int]] = None, arch_hash: Optional[str] = None,
            use_cache: bool = True, retries: int = 2, transport: Optional[Transport] = None,
            cache: Optional[MeasurementCache] = None, precision: Optional[str] = None,
            calibration: Any = None) -> Measurement:
    """Measure ``model`` (a torch.nn.Module, or a path to an .onnx/.tflite file) on ``profile``.

    A module is exported as ``precision`` ("fp32", the default, or "int8": static int8
    calibrated on ``calibration``, a hardware.calibration.CalibrationSet); a file is measured as
    it is. The profile's own ``precision`` setting is read by the evaluator, not here: one call
    is one measurement.

    With ``use_cache`` a stored measurement of the same architecture, profile settings, device and
    runtime is returned without measuring; with ``use_cache=False`` the device is always measured
    and the fresh result replaces the stored one. A retryable DeviceError is retried ``retries``
    times; a failure raises DeviceError and stores nothing. ``transport`` / ``cache`` default to
    the profile's transport and the cache in ``cache_dir()``.
    """
    profile = load_profile(profile)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
    shape = parse_input_shape(input_shape if input_shape is not None else profile.input_shape)
    arch, exporter, precision, get_model_file = _model_source(model, profile, shape, arch_hash, precision,
                                                              calibration)
    cache = cache if cache is not None else MeasurementCache()
    own_transport = transport is None
    if transport is None:  # a pool is a transport over its devices (pool.py: leases on the devices)
        transport = DevicePool(profile, retries=retries) if profile.pooled else make_transport(profile)
    try:
        device_id = transport.device_id()
        fingerprint = profile.fingerprint()

        def key_for(runtime: str) -> str:
            return measurement_key(arch, fingerprint, device_id, f"{runtime}|{exporter}")

        def stored() -> Optional[Measurement]:
            runtime = _runtime_before(transport, profile.backend, cache, device_id)
            return cache.get(key_for(runtime)) if runtime is not None else None

        def settled(hit: Optional[Measurement]) -> bool:
            """A stored measurement to return as it is: not one too noisy to keep (`_noisy`)
            that this process has not yet measured again ("retried later")."""
            return hit is not None and (not _noisy(hit, profile) or key_for(hit.spec.runtime) in _RETRIED)

        hit = stored() if use_cache else None
        if settled(hit):
            return hit
        request = RunRequest.for_profile(profile, Path(get_model_file()), input_shape=shape)
        pool = transport if isinstance(transport, DevicePool) else None
        # a pool's devices measure in parallel: this host measures one network once at a time
        with device_lock(device_id if pool is None else f"{device_id}#{arch}"):
            hit = stored() if use_cache else None  # measured by another process while we waited
            if settled(hit):
                return hit

            def timed() -> Measurement:
                # the host is the device: trials pause meanwhile
                with host_lease() if profile.transport.kind == "local" else nullcontext():
                    answer = _run(transport, request, retries)
                return _measurement(answer, profile, arch, fingerprint, device_id, precision)

            result = timed()
            if _noisy(result, profile):  # load came and went: once more, and keep the steadier median
                result = _steadier(result, timed())
            if hit is not None:  # a noisy stored one, measured again: the steadier of the two stays
                if hit.spec.runtime == result.spec.runtime:
                    result = _steadier(result, hit)
            if pool is not None:  # which device measured it, and does that device drift from its peers?
                result = pool.settle(result, request, key_for(result.spec.runtime))
            cache.put(key_for(result.spec.runtime), result)
            _RETRIED.add(key_for(result.spec.runtime))  # measured by this process: never again in it
        return result
    finally:
        if own_transport:
            transport.close()


def _noisy(result: Measurement, profile: HardwareProfile) -> bool:
    """Whether a profile that sets a target for the median's relative standard error
    (`repeat.target_rse`) got a median less certain than that target, and than
    NOISY_LATENCY_RSE (above which it reports the upper bound requirements judge), even after
    timing up to `repeat.max_time_s`: such a measurement is taken once more before it is kept."""
    rse, target = result.median_rse, profile.repeat.target_rse
    return rse is not None and target is not None and rse > max(target, NOISY_LATENCY_RSE)


def _steadier(first: Measurement, second: Measurement) -> Measurement:
    """Of two measurements of one network, the one whose median is more certain (the first when
    either has no standard error)."""
    if first.median_rse is None or second.median_rse is None:
        return first
    return second if second.median_rse < first.median_rse else first


def _run(transport: Transport, request: RunRequest, retries: int) -> Any:
    """The transport's answer to ``request``, retrying a retryable DeviceError ``retries`` times."""
    for attempt in range(retries + 1):
        try:
            return transport.run(request)
        except DeviceError as exc:
            if not exc.retryable or attempt == retries:
                raise
            time.sleep(RETRY_BACKOFF_S * (2 ** attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def _measurement(raw: Any, profile: HardwareProfile, arch: str, fingerprint: str, device_id: str,
                 precision: str = "fp32") -> Measurement:
    """A Measurement from the device's raw answer, checked field by field (AnswerError naming
    the field) and for the backend the profile asked for."""
    answer = validate_answer(raw, f"device {device_id}")
    if answer.backend != profile.backend:
        raise DeviceError(f"device {device_id} measured with backend {answer.backend!r}, "
                          f"profile {profile.name!r} asked for {profile.backend!r}")
    try:
        spec = MeasurementSpec(arch_hash=arch, profile=profile.name, profile_fingerprint=fingerprint,
                               backend=profile.backend, runtime=answer.runtime,
                               threads=answer.threads if answer.threads is not None else profile.threads,
                               device_id=device_id, precision=precision)
        return Measurement.from_runner(answer, spec, profile.cv_warn_threshold)
    except ValueError as exc:  # a field valid in an answer but not in a measurement
        raise DeviceError(f"device {device_id} gave an unusable answer: {exc}") from None


def measure_profiles(model: Any, profiles: Any, *, input_shape: Optional[Sequence[int]] = None,
                     arch_hash: Optional[str] = None, use_cache: bool = True,
                     enough: Optional[Callable[[Mapping[str, Any]], bool]] = None) -> Dict[str, Any]:
    """``measure`` on each of ``profiles`` (see ``load_profiles``), merged into one metrics dict:
    the first profile's metrics as they are (latency_ms, energy_mj, ...), every further one's
    prefixed with its backend (litert_latency_ms, litert_energy_mj, ...), so one network is
    measured on ONNX Runtime and LiteRT side by side. ``enough(metrics)`` is asked after each
    profile; True skips the rest (a network the first measurement already rules out). A module is
    measured as float32 here; the Evaluator also measures the profiles' int8 precision."""
    metrics: Dict[str, Any] = {}
    for i, profile in enumerate(load_profiles(profiles)):
        if i > 0 and enough is not None and enough(metrics):
            break
        result = measure(model, profile, input_shape=input_shape, arch_hash=arch_hash, use_cache=use_cache).metrics()
        metrics.update(result if i == 0 else prefixed(result, profile.backend))
    return metrics


def prefixed(metrics: Mapping[str, Any], backend: str) -> Dict[str, Any]:
    """A secondary profile's metrics, named after its backend (``litert_latency_ms``)."""
    return {f"{backend}_{k}": v for k, v in metrics.items()}

