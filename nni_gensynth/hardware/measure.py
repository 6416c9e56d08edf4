"""``measure(model, profile)``: export as the profile's backend needs, look in the cache,
measure through the profile's transport (one measurement at a time per device), retry a
transient device failure, cache only good results.
"""
from __future__ import annotations

import fcntl
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, Union

from .cache import MeasurementCache, cache_dir, measurement_key
from .measurement import Measurement, MeasurementSpec
from .profiles import HardwareProfile, load_profile, load_profiles
from .transports import DeviceError, Transport, make_transport

MODEL_SUFFIXES = {".onnx": "onnxruntime", ".tflite": "litert"}
RETRY_BACKOFF_S = 0.5


@contextmanager
def device_lock(device_id: str, directory: Optional[Path] = None) -> Iterator[None]:
    """Hold an exclusive inter-process lock for ``device_id`` (flock on a file in the cache dir):
    two measurements on one device at once would disturb each other."""
    directory = Path(directory) if directory is not None else cache_dir() / "locks"
    directory.mkdir(parents=True, exist_ok=True)
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


def _model_source(model: Any, profile: HardwareProfile, input_shape: Sequence[int],
                  arch_hash: Optional[str]) -> "tuple[str, str, Any]":
    """(arch hash, exporter versions, how to get the model file) for a module or a model file."""
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {path}")
        backend = MODEL_SUFFIXES.get(path.suffix.lower())
        if backend is None:
            raise ValueError(f"model file must end in {' or '.join(MODEL_SUFFIXES)}, got {path.name}")
        if backend != profile.backend:
            raise ValueError(f"{path.name} is a {path.suffix} model but profile {profile.name!r} runs "
                             f"backend {profile.backend!r} (needs {'.onnx' if profile.backend == 'onnxruntime' else '.tflite'})")
        from .export import file_hash

        return arch_hash or file_hash(path), "", lambda: path
    try:
        from torch import nn
    except ImportError:  # pragma: no cover
        raise TypeError("model must be a path to an .onnx/.tflite file (torch is not installed)") from None
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module or a path to an .onnx/.tflite file, "
                        f"got {type(model).__name__}")
    from .export import FORMATS, export_model, exporter_versions, module_hash

    arch = arch_hash or module_hash(model, input_shape)
    exporter = f"{exporter_versions(FORMATS[profile.backend])}|input {tuple(input_shape)}"
    return arch, exporter, \
        lambda: export_model(model, profile.backend, input_shape, arch_hash=arch)


def measure(model: Any, profile: Union[str, os.PathLike, HardwareProfile], *,
            input_shape: Optional[Sequence[int]] = None, arch_hash: Optional[str] = None,
            use_cache: bool = True, retries: int = 2, transport: Optional[Transport] = None,
            cache: Optional[MeasurementCache] = None) -> Measurement:
    """Measure ``model`` (a torch.nn.Module, or a path to an .onnx/.tflite file) on ``profile``.

    With ``use_cache`` a stored measurement of the same architecture, profile settings, device and
    runtime is returned without measuring; with ``use_cache=False`` the device is always measured
    and the fresh result replaces the stored one. A retryable DeviceError is retried ``retries``
    times; a failure raises DeviceError and stores nothing. ``transport`` / ``cache`` default to
    the profile's transport and the cache in ``cache_dir()``.
    """
    profile = load_profile(profile)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
    shape = tuple(int(d) for d in (input_shape if input_shape is not None else profile.input_shape))
    arch, exporter, get_model_file = _model_source(model, profile, shape, arch_hash)
    cache = cache if cache is not None else MeasurementCache()
    own_transport = transport is None
    transport = transport if transport is not None else make_transport(profile)
    try:
        device_id = transport.device_id()
        fingerprint = profile.fingerprint()

        def key_for(runtime: str) -> str:
            return measurement_key(arch, fingerprint, device_id, f"{runtime}|{exporter}")

        if use_cache:
            runtime = _runtime_before(transport, profile.backend, cache, device_id)
            if runtime is not None:
                hit = cache.get(key_for(runtime))
                if hit is not None:
                    return hit

        model_file = Path(get_model_file())
        args = ["measure", "--model", str(model_file)] + profile.runner_args()
        with device_lock(device_id):
            answer = None
            for attempt in range(retries + 1):
                try:
                    answer = transport.run_device_runner(model_file, args)
                    break
                except DeviceError as exc:
                    if not exc.retryable or attempt == retries:
                        raise
                    time.sleep(RETRY_BACKOFF_S * (2 ** attempt))
        if answer.get("backend") != profile.backend:
            raise DeviceError(f"device {device_id} measured with backend {answer.get('backend')!r}, "
                              f"profile {profile.name!r} asked for {profile.backend!r}")
        spec = MeasurementSpec(arch_hash=arch, profile=profile.name, profile_fingerprint=fingerprint,
                               backend=profile.backend, runtime=str(answer.get("runtime", "unknown")),
                               threads=int(answer.get("threads", profile.threads)), device_id=device_id)
        try:
            result = Measurement.from_runner(answer, spec, profile.cv_warn_threshold)
        except ValueError as exc:
            raise DeviceError(f"device {device_id} gave an unusable answer: {exc}") from None
        cache.put(key_for(spec.runtime), result)
        return result
    finally:
        if own_transport:
            transport.close()


def measure_profiles(model: Any, profiles: Any, *, input_shape: Optional[Sequence[int]] = None,
                     arch_hash: Optional[str] = None, use_cache: bool = True,
                     enough: Optional[Callable[[Mapping[str, Any]], bool]] = None) -> Dict[str, Any]:
    """``measure`` on each of ``profiles`` (see ``load_profiles``), merged into one metrics dict:
    the first profile's metrics as they are (latency_ms, energy_mj, ...), every further one's
    prefixed with its backend (litert_latency_ms, litert_energy_mj, ...), so one network is
    measured on ONNX Runtime and LiteRT side by side. ``enough(metrics)`` is asked after each
    profile; True skips the rest (a network the first measurement already rules out)."""
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

