"""SSH transport: runs the device runner on a Raspberry Pi (or any Linux board) over SSH.

Host keys are verified: the server's key must already be in known_hosts (the profile's
``known_hosts`` file, else ~/.ssh/known_hosts). An unknown key is refused unless the caller opts
in with ``insecure_accept_unknown_host_key=True`` (the key is then trusted for this session only);
a CHANGED key is always refused.

What is pushed, over SFTP into the profile's ``workdir``:

    WORKDIR/runner-<hash>/nni_gensynth/__init__.py, .../device/*   the device runner (by content hash)
    WORKDIR/models/<sha256><suffix>                                  the model (by content hash)

Uploads go to a temporary name and are renamed when complete, so a dropped connection never
leaves a half-written file under a final name. The command run is
``cd WORKDIR/runner-<hash> && exec PYTHON -m nni_gensynth.device measure ...`` (``runner_argv``
of the request); only the JSON object on its last stdout line is read back, and reading stops
(the channel is closed) past ``MAX_OUTPUT_BYTES`` of output or after the request's timeout_s. While files are pushed and while the runner runs, the link is
probed (``LinkWatch``, ``guarded``): a device
that stops answering is a retryable DeviceError within ``alive_timeout_s``, not after the command
timeout. A runner left running by a dropped connection is stopped before the next one starts
(``runner_command``). A request with a ``lease`` (a pool's run) runs under the device's lease
instead (``lease.leased_runner_command``): a busy device is ``DeviceBusy``, and the runner ends
with the connection (EOF on its stdin), so nothing needs stopping.
"""
from __future__ import annotations

import getpass
import os
import posixpath
import shlex
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

import paramiko

from ..answer import read_answer, tail, too_much_output
from ..lease import leased_runner_command, raise_if_busy
from ..limits import ALIVE_INTERVAL_S, ALIVE_TIMEOUT_S, CONNECT_TIMEOUT_S, MAX_OUTPUT_BYTES, SSH_KEEPALIVE_S
from ..request import RunRequest, runner_argv
from .base import DeviceError
from .remote import remote_model_name, runner_files, runner_version, transport_settings
from .ssh_liveness import LinkWatch, guarded

DEFAULT_WORKDIR = "nni-gensynth"  # relative to the login directory
_COMPLETE_MARKER = ".complete"


class HostKeyError(DeviceError):
    """The SSH server's host key is unknown or does not match known_hosts (never retried)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


def _known_host_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def _fingerprint(key: paramiko.PKey) -> str:
    return key.fingerprint if hasattr(key, "fingerprint") else key.get_fingerprint().hex()


class _RefuseUnknownHostKey(paramiko.RejectPolicy):
    """RejectPolicy with a message that says how to add the key."""

    def __init__(self, known_hosts: Path, port: int) -> None:
        self.known_hosts = known_hosts
        self.port = port

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        host = hostname.split("]")[0].lstrip("[")
        raise HostKeyError(
            f"SSH host key of {hostname} is not in {self.known_hosts} (server offered {key.get_name()} "
            f"{_fingerprint(key)}). Check that fingerprint on the device (ssh-keygen -lf "
            f"/etc/ssh/ssh_host_{key.get_name().replace('ssh-', '')}_key.pub), then add the key: "
            f"ssh-keyscan -p {self.port} {host} >> {self.known_hosts}")


class _TrustUnknownHostKeyInsecurely(paramiko.MissingHostKeyPolicy):
    """Accepts an unknown key for this session only (never a changed one: paramiko checks that
    before asking the policy)."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)


