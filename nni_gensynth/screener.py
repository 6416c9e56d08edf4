"""Screening ahead: background threads that keep measurement devices busy between proposals.

In a farm, trainings are long and measurements short, so a device pool sits idle most of the
time while the tuner measures only what each proposal needs. A `BackgroundScreener` spends that
idle time: each of its threads asks for the engine's next candidates (`next_candidates`, a few
at a time), measures each (`measure`, e.g. the tuner's evaluator, which leases a free board of
the pool), and hands the result back (`deliver`). A candidate measured to meet the requirements
is then proposed without a device call, and every measurement sharpens the inquisitor's latency
surrogate. Use it with a pool of devices, leaving at least one board for the proposals' own
measurements: on a single local device, a background measurement would share the CPU with the
trainings and the tuner.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Optional

_logger = logging.getLogger("nni_gensynth.screener")

IDLE_WAIT_S = 5.0  # how long a thread waits when the engine has nothing to screen
SCREEN_BATCH = 8  # candidates a thread takes per request (ranking the engine's pool is the costly part)


class BackgroundScreener:
    """`threads` daemon threads: next candidate -> measure -> deliver, until `stop()`."""

    def __init__(self, threads: int, next_candidates: Callable[[int], list], measure: Callable[[Any], Any],
                 deliver: Callable[[Any, Optional[Any]], None], idle_wait_s: float = IDLE_WAIT_S) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self._next, self._measure, self._deliver = next_candidates, measure, deliver
        self._idle_wait_s = idle_wait_s
        self._stopped = threading.Event()
        self.measured = 0
        self.failed = 0
        self._count_lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, name=f"gensynth-screener-{i}", daemon=True)
                         for i in range(threads)]

    def start(self) -> "BackgroundScreener":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop taking candidates; waits up to `timeout_s` for measurements in flight."""
        self._stopped.set()
        for thread in self._threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                candidates = list(self._next(SCREEN_BATCH))
            except Exception:  # noqa: BLE001 - a screener must never take the tuner down
                _logger.exception("screening ahead: choosing a candidate failed")
                candidates = []
            if not candidates:
                self._stopped.wait(self._idle_wait_s)
                continue
            for i, candidate in enumerate(candidates):
                if self._stopped.is_set():  # hand the rest back unmeasured
                    for rest in candidates[i:]:
                        self._hand_back(rest, None)
                    return
                self._screen(candidate)

    def _screen(self, candidate: Any) -> None:
        measured = None
        try:
            measured = self._measure(candidate)
        except Exception as exc:  # noqa: BLE001 - a device that fails loses this measurement only
            _logger.warning("screening ahead: measuring a candidate failed (%s: %s)", type(exc).__name__, exc)
        with self._count_lock:
            if measured is None:
                self.failed += 1
            else:
                self.measured += 1
        self._hand_back(candidate, measured)

    def _hand_back(self, candidate: Any, measured: Optional[Any]) -> None:
        try:
            self._deliver(candidate, measured)
        except Exception:  # noqa: BLE001
            _logger.exception("screening ahead: handing a measurement back failed")
