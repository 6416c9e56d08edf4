"""The sqlite measurement cache across processes, and the package's light import."""
from __future__ import annotations

import multiprocessing
import subprocess
import sys

from nni_gensynth.hardware.cache import MeasurementCache, measurement_key
from nni_gensynth.hardware.measurement import Measurement, MeasurementSpec


def _measurement(arch: str, latency: float) -> Measurement:
    spec = MeasurementSpec(arch, "p", "fp", "onnxruntime", "onnxruntime 1.0", 1, "local:x")
    return Measurement(spec, (latency, latency * 1.01), {"energy_mj": 0.1, "source": "model"}, 3.0)


def _writer(path: str, worker: int, count: int) -> None:
    cache = MeasurementCache(path)
    for i in range(count):
        m = _measurement(f"w{worker}-{i}", 1.0 + i)
        cache.put(measurement_key(m.spec.arch_hash, "fp", "local:x", "onnxruntime 1.0"), m)


def test_cache_is_safe_across_processes(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    MeasurementCache(path)
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(path, w, 40)) for w in range(3)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    cache = MeasurementCache(path)
    assert len(cache) == 120
    got = cache.get(measurement_key("w2-39", "fp", "local:x", "onnxruntime 1.0"))
    assert got is not None and got.from_cache and got.median_ms == _measurement("w2-39", 40.0).median_ms
    assert cache.last_runtime("local:x", "onnxruntime") == "onnxruntime 1.0"
    assert cache.get("absent") is None


def test_package_import_stays_light():
    probe = ("import sys, nni_gensynth, nni_gensynth.hardware.profiles;"
             "print(sorted(m for m in ('torch', 'nni', 'onnx', 'onnxruntime') if m in sys.modules));"
             "print(nni_gensynth.load_profile('host-cpu').name)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[]", "host-cpu"]


def test_prune_deletes_only_old_measurements_and_exports(tmp_path, monkeypatch):
    import os
    import time
    from dataclasses import replace

    import pytest

    from nni_gensynth.cli import main
    from nni_gensynth.hardware.cache import prune_files

    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    cache = MeasurementCache()
    day = 86400.0
    old, new = _measurement("old", 1.0), _measurement("new", 2.0)
    cache.put("old", replace(old, created=time.time() - 40 * day))
    cache.put("new", new)
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "old.onnx").write_bytes(b"x" * 1000)
    os.utime(exports / "old.onnx", (time.time() - 40 * day,) * 2)
    (exports / "new.onnx").write_bytes(b"y" * 10)
    assert main(["cache", "--prune-older-than", "30"]) == 0
    assert cache.get("old") is None and cache.get("new") is not None and len(cache) == 1
    assert sorted(p.name for p in exports.iterdir()) == ["new.onnx"]
    assert prune_files(tmp_path / "absent", 0.0) == (0, 0)
    assert main(["cache", "--prune-older-than", "-1"]) == 2  # named error, nothing deleted
    with pytest.raises(ValueError, match="older_than_s"):
        cache.prune(-1)
    assert main(["cache"]) == 0 and len(cache) == 1
