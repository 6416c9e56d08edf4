"""The sqlite measurement cache across processes, damaged or read-only, and the package's light
import."""
from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import time
import warnings
import zlib
from contextlib import closing
from pathlib import Path

import pytest

from hw_support import AnsweringTransport, read_only, write_profile
from nni_gensynth.hardware import CacheWarning, load_profile, measure
from nni_gensynth.hardware.cache import MeasurementCache, check_cache, measurement_key
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
    from dataclasses import replace

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


# ---------------------------------------------------------------------------------------------
# A damaged or unwritable cache never costs a measurement (issue #11 item 7)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def model(tmp_path_factory):
    from fakes.tiny_models import tiny_onnx

    return tiny_onnx(tmp_path_factory.mktemp("models") / "mlp.onnx", width=64)


@pytest.fixture
def profile(tmp_path):
    return load_profile(str(write_profile(tmp_path, "cache-cpu")))


def _filled(path: Path, count: int = 20) -> MeasurementCache:
    cache = MeasurementCache(path)
    for i in range(count):
        cache.put(f"k{i}", _measurement(f"a{i}", 1.0 + i))
    return cache


def _aside(path: Path) -> list:
    return sorted(p.name for p in path.parent.glob(path.name + ".corrupt-*") if not p.name.endswith(("-wal", "-shm")))


def test_garbage_file_is_moved_aside_and_rebuilt(tmp_path, model, profile):
    path = tmp_path / "m.sqlite"
    path.write_bytes(os.urandom(3000))
    with pytest.warns(CacheWarning, match="damaged.*moved it to m.sqlite.corrupt-"):
        cache = MeasurementCache(path)
    assert len(_aside(path)) == 1 and len(cache) == 0
    first = measure(model, profile, cache=cache, transport=AnsweringTransport(profile))
    again = measure(model, profile, cache=cache, transport=AnsweringTransport(profile))
    assert not first.from_cache and again.from_cache and again == first


def test_malformed_page_is_moved_aside_on_first_use(tmp_path):
    path = tmp_path / "m.sqlite"
    _filled(path)
    with closing(sqlite3.connect(path)) as db:
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'measurements'").fetchone()[0]
        page = db.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    data[(root - 1) * page] = 0xFF  # the table's root page is no b-tree page any more
    path.write_bytes(bytes(data))
    cache = MeasurementCache(path)  # opening touches no table page
    with pytest.warns(CacheWarning, match="malformed"):
        assert cache.get("k3") is None
    assert len(_aside(path)) == 1 and len(cache) == 0
    cache.put("k3", _measurement("a3", 4.0))
    assert cache.get("k3").median_ms == _measurement("a3", 4.0).median_ms


def _store_raw(path: Path, key: str, blob) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute("INSERT OR REPLACE INTO measurements VALUES (?, 'a', 'p', 'f', 'd', 'onnxruntime', 'r', 0, ?)",
                   (key, blob))
        db.commit()


@pytest.mark.parametrize("blob", [
    b"not zlib", 42, zlib.compress(b"\xff\xfe"), zlib.compress(b"[1, 2]"), zlib.compress(b"{" * 100_000),
    zlib.compress(json.dumps({**json.loads(_measurement("a", 1.0).to_json()),
                              "energy": {"energy_mj": "abc", "source": "model"}}).encode()),
    zlib.compress(json.dumps({**json.loads(_measurement("a", 1.0).to_json()), "samples_ms": "123"}).encode()),
])
def test_bad_row_is_dropped_and_measured_again(tmp_path, model, profile, blob):
    cache = MeasurementCache(tmp_path / "m.sqlite")
    device = AnsweringTransport(profile)
    measure(model, profile, cache=cache, transport=device)
    key = _only_key(cache.path)
    _store_raw(cache.path, key, blob)
    with pytest.warns(CacheWarning, match="dropped a damaged entry"):
        again = measure(model, profile, cache=cache, transport=device)
    assert not again.from_cache and device.calls == 2  # measured again, not served the bad row
    assert measure(model, profile, cache=cache, transport=device).from_cache and len(cache) == 1
    assert check_cache(cache.path).ok


