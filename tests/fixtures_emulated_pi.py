"""The emulated Raspberry Pi for the tests: the arm64 root that `make emulated-pi` builds
(scripts/emulated_pi.py, cached), its own aarch64 sshd started once per session on a free
127.0.0.1 port, a known_hosts entry and its two profiles written to a temporary folder.

It is an ``SSHServer`` of tests/fixtures_ssh.py with another ``start`` and ``processes`` (all the
processes in its mount namespace): ``kill`` (a device that loses power) and ``restart`` work the same. The tests skip, with the reason, when
no root is built here (not root, no network: the last build's failure says which step);
GENSYNTH_REQUIRE_EMULATED_PI=1 makes that a failure instead.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import psutil
import pytest

from fixtures_ssh import SSHServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import emulated_pi_device  # noqa: E402
import emulated_pi_root  # noqa: E402

REQUIRE_ENV = "GENSYNTH_REQUIRE_EMULATED_PI"


class EmulatedPi(SSHServer):
    """The emulated Pi's sshd; ``profiles`` maps profile names to the files written for it."""

    def __init__(self, folder: Path, run_dir: Path) -> None:  # noqa: D107 - no keys to generate: the root has them
        self.folder = folder
        self.root = run_dir
        self.host = emulated_pi_device.HOST
        self.port = emulated_pi_device.free_port()
        self.user = emulated_pi_root.USER
        self.user_key = folder / "id_ed25519"
        self.log = run_dir / "sshd.log"
        self.proc = None
        self.profiles: Dict[str, Path] = {}

    def start(self) -> None:
        self.proc = emulated_pi_device.start_sshd(self.folder, self.port, self.log)
        if not self.profiles:
            known_hosts = emulated_pi_device.write_known_hosts(self.folder, self.port, self.root / "known_hosts")
            self.profiles = emulated_pi_device.write_profiles(self.folder, self.port, known_hosts, self.root)

    def processes(self) -> List[psutil.Process]:
        """sshd and every process in its mount namespace (orphans included): what ``kill`` ends."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        return emulated_pi_device.namespace_processes(self.proc.pid)

    def device_runners(self) -> List[psutil.Process]:
        """Device runners under sshd (under qemu-user the host sees ``qemu PYTHON python -m ...``)."""
        found = []
        for proc in self.commands_running("nni_gensynth.device"):
            try:
                argv = proc.cmdline()
            except psutil.Error:
                continue
            if any(argv[i:i + 2] == ["-m", "nni_gensynth.device"] for i in range(len(argv))):
                found.append(proc)
        return found


def unavailable() -> Optional[str]:
    """Why the emulated Pi cannot run here, or None."""
    if os.geteuid() != 0:
        return "the emulated Pi needs root (chroot, mounts, binfmt_misc)"
    if emulated_pi_root.completed() is None:
        failure = emulated_pi_root.last_failure() or emulated_pi_root.cannot_build_reason()
        return (f"no emulated Pi built under {emulated_pi_root.cache_root()} for these scripts: run make emulated-pi"
                + (f" (last build: {failure})" if failure else ""))
    try:
        emulated_pi_root.ensure_binfmt()
    except emulated_pi_root.BuildError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="session")
def emulated_pi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedPi]:
    """The running emulated Pi (one per test session); stopped, with all it started, at the end."""
    reason = unavailable()
    if reason:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}")
        pytest.skip(reason)
    pi = EmulatedPi(emulated_pi_root.completed(), tmp_path_factory.mktemp("emulated-pi"))
    pi.start()
    try:
        yield pi
    finally:
        pi.stop()
