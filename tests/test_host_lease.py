"""The host lease: a local measurement has the cores to itself; training waits between batches,
and a measurement waits for the batches in flight."""
from __future__ import annotations

import multiprocessing
import threading
import time
from contextlib import contextmanager

from nni_gensynth.hardware.host_lease import LEASE_ENV, batches_on_host, cores_in_use, host_lease


def _one_batch_waited() -> bool:
    """Whether a training's next batch had to wait for a measurement."""
    with batches_on_host() as next_batch:
        return next_batch()


def _hold(seconds: float, started, how: str) -> None:
    if how == "batch":
        with batches_on_host() as next_batch:
            next_batch()
            started.set()
            time.sleep(seconds)  # one long batch
        return
    with (cores_in_use() if how == "setting-up" else host_lease()):
        started.set()
        time.sleep(seconds)


@contextmanager
def _another_process_holding(seconds: float, how: str = "measuring"):
    """A separate process that holds the host for `seconds` (started and holding on entry):
    measuring (`host_lease`), setting up (`cores_in_use`) or in one training batch."""
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    holder = context.Process(target=_hold, args=(seconds, started, how))
    holder.start()
    try:
        assert started.wait(30)
        yield holder
    finally:
        holder.join(30)


def test_training_waits_while_a_measurement_holds_the_host(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    assert _one_batch_waited() is False  # nobody measures: no wait
    with _another_process_holding(1.5):
        began = time.monotonic()
        assert _one_batch_waited() is True
        assert time.monotonic() - began > 1.0  # waited for the measurement to end
    assert _one_batch_waited() is False


def test_a_measurement_waits_for_the_batch_in_flight(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    with _another_process_holding(1.5, how="batch"):
        began = time.monotonic()
        with host_lease():
            assert time.monotonic() - began > 1.0  # the batch ended first


def test_a_measurement_waits_for_no_training_and_a_killed_holder_frees_the_host(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    for how in ("measuring", "batch"):
        with _another_process_holding(60, how) as holder:
            holder.kill()  # the lease is a flock: it dies with its process
        began = time.monotonic()
        with host_lease():
            assert time.monotonic() - began < 5


def test_the_lease_can_be_turned_off_for_both_sides(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    with _another_process_holding(1.5):
        monkeypatch.setenv(LEASE_ENV, "off")
        began = time.monotonic()
        assert _one_batch_waited() is False  # a training does not wait
        with host_lease():  # nor does a measurement
            assert time.monotonic() - began < 0.5


def test_a_measurement_waits_for_a_trial_setting_up_and_set_up_waits_for_a_measurement(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    with _another_process_holding(1.5, how="setting-up"):
        began = time.monotonic()
        with host_lease():
            assert time.monotonic() - began > 1.0  # the set-up (imports) ended first
    with _another_process_holding(1.5):
        began = time.monotonic()
        with cores_in_use():
            assert time.monotonic() - began > 1.0  # the measurement ended first
    with cores_in_use(), cores_in_use():  # set-ups do not wait for each other
        assert _one_batch_waited() is False  # nor does a training beside them


def test_a_measurement_inside_this_threads_own_loop_does_not_wait_for_itself(tmp_path, monkeypatch):
    """A trial that measures while one of its loops holds the cores (or a loop nested in another)
    lets its own holds go instead of deadlocking."""
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    done = threading.Event()

    def measure_inside_loops() -> None:
        with batches_on_host() as outer:
            outer()
            with batches_on_host() as inner:
                inner()
                with host_lease():
                    done.set()

    worker = threading.Thread(target=measure_inside_loops, daemon=True)
    worker.start()
    worker.join(10)
    assert done.is_set()


def _train_logging(log: str, until: float, batch_s: float) -> None:
    """Batches back to back until `until` (monotonic), each interval appended to `log`."""
    with batches_on_host() as next_batch, open(log, "a") as out:
        while time.monotonic() < until:
            next_batch()
            start = time.monotonic()
            time.sleep(batch_s)
            out.write(f"batch {start} {time.monotonic()}\n")
            out.flush()


def _measure_logging(log: str, until: float, hold_s: float, gap_s: float) -> None:
    with open(log, "a") as out:
        while time.monotonic() < until:
            with host_lease():
                start = time.monotonic()
                time.sleep(hold_s)
                out.write(f"measure {start} {time.monotonic()}\n")
                out.flush()
            time.sleep(gap_s)


def test_no_batch_of_any_training_overlaps_a_measurement_and_neither_starves(tmp_path, monkeypatch):
    """Two trainings with back-to-back batches and two measuring processes, for a few seconds:
    from their own start/end times, no batch runs while a measurement does, every measurement
    gets the host within a batch or two, and the trainings still progress."""
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    context = multiprocessing.get_context("spawn")
    until = time.monotonic() + 6.0
    logs = [str(tmp_path / f"log{i}") for i in range(4)]
    workers = [context.Process(target=_train_logging, args=(logs[i], until, 0.03)) for i in range(2)]
    workers += [context.Process(target=_measure_logging, args=(logs[2 + i], until, 0.1, 0.15)) for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    intervals = {"batch": [], "measure": []}
    for log in logs:
        for line in open(log):
            kind, start, end = line.split()
            intervals[kind].append((float(start), float(end)))
    assert len(intervals["measure"]) >= 10 and len(intervals["batch"]) >= 20
    for m_start, m_end in intervals["measure"]:
        assert not any(b_start < m_end and m_start < b_end for b_start, b_end in intervals["batch"])
    measures = sorted(intervals["measure"])  # two measuring processes: their runs never overlap either
    assert all(a[1] <= b[0] for a, b in zip(measures, measures[1:]))
