"""The host lease: a local measurement has the cores to itself; training waits between batches."""
from __future__ import annotations

import multiprocessing
import time

from nni_gensynth.hardware.host_lease import host_lease, yield_to_measurement


def _hold(seconds: float, started) -> None:
    with host_lease():
        started.set()
        time.sleep(seconds)


def test_training_waits_while_a_measurement_holds_the_host(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    assert yield_to_measurement() is False  # nobody measures: no wait
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    holder = context.Process(target=_hold, args=(1.5, started))
    holder.start()
    try:
        assert started.wait(30)
        began = time.monotonic()
        assert yield_to_measurement() is True
        assert time.monotonic() - began > 1.0  # waited for the measurement to end
    finally:
        holder.join(30)
    assert yield_to_measurement() is False


def test_a_measurement_waits_for_no_training_and_a_killed_holder_frees_the_host(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    holder = context.Process(target=_hold, args=(60, started))
    holder.start()
    assert started.wait(30)
    holder.kill()  # the lease is a flock: it dies with its process
    holder.join(30)
    began = time.monotonic()
    with host_lease():
        assert time.monotonic() - began < 5


def test_the_lease_can_be_turned_off_for_both_sides(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    holder = context.Process(target=_hold, args=(1.5, started))
    holder.start()
    try:
        assert started.wait(30)
        monkeypatch.setenv("GENSYNTH_HOST_LEASE", "off")
        began = time.monotonic()
        assert yield_to_measurement() is False  # a training does not wait
        with host_lease():  # nor does a measurement
            assert time.monotonic() - began < 0.5
    finally:
        holder.join(30)
