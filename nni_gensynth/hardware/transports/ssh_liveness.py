"""Is the SSH peer still answering? A liveness check for long remote commands.

A device that loses power or Wi-Fi sends nothing: no FIN, no RST. paramiko's ``set_keepalive``
sends requests that want no reply, so a silent drop is only noticed when TCP gives up
retransmitting (many minutes on Linux) or the command timeout expires. ``LinkWatch`` instead sends
``keepalive@openssh.com`` global requests that DO want a reply (OpenSSH answers every global
request, with success or failure, like ``ssh -o ServerAliveInterval``) and calls the link lost
when one stays unanswered for ``timeout_s``. The reply comes from sshd, not from the measuring
process, so a busy runner does not look dead. ``guarded`` applies the same check to blocking
work such as SFTP uploads, which paramiko would otherwise wait on for up to an hour.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator, Optional

import paramiko

from .base import DeviceError

PROBE_REQUEST = "keepalive@openssh.com"


class LinkWatch:
    """Probes ``transport`` every ``interval_s`` while ``lost()`` is polled; one probe in flight at a time.

    Each probe waits for its reply in a daemon thread (paramiko's public ``global_request``);
    that thread ends with the reply or when the transport is closed, which the caller does when
    ``lost()`` says so.
    """

    def __init__(self, transport: paramiko.Transport, interval_s: float, timeout_s: float) -> None:
        self.transport = transport
        self.interval_s = float(interval_s)
        self.timeout_s = float(timeout_s)
        self._answered: Optional[threading.Event] = None
        self._sent_at = time.monotonic()  # the first probe goes out one interval after the start

    def lost(self) -> bool:
        """True when the current probe has had no reply for ``timeout_s`` seconds."""
        now = time.monotonic()
        if self._answered is not None:
            if not self._answered.is_set():
                return now - self._sent_at > self.timeout_s
            self._answered = None
        if now - self._sent_at >= self.interval_s:
            self._send(now)
        return False

    def _send(self, now: float) -> None:
        answered = threading.Event()

        def probe() -> None:
            try:
                self.transport.global_request(PROBE_REQUEST, wait=True)
            except Exception:  # noqa: BLE001 - a failed send means a closed link, which is_active() reports
                pass
            finally:
                answered.set()

        self._answered = answered
        self._sent_at = now
        threading.Thread(target=probe, name="ssh-liveness-probe", daemon=True).start()


@contextmanager
def guarded(transport: paramiko.Transport, interval_s: float, timeout_s: float, what: str) -> Iterator[None]:
    """Run the body while a thread watches the link with ``LinkWatch``. A link that stops
    answering is closed, which ends whatever the body is blocked on, and the body's error becomes
    a retryable DeviceError saying the device went silent while ``what``."""
    watch = LinkWatch(transport, interval_s, timeout_s)
    done, lost = threading.Event(), threading.Event()

    def guard() -> None:
        while not done.wait(min(0.1, interval_s)):
            if watch.lost():
                lost.set()
                transport.close()
                return

    thread = threading.Thread(target=guard, name="ssh-link-guard", daemon=True)
    thread.start()
    try:
        yield
    except Exception as exc:
        if lost.is_set():
            raise DeviceError(f"the device stopped answering while {what} (no answer to a keepalive for "
                              f"{timeout_s:.0f} s); it may have lost network or power", retryable=True) from exc
        raise
    finally:
        done.set()
        thread.join()

