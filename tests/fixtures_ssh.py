"""A real OpenSSH server on 127.0.0.1 for the SSH transport tests.

Generates a host key and a user key in a temporary directory, writes an sshd_config (loopback
only, a free port, public-key login only, no PAM) and runs ``/usr/sbin/sshd -D -e -f CONFIG`` as
the current user. The tests skip with the reason when sshd is not installed
(``bash scripts/system_deps.sh`` installs it).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator, List, Optional

import psutil
import pytest

SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _keygen(path: Path, comment: str) -> None:
    if path.exists():
        path.unlink()
    Path(f"{path}.pub").unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True, timeout=30)


class SSHServer:
    """One sshd on 127.0.0.1:port; ``restart()`` keeps the port, ``new_host_key()`` replaces the key."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.user = psutil.Process().username()
        self.host_key = root / "ssh_host_ed25519_key"
        self.user_key = root / "id_ed25519"
        self.authorized_keys = root / "authorized_keys"
        self.config = root / "sshd_config"
        self.log = root / "sshd.log"
        self.proc: Optional[subprocess.Popen] = None
        _keygen(self.host_key, "nni-gensynth test host")
        _keygen(self.user_key, "nni-gensynth test user")
        shutil.copy(f"{self.user_key}.pub", self.authorized_keys)
        self.config.write_text("\n".join([
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"PidFile {root / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "StrictModes no",
            "UsePAM no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "Subsystem sftp internal-sftp",
            "LogLevel ERROR",
            # The login shell must not run the user's rc files: on this machine ~/.bashrc runs
            # `pyenv rehash`, which waits 60 s for a lock file that a login killed by a test (a
            # device losing power) leaves behind, and every later login would time out. Bash reads
            # ~/.bashrc under sshd only at SHLVL < 2, so starting it at 1 skips it.
            "SetEnv SHLVL=1 PYENV_REHASH_TIMEOUT=1",
            "",
        ]))

    def start(self) -> None:
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
        log = self.log.open("ab")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                    if sock.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd did not answer on {self.host}:{self.port}: {self.log.read_text()[-2000:]}")

    def processes(self) -> List[psutil.Process]:
        """sshd and everything it started (per-connection sshd processes, the remote commands)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        try:
            parent = psutil.Process(self.proc.pid)
            return [parent] + parent.children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def commands_running(self, needle: str) -> List[psutil.Process]:
        """Live processes under sshd whose command line contains ``needle`` (zombies skipped)."""
        found = []
        for proc in self.processes():
            try:
                if proc.status() != psutil.STATUS_ZOMBIE and needle in " ".join(proc.cmdline()):
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def device_runners(self) -> List[psutil.Process]:
        """Device runners under sshd: ``PYTHON -m nni_gensynth.device ...`` itself, not the login
        shell about to exec it (that shell may still be in the user's rc files; killing it there
        kills tools they run, e.g. pyenv's rehash, which then leaves its lock file behind and makes
        every later login wait a minute for it)."""
        found = []
        for proc in self.commands_running("nni_gensynth.device"):
            try:
                if proc.cmdline()[1:3] == ["-m", "nni_gensynth.device"]:
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def freeze(self) -> None:
        """SIGSTOP sshd and its whole process tree: the TCP connection stays open but nothing
        answers, which is what the host sees when a device drops off Wi-Fi (no FIN, no RST)."""
        for proc in self.processes():
            try:
                proc.suspend()
            except psutil.NoSuchProcess:
                pass

    def kill(self) -> None:
        """SIGKILL sshd and its whole process tree (a device losing power or network)."""
        # SIGKILL cannot be ignored, so the children are not waited for: waiting on processes that
        # are not ours only polls, and whoever is their parent (sshd or init) reaps them.
        for proc in reversed(self.processes()[1:]):
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def stop(self) -> None:
        self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def new_host_key(self) -> None:
        """Replace the host key (same type) and restart: what a reinstalled device, or an attacker, looks like."""
        _keygen(self.host_key, "nni-gensynth test host (new)")
        self.restart()

    def keyscan(self, known_hosts: Path) -> Path:
        """Write known_hosts the way the docs tell users to: ssh-keyscan."""
        out = subprocess.run(["ssh-keyscan", "-p", str(self.port), "-t", "ed25519", self.host],
                             capture_output=True, text=True, timeout=20, check=True).stdout
        if not out.strip():
            raise RuntimeError("ssh-keyscan returned no key")
        known_hosts.write_text(out)
        return known_hosts


@pytest.fixture
def ssh_server(tmp_path: Path) -> Iterator[SSHServer]:
    """A running sshd on 127.0.0.1 with generated keys; stopped (with all its children) afterwards."""
    if not os.path.exists(SSHD):
        pytest.skip(f"{SSHD} not installed (run: bash scripts/system_deps.sh)")
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not installed (run: bash scripts/system_deps.sh)")
    root = tmp_path / "sshd"
    root.mkdir()
    server = SSHServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
