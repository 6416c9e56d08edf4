"""Running the emulated Raspberry Pi: the root's own aarch64 OpenSSH server (under qemu-user) on a
free 127.0.0.1 port, a known_hosts entry checked against the root's host key, and the hardware
profiles that point at it (filled in from scripts/emulated_pi_profile.yml).

The SSH path is then exactly a Pi's: the SSH transport pushes the device runner to
/home/pi/nni-gensynth and runs it with the venv's Python, on aarch64 Debian bookworm.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Optional

import yaml

from emulated_pi_chroot import in_root, root_env, write_cpuinfo
from emulated_pi_root import HOSTNAME, TFLITE_VENV_PYTHON, USER, VENV_PYTHON

HOST = "127.0.0.1"
PROFILE_TEMPLATE = Path(__file__).resolve().parent / "emulated_pi_profile.yml"
PROFILE_NAME = "emulated-pi-5"
TFLITE_PROFILE_NAME = "emulated-pi-5-tflite-runtime"
START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def sshd_command(folder: Path, port: int) -> list:
    """The host command that runs the root's sshd in the foreground on 127.0.0.1:``port``, with the
    emulated Pi's host name."""
    return in_root(folder / "root", ["/usr/sbin/sshd", "-D", "-e", "-o", f"Port={port}", "-o", "PidFile=none"],
                   env=root_env(), hostname=HOSTNAME)  # ListenAddress 127.0.0.1: the root's sshd_config.d


def start_sshd(folder: Path, port: int, log: Path, timeout_s: float = START_TIMEOUT_S) -> subprocess.Popen:
    """Start the emulated Pi's sshd and wait for its SSH banner; RuntimeError with its log if it
    does not answer (the process is stopped then)."""
    (folder / "root" / "run" / "sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # privilege separation
    write_cpuinfo(folder / "root")  # for this host's core count
    with open(log, "ab") as handle:
        proc = subprocess.Popen(sshd_command(folder, port), stdout=handle, stderr=handle, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the emulated Pi's sshd exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection((HOST, port), timeout=2) as sock:
                sock.settimeout(10)
                if sock.recv(64).startswith(b"SSH-"):
                    return proc
        except OSError:
            time.sleep(0.2)
    stop_tree(proc)
    raise RuntimeError(f"the emulated Pi's sshd did not answer on {HOST}:{port} within {timeout_s:.0f} s: "
                       f"{log.read_text()[-2000:]}")


def namespace_processes(pid: int) -> list:
    """Process ``pid`` (first) and every other process in its mount namespace: the emulated Pi's
    sshd, its sessions, runners, and what they left behind (a process whose parent died is
    reparented, but stays in the namespace ``in_root`` made for this sshd alone)."""
    import psutil

    try:
        namespace = os.readlink(f"/proc/{pid}/ns/mnt")
        found = [psutil.Process(pid)]
    except (OSError, psutil.Error):
        return []
    for other in psutil.process_iter():
        try:
            if other.pid != pid and os.readlink(f"/proc/{other.pid}/ns/mnt") == namespace:
                found.append(other)
        except (OSError, psutil.Error):
            continue
    return found


def stop_tree(proc: Optional[subprocess.Popen]) -> None:
    """SIGKILL the emulated Pi's sshd and everything in its namespace: the board loses power."""
    if proc is None or proc.poll() is not None:
        return
    import psutil

    for other in namespace_processes(proc.pid)[1:]:
        with contextlib.suppress(psutil.Error):
            other.kill()
    proc.kill()
    proc.wait(timeout=10)


def write_known_hosts(folder: Path, port: int, path: Path) -> Path:
    """known_hosts for the emulated Pi, as docs/devices.md step 4 says: ``ssh-keyscan``, then the
    key compared with the device's own (/etc/ssh/ssh_host_ed25519_key.pub in the root)."""
    scanned = subprocess.run(["ssh-keyscan", "-p", str(port), "-t", "ed25519", HOST], capture_output=True, text=True,
                             timeout=60).stdout
    own = (folder / "root" / "etc" / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    lines = [line for line in scanned.splitlines() if line and not line.startswith("#")]
    if not lines or lines[0].split()[1:3] != own:
        raise RuntimeError(f"ssh-keyscan of {HOST}:{port} did not return the emulated Pi's host key {own[:1]} "
                           f"(got {scanned.strip()[:300]!r})")
    path.write_text(lines[0] + "\n")
    return path


def write_profiles(folder: Path, port: int, known_hosts: Path, directory: Path) -> Dict[str, Path]:
    """The two profiles of the running emulated Pi, from the template: ``emulated-pi-5``
    (ai-edge-litert) and ``emulated-pi-5-tflite-runtime`` (tflite-runtime, numpy < 2)."""
    template = yaml.safe_load(PROFILE_TEMPLATE.read_text())
    written = {}
    for name, python in ((PROFILE_NAME, VENV_PYTHON), (TFLITE_PROFILE_NAME, TFLITE_VENV_PYTHON)):
        profile = dict(template, name=name)
        if name == TFLITE_PROFILE_NAME:
            profile["description"] = template["description"].replace("LiteRT", "tflite-runtime (numpy < 2)")
        profile["transport"] = dict(template["transport"], host=HOST, port=port, user=USER, python=python,
                                    key_file=str(folder / "id_ed25519"), known_hosts=str(known_hosts))
        path = directory / f"{name}.yml"
        path.write_text(f"# written by scripts/emulated_pi.py from {PROFILE_TEMPLATE.name}: the EMULATED Pi on "
                        f"{HOST}:{port}\n" + yaml.safe_dump(profile, sort_keys=False))
        written[name] = path
    return written


@dataclass
class Running:
    """A started emulated Pi: where it listens and the profiles that reach it."""

    port: int
    profiles: Dict[str, Path]
    directory: Path
    proc: subprocess.Popen


@contextlib.contextmanager
def running(folder: Path, directory: Optional[Path] = None) -> Iterator[Running]:
    """Start the emulated Pi of build ``folder``; its profiles, known_hosts and sshd log go to
    ``directory`` (a temporary one by default). Stopped, with everything it started, on exit."""
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="emulated-pi-")))
        directory.mkdir(parents=True, exist_ok=True)
        port = free_port()
        proc = start_sshd(folder, port, directory / "sshd.log")
        stack.callback(stop_tree, proc)
        known_hosts = write_known_hosts(folder, port, directory / "known_hosts")
        yield Running(port, write_profiles(folder, port, known_hosts, directory), directory, proc)