def _only_key(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        [(key,)] = db.execute("SELECT key FROM measurements").fetchall()
    return key


def test_read_only_cache_still_returns_the_measurement(tmp_path, model, profile, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(root))
    cache = MeasurementCache()
    cache.put("other", _measurement("x", 1.0))
    files = sorted(root.iterdir())
    with read_only(root, *files), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = measure(model, profile, transport=AnsweringTransport(profile))  # the cache and its locks
        assert not result.from_cache and result.energy_mj == 0.5
        assert any(issubclass(w.category, CacheWarning) and "store" in str(w.message) for w in caught)
    assert sorted(root.iterdir()) == files  # nothing written


def test_read_only_cache_file_in_a_writable_folder(tmp_path, model, profile):
    path = tmp_path / "m.sqlite"
    _filled(path, 2)
    with read_only(path), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = measure(model, profile, cache=MeasurementCache(path), transport=AnsweringTransport(profile))
        assert not result.from_cache
        assert any(issubclass(w.category, CacheWarning) for w in caught)


def test_gensynth_cache_check_reports_damage_and_changes_nothing(tmp_path, monkeypatch, capsys):
    from nni_gensynth.cli import main

    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    path = tmp_path / "measurements.sqlite"
    assert main(["cache", "--check"]) == 0 and "no cache file" in capsys.readouterr().out
    _filled(path, 3)
    assert main(["cache", "--check"]) == 0 and "3 measurement row(s), ok" in capsys.readouterr().out
    _store_raw(path, "bad", b"junk")
    before = path.read_bytes()
    assert main(["cache", "--check"]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED" in out and "bad row" in out and path.read_bytes() == before
    path.write_bytes(b"\x00garbage" * 500)
    assert main(["cache", "--check"]) == 1 and "not a database" in capsys.readouterr().out
    with pytest.warns(CacheWarning, match="moved it to"):
        assert main(["cache"]) == 0  # used, the cache repairs itself instead of a traceback
    assert "measurements: 0" in capsys.readouterr().out
    assert main(["cache", "--check"]) == 0


MEASURE_ONCE = """
import sys, time
from pathlib import Path
from nni_gensynth.hardware import load_profile, measure
go = Path(sys.argv[3])
while not go.exists():
    time.sleep(0.005)
result = measure(Path(sys.argv[1]), load_profile(sys.argv[2]))
print("cached" if result.from_cache else "measured")
"""


def test_two_processes_measuring_the_same_model_measure_it_once(tmp_path, model):
    profile = write_profile(tmp_path, "slow-cpu", repeat={"min_time_s": 0.8, "min_runs": 10, "max_runs": 100000})
    go = tmp_path / "go"
    env = dict(os.environ, GENSYNTH_CACHE_DIR=str(tmp_path / "cache"))
    procs = [subprocess.Popen([sys.executable, "-c", MEASURE_ONCE, str(model), str(profile), str(go)], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(1.5)  # both imported and waiting
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    assert sorted(out.strip() for out, _ in outs) == ["cached", "measured"]


class _LoadThatGoes(AnsweringTransport):
    """A device busy during the first measurement (its second and fourth fifths twice as slow),
    quiet during the next."""

    def run(self, request):
        answer = super().run(request)
        noisy = self.calls == 1
        answer["samples_ms"] = [2.0 if noisy and (i // 10) in (1, 3) else 1.0 + 0.001 * (i % 3) for i in range(50)]
        return answer


def test_a_noisy_measurement_is_taken_again_and_the_steadier_one_kept(tmp_path, model, profile):
    from dataclasses import replace

    profile = replace(profile, repeat=replace(profile.repeat, target_rse=0.01))  # as the shipped profiles
    cache = MeasurementCache(tmp_path / "m.sqlite")
    device = _LoadThatGoes(profile)
    result = measure(model, profile, cache=cache, transport=device)
    assert device.calls == 2 and result.median_rse < 0.03 and "latency_ms_upper" not in result.metrics()
    assert measure(model, profile, cache=cache, transport=device) == result  # the steadier one is cached
    steady = AnsweringTransport(profile, samples_ms=[1.0 + 0.001 * (i % 3) for i in range(50)])
    measure(model, profile, use_cache=False, transport=steady)
    assert steady.calls == 1  # a steady median is measured once


class _LoadThatStays(AnsweringTransport):
    """A device busy during its first `busy` measurements, quiet after them."""

    def __init__(self, profile, busy):
        super().__init__(profile)
        self.busy = busy

    def run(self, request):
        answer = super().run(request)
        noisy = self.calls <= self.busy
        answer["samples_ms"] = [2.0 if noisy and (i // 10) in (1, 3) else 1.0 + 0.001 * (i % 3) for i in range(50)]
        return answer


def test_a_noisy_cached_measurement_is_measured_again_once_per_process(tmp_path, model, profile, monkeypatch):
    from dataclasses import replace

    measure_module = importlib.import_module("nni_gensynth.hardware.measure")  # the package exports the function
    profile = replace(profile, repeat=replace(profile.repeat, target_rse=0.01))
    cache = MeasurementCache(tmp_path / "m.sqlite")
    monkeypatch.setattr(measure_module, "_RETRIED", set())
    busy = _LoadThatStays(profile, busy=2)
    stored = measure(model, profile, cache=cache, transport=busy)
    assert stored.median_rse > 0.03  # busy both times: the noisy median is what the cache holds
    assert measure(model, profile, cache=cache, transport=busy).from_cache and busy.calls == 2  # this process measured it

    monkeypatch.setattr(measure_module, "_RETRIED", set())  # another process
    later = _LoadThatStays(profile, busy=0)  # a later trial, the load gone
    again = measure(model, profile, cache=cache, transport=later)
    assert later.calls == 1 and again.median_rse < 0.03 and not again.from_cache
    assert measure(model, profile, cache=cache, transport=later).median_rse == again.median_rse
    assert later.calls == 1  # the steadier median replaced the noisy one in the cache

    measure(model, profile, cache=cache, transport=_LoadThatStays(profile, busy=10), use_cache=False)
    monkeypatch.setattr(measure_module, "_RETRIED", set())  # a process that finds it noisy in the cache
    still_busy = _LoadThatStays(profile, busy=10)
    first = measure(model, profile, cache=cache, transport=still_busy)
    assert still_busy.calls == 2 and not first.from_cache  # retried (and, noisy again, once more at once)
    second = measure(model, profile, cache=cache, transport=still_busy)
    assert still_busy.calls == 2 and second.from_cache  # once per process, not on every look-up


def test_without_a_target_rse_a_noisy_measurement_is_kept_with_its_upper_bound(tmp_path, model, profile):
    assert profile.repeat.target_rse is None
    device = _LoadThatGoes(profile)
    result = measure(model, profile, cache=MeasurementCache(tmp_path / "m.sqlite"), transport=device)
    assert device.calls == 1 and result.metrics()["latency_ms_upper"] > result.median_ms