class SSHTransport:
    """Runs ``python -m nni_gensynth.device`` on a remote machine over SSH (paramiko).

    ``profile`` is a HardwareProfile (its ``transport`` mapping is read) or that mapping itself:
    ``host`` (required), ``port`` (22), ``user`` (current user), ``key_file`` (else the SSH
    agent / default keys), ``known_hosts`` (else ~/.ssh/known_hosts), ``python`` ("python3"),
    ``workdir`` ("nni-gensynth", relative to the login directory). How long one runner call may
    take is the request's ``timeout_s``.

    ``alive_interval_s`` / ``alive_timeout_s``: while the runner runs, a keepalive that wants a
    reply is sent every ``alive_interval_s``; no reply within ``alive_timeout_s`` means the device
    dropped off the network (retryable), however long ``timeout_s`` is.

    One call at a time: calls from several threads are serialised by a lock.
    """

    def __init__(
        self,
        profile: Any,
        *,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        keepalive_s: int = SSH_KEEPALIVE_S,
        alive_interval_s: float = ALIVE_INTERVAL_S,
        alive_timeout_s: float = ALIVE_TIMEOUT_S,
        insecure_accept_unknown_host_key: bool = False,
    ) -> None:
        fields = transport_settings(profile, "ssh")
        self.host = fields.get("host")
        if not isinstance(self.host, str) or not self.host.strip():
            raise ValueError("transport.host is required for an ssh transport (a hostname or IP address)")
        port = fields.get("port", 22)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"transport.port must be an integer in 1..65535, got {port!r}")
        self.port = port
        self.user = fields.get("user") or getpass.getuser()
        key_file = fields.get("key_file")
        self.key_file = Path(os.path.expanduser(key_file)) if key_file else None
        known_hosts = fields.get("known_hosts")
        self._known_hosts_given = bool(known_hosts)
        self.known_hosts = Path(os.path.expanduser(known_hosts or "~/.ssh/known_hosts"))
        self.python = fields.get("python") or "python3"
        workdir = str(fields.get("workdir") or DEFAULT_WORKDIR)
        # SFTP and the remote shell both start in the login directory: "~/x" is just "x" there.
        self.workdir = "." if workdir in ("~", "~/") else (workdir[2:] if workdir.startswith("~/") else workdir)
        self.connect_timeout_s = float(connect_timeout_s)
        self.keepalive_s = int(keepalive_s)
        self.alive_interval_s = float(alive_interval_s)
        self.alive_timeout_s = float(alive_timeout_s)
        if self.alive_interval_s <= 0 or self.alive_timeout_s <= 0:
            raise ValueError(f"alive_interval_s and alive_timeout_s must be > 0, "
                             f"got {alive_interval_s!r} and {alive_timeout_s!r}")
        self.insecure_accept_unknown_host_key = bool(insecure_accept_unknown_host_key)
        self._lock = threading.Lock()
        self._client: Optional[paramiko.SSHClient] = None
        self._abs_workdir: Optional[str] = None
        self._pushed_runner: Optional[str] = None

    # -- public API --------------------------------------------------------------------------

    def device_id(self) -> str:
        """``ssh:user@host:port``."""
        return f"ssh:{self.user}@{self.host}:{self.port}"  # no "//": NNI 3.0 cannot carry it in a result

    def run(self, request: RunRequest) -> Dict[str, Any]:
        """Push the runner (if changed) and the model (if new), run the runner, return its answer.

        Raises DeviceError(retryable=True) when the connection fails or drops, and
        DeviceError(retryable=False) when the runner reports an error or the host key is refused.
        """
        model_path = Path(request.model_path)
        if not model_path.is_file():
            raise FileNotFoundError(f"model file not found: {model_path}")
        with self._lock:
            self._check_files()
            try:
                client = self._connect()
                with guarded(client.get_transport(), self.alive_interval_s, self.alive_timeout_s,
                             f"files were pushed to {self._where()}"):
                    runner_dir = self._push_runner(client)
                    remote_model = self._push_model(client, model_path)
                argv = runner_argv(request, remote_model)
                if request.lease is not None:  # a pool's run: under the device's lease, no orphan killing
                    command = leased_runner_command(self._abs_workdir, runner_dir, self.python, argv, request)
                else:
                    command = runner_command(runner_dir, self.python, argv)
                return self._run(client, command, request.timeout_s)
            except DeviceError as exc:
                if exc.retryable:
                    self._drop()
                raise
            except PermissionError as exc:  # SFTP refused to write: retrying would not help
                raise DeviceError(f"{self._where()}: permission denied writing under transport.workdir "
                                  f"{self.workdir!r} ({exc}); choose a writable workdir", retryable=False) from exc
            except (paramiko.SSHException, EOFError, OSError) as exc:
                self._drop()
                raise DeviceError(f"SSH connection to {self._where()} failed: {type(exc).__name__}: {exc}",
                                  retryable=True) from exc

    def close(self) -> None:
        """Close the SSH connection (a later call reconnects)."""
        with self._lock:
            self._drop()

    def __enter__(self) -> "SSHTransport":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- connection ----------------------------------------------------------------------------

    def _where(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    def _connect(self) -> paramiko.SSHClient:
        if self._client is not None:
            transport = self._client.get_transport()
            if transport is not None and transport.is_active():
                return self._client
            self._drop()
        client = paramiko.SSHClient()
        if self.known_hosts.is_file():
            client.load_host_keys(str(self.known_hosts))
        if self.insecure_accept_unknown_host_key:
            client.set_missing_host_key_policy(_TrustUnknownHostKeyInsecurely())
        else:
            client.set_missing_host_key_policy(_RefuseUnknownHostKey(self.known_hosts, self.port))
        try:
            client.connect(
                self.host, port=self.port, username=self.user,
                key_filename=str(self.key_file) if self.key_file else None,
                look_for_keys=self.key_file is None, allow_agent=self.key_file is None,
                timeout=self.connect_timeout_s, banner_timeout=self.connect_timeout_s,
                auth_timeout=self.connect_timeout_s,
            )
        except HostKeyError:
            client.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            name = _known_host_name(self.host, self.port)
            raise HostKeyError(
                f"SSH host key of {name} CHANGED: known_hosts ({self.known_hosts}) has "
                f"{exc.expected_key.get_name()} {_fingerprint(exc.expected_key)}, the server offered "
                f"{exc.key.get_name()} {_fingerprint(exc.key)}. This may be a reinstalled device or an "
                f"attack; refusing to connect. If the device was reinstalled, check the new fingerprint "
                f"on it, then: ssh-keygen -f {self.known_hosts} -R '{name}' && "
                f"ssh-keyscan -p {self.port} {self.host} >> {self.known_hosts}") from None
        except paramiko.AuthenticationException as exc:
            lost = not _alive(client)
            client.close()
            if lost:  # the device went away during the login ("transport shut down or saw EOF")
                raise DeviceError(f"SSH connection to {self._where()} was lost during the login: {exc}",
                                  retryable=True) from None
            raise DeviceError(
                f"SSH authentication failed for {self._where()}"
                f"{f' with key {self.key_file}' if self.key_file else ''}: {exc} (is the public key in "
                f"~{self.user}/.ssh/authorized_keys on the device?)", retryable=False) from None
        except (paramiko.SSHException, socket.error, EOFError) as exc:
            client.close()
            raise DeviceError(f"cannot connect to {self._where()} over SSH: {exc}", retryable=True) from None
        transport = client.get_transport()
        if transport is not None and self.keepalive_s > 0:
            transport.set_keepalive(self.keepalive_s)
        self._client = client
        return client

    def _check_files(self) -> None:
        """The key and known_hosts files the profile names must exist (checked when connecting,
        so that a profile can be loaded, and cached results read, on a machine without them)."""
        if self.key_file is not None and not self.key_file.is_file():
            raise FileNotFoundError(f"transport.key_file not found: {self.key_file}")
        if self._known_hosts_given and not self.known_hosts.is_file():
            raise FileNotFoundError(
                f"transport.known_hosts not found: {self.known_hosts} (create it with: "
                f"ssh-keyscan -p {self.port} {self.host} > {self.known_hosts}, after checking the fingerprint)")

    def _drop(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - closing a dead connection may fail in any way
                pass
        self._client = None
        self._abs_workdir = None
        self._pushed_runner = None

    # -- pushing -------------------------------------------------------------------------------

    def _workdir(self, sftp: paramiko.SFTPClient) -> str:
        if self._abs_workdir is None:
            try:
                _makedirs(sftp, self.workdir)
                self._abs_workdir = sftp.normalize(self.workdir)
            except IOError as exc:  # an SFTP status answer, unless the link dropped (then retried)
                if isinstance(exc, (ConnectionError, socket.timeout)) or not _alive(sftp.get_channel()):
                    raise
                raise DeviceError(f"{self._where()}: cannot create transport.workdir {self.workdir!r}: {exc}; "
                                  f"choose a folder the user can write", retryable=False) from exc
        return self._abs_workdir

    def _push_runner(self, client: paramiko.SSHClient) -> str:
        files = runner_files()
        version = runner_version(files)
        with client.open_sftp() as sftp:
            workdir = self._workdir(sftp)
            target = posixpath.join(workdir, f"runner-{version}")
            if self._pushed_runner == version or _exists(sftp, posixpath.join(target, _COMPLETE_MARKER)):
                self._pushed_runner = version
                return target
            staging = f"{target}.part-{uuid.uuid4().hex[:8]}"
            for relative, local in files:
                remote = posixpath.join(staging, relative)
                _makedirs(sftp, posixpath.dirname(remote))
                sftp.put(str(local), remote)
            with sftp.open(posixpath.join(staging, _COMPLETE_MARKER), "w") as marker:
                marker.write(version)
            try:
                sftp.posix_rename(staging, target)
            except IOError:
                # Another host pushed the same version meanwhile: keep theirs.
                if not _exists(sftp, posixpath.join(target, _COMPLETE_MARKER)):
                    raise
            self._pushed_runner = version
            return target

    def _push_model(self, client: paramiko.SSHClient, model_path: Path) -> str:
        size = model_path.stat().st_size
        with client.open_sftp() as sftp:
            models = posixpath.join(self._workdir(sftp), "models")
            _makedirs(sftp, models)
            remote = posixpath.join(models, remote_model_name(model_path))
            try:
                if sftp.stat(remote).st_size == size:
                    return remote
            except IOError:
                pass
            staging = f"{remote}.part-{uuid.uuid4().hex[:8]}"
            sftp.put(str(model_path), staging)
            sftp.posix_rename(staging, remote)
            return remote

    # -- running -------------------------------------------------------------------------------

    def _run(self, client: paramiko.SSHClient, command: str, timeout_s: float) -> Dict[str, Any]:
        transport = client.get_transport()
        if transport is None:
            raise DeviceError(f"SSH connection to {self._where()} is closed", retryable=True)
        channel = transport.open_session(timeout=self.connect_timeout_s)
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout_s
        watch = LinkWatch(transport, self.alive_interval_s, self.alive_timeout_s)
        try:
            channel.exec_command(command)
            while True:
                busy = False
                if channel.recv_ready():
                    out += channel.recv(65536)
                    busy = True
                if channel.recv_stderr_ready():
                    err += channel.recv_stderr(65536)
                    busy = True
                if len(out) + len(err) > MAX_OUTPUT_BYTES:
                    raise too_much_output(self._where())
                if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                    break
                if not transport.is_active():
                    break
                if watch.lost():
                    raise DeviceError(
                        f"SSH connection to {self._where()} was lost during the measurement (no answer to a "
                        f"keepalive for {self.alive_timeout_s:.0f} s); the device may have lost network or power",
                        retryable=True)
                if time.monotonic() > deadline:
                    raise DeviceError(
                        f"device runner on {self._where()} did not finish within {timeout_s:g} s "
                        f"(the device still answers; stderr so far: {tail(err.decode('utf-8', 'replace')) or '(empty)'})",
                        retryable=True)
                if not busy:
                    time.sleep(0.005)
            status = channel.recv_exit_status() if channel.exit_status_ready() else -1
        finally:
            channel.close()
        stdout = out.decode("utf-8", "replace")
        stderr = err.decode("utf-8", "replace")
        if status == -1 or not transport.is_active():
            raise DeviceError(
                f"SSH connection to {self._where()} was lost during the measurement "
                f"(no exit status received); the device may have rebooted, lost network or power",
                retryable=True)
        raise_if_busy(stdout, status, self._where())
        return read_answer(
            stdout, stderr, status, self._where(),
            not_found_hint=(f"{self.python!r} or the runner was not found on the device (set transport.python "
                            f"in the profile): {tail(stderr)}"))


def runner_command(runner_dir: str, python: str, argv: List[str]) -> str:
    """The remote shell command: stop a runner a dropped connection left behind (its pid is kept
    in WORKDIR/runner.pid and checked against /proc/PID/cmdline, so no other process is touched),
    record our pid, and ``exec`` the runner so that pid is the runner's.

    Without this, a runner orphaned by a network drop keeps loading the CPU while the retry
    measures, and both results would be wrong.
    """
    pid_file = shlex.quote(posixpath.join(posixpath.dirname(runner_dir.rstrip("/")), "runner.pid"))
    return (f"cd {shlex.quote(runner_dir)} && "
            f"{{ if [ -f {pid_file} ]; then p=$(cat {pid_file}); "
            f"grep -q nni_gensynth.device /proc/$p/cmdline 2>/dev/null && kill $p 2>/dev/null && sleep 0.2; fi; "
            f"echo $$ > {pid_file}; }} && "
            f"exec {shlex.quote(python)} -m nni_gensynth.device " + " ".join(shlex.quote(a) for a in argv))


def _alive(holder: Any) -> bool:
    """Whether the SSH connection under a client or an SFTP channel is still up."""
    transport = holder.get_transport() if holder is not None else None
    return transport is not None and transport.is_active()


def _exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        sftp.stat(path)
        return True
    except IOError:
        return False


def _makedirs(sftp: paramiko.SFTPClient, path: str) -> None:
    """mkdir -p over SFTP."""
    if not path or path in ("/", "."):
        return
    if _exists(sftp, path):
        return
    _makedirs(sftp, posixpath.dirname(path.rstrip("/")))
    try:
        sftp.mkdir(path)
    except IOError:
        if not _exists(sftp, path):
            raise
