"""The host lease: a local measurement has the cores to itself; training waits between batches."""
from __future__ import annotations

import multiprocessing
import time
from contextlib import contextmanager

from nni_gensynth.hardware.host_lease import LEASE_ENV, cores_in_use, host_lease, yield_to_measurement


def _hold(seconds: float, started, setting_up: bool) -> None:
    with (cores_in_use() if setting_up else host_lease()):
        started.set()
        time.sleep(seconds)


@contextmanager
def _another_process_holding(seconds: float, setting_up: bool = False):
    """A separate process that holds the host lease for `seconds` (started and holding on entry);
    `setting_up`: holds it as a trial's set-up does (`cores_in_use`) instead of measuring."""
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    holder = context.Process(target=_hold, args=(seconds, started, setting_up))
    holder.start()
    try:
        assert started.wait(30)
        yield holder
    finally:
        holder.join(30)


def test_training_waits_while_a_measurement_holds_the_host(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    assert yield_to_measurement() is False  # nobody measures: no wait
    with _another_process_holding(1.5):
        began = time.monotonic()
        assert yield_to_measurement() is True
        assert time.monotonic() - began > 1.0  # waited for the measurement to end
    assert yield_to_measurement() is False


def test_a_measurement_waits_for_no_training_and_a_killed_holder_frees_the_host(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    with _another_process_holding(60) as holder:
        holder.kill()  # the lease is a flock: it dies with its process
    began = time.monotonic()
    with host_lease():
        assert time.monotonic() - began < 5


def test_the_lease_can_be_turned_off_for_both_sides(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    with _another_process_holding(1.5):
        monkeypatch.setenv(LEASE_ENV, "off")
        began = time.monotonic()
        assert yield_to_measurement() is False  # a training does not wait
        with host_lease():  # nor does a measurement
            assert time.monotonic() - began < 0.5


def test_a_measurement_waits_for_a_trial_setting_up_and_set_up_waits_for_a_measurement(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    with _another_process_holding(1.5, setting_up=True):
        began = time.monotonic()
        with host_lease():
            assert time.monotonic() - began > 1.0  # the set-up (imports) ended first
    with _another_process_holding(1.5):
        began = time.monotonic()
        with cores_in_use():
            assert time.monotonic() - began > 1.0  # the measurement ended first
    with cores_in_use(), cores_in_use():  # set-ups do not wait for each other
        assert yield_to_measurement() is False  # nor does a training beside them
