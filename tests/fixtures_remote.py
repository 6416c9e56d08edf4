"""NNI remote-mode worker "machines" on 127.0.0.1 for the remote-training-service test.

Each machine is a real sshd (tests/fixtures_ssh.py's SSHServer, run as root so it can log other
users in) and a user of its own, created here with ``useradd`` and removed afterwards. What NNI
3.0's remote training service needs from a worker (nni_node/training_service/remote_v3/worker.js):

- SSH login with a key (NNI's client does not check host keys);
- a Python 3 with nni 3.0 (the same version as the manager's) on ``pythonPath``: the worker runs
  ``python -m pip install nni --upgrade`` first and fails when pip fails. This venv has nni, and
  the user's pip.conf says ``no-index``, so pip answers "already satisfied" without a network;
- ``~/nni-experiments`` writable (the trial keeper's folder), and the manager reachable on
  ``nniManagerIp`` (the trial keeper connects back over a websocket).

This venv's interpreter lives under /root (pyenv), which other users cannot enter. Rather than
open /root, the worker's sshd runs in a private mount namespace where /root is an empty tmpfs
holding only the interpreter's folder (bind-mounted, read-only): the workers run exactly this
venv's Python, and nothing outside changes. Needs root; the tests skip otherwise.
"""
from __future__ import annotations

import os
import pwd
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator, List, Optional, Tuple
from unittest import mock

import psutil
import pytest

import fixtures_ssh
from fixtures_ssh import SSHServer

VENV_BIN = Path(sys.executable).parent


def _hidden_ancestor(path: Path) -> Optional[Tuple[Path, Path]]:
    """(closed folder, its child on the way to ``path``) when another user cannot reach ``path``
    (a folder on its way without o+x), else None."""
    parts = path.parts
    for i in range(1, len(parts) - 1):
        folder = Path(*parts[:i + 1])
        if not os.stat(folder).st_mode & stat.S_IXOTH:
            return folder, Path(*parts[:i + 2])
    return None


def _namespace_wrapper(root: Path) -> Path:
    """A stand-in for /usr/sbin/sshd that starts the real one in a private mount namespace in
    which the interpreter behind this venv is reachable by every user (see the module docstring)."""
    interpreter = Path(os.path.realpath(sys.executable))
    hidden = _hidden_ancestor(interpreter)
    sshd = shlex.quote(fixtures_ssh.SSHD)
    wrapper = root / "sshd-wrapper.sh"
    if hidden is None:
        wrapper.write_text(f'#!/bin/sh\nexec {sshd} "$@"\n')
    else:
        closed, child = (shlex.quote(str(p)) for p in hidden)
        holder = root / "interpreter-mount"
        holder.mkdir()
        inside = root / "sshd-namespace.sh"
        inside.write_text("\n".join([
            "set -e",
            f"mount --bind {child} {shlex.quote(str(holder))}",
            f"mount -t tmpfs -o mode=755 tmpfs {closed}",
            f"mkdir -p {child}",
            f"mount --bind -o ro {shlex.quote(str(holder))} {child}",
            f'exec {sshd} "$@"', ""]))
        wrapper.write_text(f"#!/bin/sh\nexec unshare --mount --propagation private /bin/sh "
                           f'{shlex.quote(str(inside))} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


class WorkerMachine:
    """A user ``name`` and an sshd that logs it in with ``key``; its files under ``root``."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        root.mkdir(mode=0o755)
        self.server = SSHServer(root)  # authorized_keys under root: readable by the user
        self.key = self.server.user_key
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", "--password", "*", name],
                       check=True, capture_output=True, timeout=60)
        self.home = Path(pwd.getpwnam(name).pw_dir)
        self.put(".config/pip/pip.conf", "[global]\nno-index = true\n")  # NNI's pip install: offline
        self._wrapper = _namespace_wrapper(root)

    def put(self, relative: str, text: str, mode: int = 0o644) -> Path:
        """Write a file in the user's home, owned by the user."""
        path = self.home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
        entry = pwd.getpwnam(self.name)
        for part in [path, *path.relative_to(self.home).parents]:
            os.chown(self.home / part, entry.pw_uid, entry.pw_gid)
        return path

    def start(self) -> None:
        with mock.patch.object(fixtures_ssh, "SSHD", str(self._wrapper)):
            self.server.start()

    def machine(self) -> dict:
        """This worker's entry of NNI's ``machineList``."""
        return {"host": self.server.host, "port": self.server.port, "user": self.name,
                "sshKeyFile": str(self.key), "pythonPath": str(VENV_BIN)}

    def processes(self) -> List[psutil.Process]:
        """Every process of this user (trial keeper, trials), found by uid."""
        uid = pwd.getpwnam(self.name).pw_uid
        found = []
        for proc in psutil.process_iter(["uids"]):
            try:
                if proc.info["uids"] and proc.info["uids"].real == uid:
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def remove(self) -> None:
        """Stop sshd and this user's processes (by pid), then delete the user and its home."""
        self.server.stop()
        for proc in self.processes():
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(self.processes(), timeout=10)
        subprocess.run(["userdel", "--remove", self.name], capture_output=True, timeout=60)


def worker_machines(count: int) -> Iterator[List[WorkerMachine]]:
    """The fixture body: ``count`` running worker machines, removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("creating worker users and their sshd needs root")
    for tool in (fixtures_ssh.SSHD, shutil.which("useradd"), shutil.which("unshare")):
        if not tool or not os.path.exists(tool):
            pytest.skip("needs sshd, useradd and unshare (bash scripts/system_deps.sh)")
    base = Path(tempfile.mkdtemp(prefix="gensynth-workers-"))
    base.chmod(0o755)
    machines: List[WorkerMachine] = []
    try:
        for i in range(count):
            name = f"gsw{os.getpid() % 100000}x{i}"
            machines.append(WorkerMachine(base / name, name))
            machines[-1].start()
        yield machines
    finally:
        for machine in machines:
            machine.remove()
        shutil.rmtree(base, ignore_errors=True)
