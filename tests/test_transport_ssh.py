"""SSH transport against a real OpenSSH server on 127.0.0.1 (tests/fixtures_ssh.py), running the
real device runner with real onnxruntime on this machine."""
from __future__ import annotations

import hashlib
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from fakes.tiny_models import tiny_onnx
from fixtures_ssh import SSHServer, ssh_server  # noqa: F401 - pytest fixture
from hw_support import chatty_python, fast_request
from nni_gensynth.hardware.limits import MAX_OUTPUT_BYTES
from nni_gensynth.hardware.transports.base import DeviceError
from nni_gensynth.hardware.transports.remote import runner_files, runner_version
from nni_gensynth.hardware.transports.ssh import HostKeyError, SSHTransport


def start_long_run(transport: SSHTransport, model: Path) -> tuple[threading.Thread, dict]:
    """A 30 s device-runner call in a thread; `outcome` gets "result" or "error", then "ended_at"."""
    long_run = fast_request(model, min_time_s=30.0, max_runs=100_000_000)
    outcome: dict = {}

    def measure() -> None:
        try:
            outcome["result"] = transport.run(long_run)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc
        outcome["ended_at"] = time.monotonic()

    thread = threading.Thread(target=measure)
    thread.start()
    return thread, outcome


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_onnx(tmp_path_factory.mktemp("models") / "mlp.onnx", width=512)


def settings(server: SSHServer, tmp_path: Path, **overrides) -> dict:
    fields = {"kind": "ssh", "host": server.host, "port": server.port, "user": server.user,
              "key_file": str(server.user_key), "python": sys.executable,
              "workdir": str(tmp_path / "device-workdir"), "timeout_s": 60.0}  # timeout_s: profiles only
    fields.update(overrides)
    return fields


def known(server: SSHServer, tmp_path: Path) -> str:
    return str(server.keyscan(tmp_path / "known_hosts"))


def test_measures_over_ssh_and_pushes_by_content_hash(ssh_server: SSHServer, tmp_path: Path, onnx_model: Path):
    transport = SSHTransport(settings(ssh_server, tmp_path, known_hosts=known(ssh_server, tmp_path)))
    try:
        result = transport.run(fast_request(onnx_model))
        assert result["ok"] is True
        assert result["backend"] == "onnxruntime" and result["runtime"].startswith("onnxruntime")
        assert 10 <= len(result["samples_ms"]) <= 300
        assert all(0 < s < 1000 for s in result["samples_ms"])
        assert result["device"]["hostname"] == socket.gethostname()
        assert result["energy"]["source"] == "model"

        workdir = tmp_path / "device-workdir"
        version = runner_version(runner_files())
        runner_dir = workdir / f"runner-{version}"
        assert (runner_dir / ".complete").read_text() == version
        assert (runner_dir / "nni_gensynth" / "device" / "__main__.py").is_file()
        pushed = list((workdir / "models").iterdir())
        assert len(pushed) == 1 and pushed[0].suffix == ".onnx"
        assert pushed[0].name.startswith(hashlib.sha256(onnx_model.read_bytes()).hexdigest()[:24])
        assert pushed[0].read_bytes() == onnx_model.read_bytes()

        # A second call pushes nothing: same files, same modification times (runner.pid aside).
        def pushed_files() -> dict:
            return {p: p.stat().st_mtime_ns for p in workdir.rglob("*") if p.is_file() and p.name != "runner.pid"}

        before = pushed_files()
        again = transport.run(fast_request(onnx_model))
        assert again["ok"] is True
        after = pushed_files()
        assert before == after
        assert transport.device_id() == f"ssh:{ssh_server.user}@127.0.0.1:{ssh_server.port}"
    finally:
        transport.close()


def test_runner_version_changes_with_content(tmp_path: Path):
    pkg = tmp_path / "nni_gensynth"
    (pkg / "device").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "device" / "__init__.py").write_text("A = 1\n")
    (pkg / "device" / "__pycache__").mkdir()
    (pkg / "device" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    first = runner_version(runner_files(pkg))
    assert [rel for rel, _ in runner_files(pkg)] == ["nni_gensynth/__init__.py", "nni_gensynth/device/__init__.py"]
    (pkg / "device" / "__init__.py").write_text("A = 2\n")
    assert runner_version(runner_files(pkg)) != first


def test_unknown_host_key_is_refused_by_default(ssh_server: SSHServer, tmp_path: Path, onnx_model: Path,
                                                monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))  # ~/.ssh/known_hosts is empty of this server
    transport = SSHTransport(settings(ssh_server, tmp_path))
    with pytest.raises(HostKeyError) as info:
        transport.run(fast_request(onnx_model))
    message = str(info.value)
    assert info.value.retryable is False
    assert "not in" in message and f"ssh-keyscan -p {ssh_server.port} 127.0.0.1" in message
    assert not (tmp_path / "device-workdir").exists()  # nothing was run or pushed


def test_insecure_opt_in_accepts_an_unknown_key_but_never_a_changed_one(ssh_server: SSHServer, tmp_path: Path,
                                                                        onnx_model: Path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    lenient = SSHTransport(settings(ssh_server, tmp_path, known_hosts=str(empty)),
                           insecure_accept_unknown_host_key=True)
    assert lenient.run(fast_request(onnx_model))["ok"] is True
    lenient.close()
    assert empty.read_text() == ""  # trusted for that session only, never written

    known_hosts = known(ssh_server, tmp_path)
    ssh_server.new_host_key()
    lenient = SSHTransport(settings(ssh_server, tmp_path, known_hosts=known_hosts),
                           insecure_accept_unknown_host_key=True)
    with pytest.raises(HostKeyError, match="CHANGED"):
        lenient.run(fast_request(onnx_model))


def test_changed_host_key_is_refused(ssh_server: SSHServer, tmp_path: Path, onnx_model: Path):
    known_hosts = known(ssh_server, tmp_path)
    transport = SSHTransport(settings(ssh_server, tmp_path, known_hosts=known_hosts))
    assert transport.run(fast_request(onnx_model))["ok"] is True

    ssh_server.new_host_key()  # same port, new key: drops the open connection too
    with pytest.raises(HostKeyError) as info:
        transport.run(fast_request(onnx_model))
    message = str(info.value)
    assert info.value.retryable is False
    assert "CHANGED" in message and "ssh-keygen" in message and f"[127.0.0.1]:{ssh_server.port}" in message
    transport.close()


def test_sshd_killed_mid_measurement_is_a_retryable_error_and_the_next_call_works(
        ssh_server: SSHServer, tmp_path: Path, onnx_model: Path):
    transport = SSHTransport(settings(ssh_server, tmp_path, known_hosts=known(ssh_server, tmp_path)))
    thread, outcome = start_long_run(transport, onnx_model)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if ssh_server.device_runners():
            break
        time.sleep(0.05)
    else:
        pytest.fail("the device runner never started")
    time.sleep(0.3)
    killed_at = time.monotonic()
    ssh_server.kill()
    thread.join(timeout=20)
    assert not thread.is_alive()
    error = outcome.get("error")
    assert isinstance(error, DeviceError), outcome
    assert error.retryable is True
    assert "127.0.0.1" in str(error) and "lost" in str(error)
    assert time.monotonic() - killed_at < 10  # noticed at once, not after the 30 s run

    ssh_server.start()  # the device comes back: the same transport reconnects and measures
    result = transport.run(fast_request(onnx_model))
    assert result["ok"] is True and len(result["samples_ms"]) >= 10
    transport.close()


def test_device_that_dies_during_the_login_is_a_retryable_error(ssh_server: SSHServer, tmp_path: Path,
                                                               onnx_model: Path):
    """Power lost while the host is logging in: paramiko reports an AuthenticationException
    ("transport shut down or saw EOF"); that is the device going away, not a wrong key, so a pool
    moves on to another device instead of failing the trial."""
    known_hosts = known(ssh_server, tmp_path)
    ssh_server.kill()
    config = ssh_server.config.read_text().replace(f"AuthorizedKeysFile {ssh_server.authorized_keys}",
                                                   "AuthorizedKeysFile none")
    ssh_server.config.write_text(config  # every login now waits on this command
                                 + "AuthorizedKeysCommand /bin/sleep 30\nAuthorizedKeysCommandUser root\n")
    ssh_server.start()
    transport = SSHTransport(settings(ssh_server, tmp_path, known_hosts=known_hosts), connect_timeout_s=20)
    thread, outcome = start_long_run(transport, onnx_model)
    deadline = time.monotonic() + 20
    while not ssh_server.commands_running("/bin/sleep 30"):
        assert time.monotonic() < deadline, "the login never reached the keys command"
        time.sleep(0.05)
    ssh_server.kill()
    thread.join(timeout=30)
    assert not thread.is_alive()
    error = outcome.get("error")
    assert isinstance(error, DeviceError) and error.retryable is True, outcome
    transport.close()


def test_device_that_stops_answering_is_a_retryable_error_within_the_liveness_timeout(
        ssh_server: SSHServer, tmp_path: Path, onnx_model: Path):
    """Wi-Fi lost: no FIN, no RST, just silence (sshd frozen with SIGSTOP, its TCP socket open).
    The keepalive that wants a reply notices within alive_timeout_s, not the 600 s command timeout."""
    transport = SSHTransport(settings(ssh_server, tmp_path, known_hosts=known(ssh_server, tmp_path)),
                             alive_interval_s=0.5, alive_timeout_s=2.0)
    thread, outcome = start_long_run(transport, onnx_model)
    deadline = time.monotonic() + 20
    while not ssh_server.device_runners():
        assert time.monotonic() < deadline, "the device runner never started"
        time.sleep(0.05)
    time.sleep(1.5)  # a few probes answered while the runner measures: a busy device is not "lost"
    assert thread.is_alive() and not outcome
    frozen_at = time.monotonic()
    ssh_server.freeze()
    thread.join(timeout=60)
    assert not thread.is_alive()
    error = outcome.get("error")
    assert isinstance(error, DeviceError) and error.retryable is True, outcome
    assert "no answer to a keepalive" in str(error) and "127.0.0.1" in str(error)
    assert outcome["ended_at"] - frozen_at < 15  # alive_timeout_s (2 s) plus scheduling slack; the run was 30 s

    ssh_server.kill()
    ssh_server.start()  # the device comes back: the same transport reconnects and measures
    assert transport.run(fast_request(onnx_model))["ok"] is True
    transport.close()


def test_device_that_stops_answering_during_an_upload_is_a_retryable_error(
        ssh_server: SSHServer, tmp_path: Path, onnx_model: Path):
    """Silence while files are pushed: paramiko's SFTP would wait up to an hour for the channel; the
    link guard closes it within alive_timeout_s and the next call, once the device is back, works."""
    transport = SSHTransport(settings(ssh_server, tmp_path, known_hosts=known(ssh_server, tmp_path)),
                             alive_interval_s=0.5, alive_timeout_s=2.0)
    assert transport.run(fast_request(onnx_model))["ok"] is True  # connected, runner pushed
    ssh_server.freeze()
    frozen_at = time.monotonic()
    with pytest.raises(DeviceError) as caught:
        transport.run(fast_request(onnx_model))  # first SFTP request gets no answer
    assert time.monotonic() - frozen_at < 15
    assert caught.value.retryable is True and "pushed" in str(caught.value) and "127.0.0.1" in str(caught.value)
    ssh_server.kill()
    ssh_server.start()
    assert transport.run(fast_request(onnx_model))["ok"] is True
    transport.close()


def test_runner_orphaned_by_a_network_drop_is_stopped_before_the_next_run(ssh_server: SSHServer, tmp_path: Path,
                                                                          onnx_model: Path):
    """A dropped connection (sshd alive) leaves the runner running on the device; it must not
    load the CPU while the retry measures."""
    transport = SSHTransport(settings(ssh_server, tmp_path, known_hosts=known(ssh_server, tmp_path)))
    thread, outcome = start_long_run(transport, onnx_model)
    deadline = time.monotonic() + 20
    while not ssh_server.device_runners():
        assert time.monotonic() < deadline, "the device runner never started"
        time.sleep(0.05)
    [orphan] = ssh_server.device_runners()
    transport._client.get_transport().sock.shutdown(socket.SHUT_RDWR)  # the network drops
    thread.join(timeout=20)
    assert isinstance(outcome.get("error"), DeviceError) and outcome["error"].retryable
    time.sleep(0.5)
    assert orphan.is_running() and orphan.status() != "zombie"  # sshd does not stop it by itself

    assert transport.run(fast_request(onnx_model))["ok"] is True
    assert not orphan.is_running() or orphan.status() == "zombie"
    transport.close()


def test_runner_failure_is_not_retryable_and_carries_the_device_error(ssh_server: SSHServer, tmp_path: Path,
                                                                      onnx_model: Path):
    transport = SSHTransport(settings(ssh_server, tmp_path, known_hosts=known(ssh_server, tmp_path)))
    with pytest.raises(DeviceError) as info:
        transport.run(fast_request(onnx_model, affinity=(4095,)))  # a core the device does not have
    assert info.value.retryable is False
    assert "--affinity cores [4095] do not exist" in str(info.value) and "exit 1" in str(info.value)
    transport.close()


def test_wrong_user_key_is_an_authentication_error(ssh_server: SSHServer, tmp_path: Path, onnx_model: Path):
    other = tmp_path / "other_key"
    import subprocess
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    transport = SSHTransport(settings(ssh_server, tmp_path, known_hosts=known(ssh_server, tmp_path),
                                      key_file=str(other)))
    with pytest.raises(DeviceError, match="authentication failed") as info:
        transport.run(fast_request(onnx_model))
    assert info.value.retryable is False


def test_bad_settings_name_the_field(tmp_path: Path):
    with pytest.raises(ValueError, match="transport.host"):
        SSHTransport({"kind": "ssh"})
    with pytest.raises(ValueError, match="transport.port"):
        SSHTransport({"kind": "ssh", "host": "pi", "port": 70000})
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not contacted")
    with pytest.raises(FileNotFoundError, match="transport.key_file"):
        SSHTransport({"kind": "ssh", "host": "pi", "key_file": str(tmp_path / "nope")}).run(fast_request(model))
    with pytest.raises(FileNotFoundError, match="ssh-keyscan"):
        SSHTransport({"kind": "ssh", "host": "pi", "known_hosts": str(tmp_path / "nope")}).run(fast_request(model))
    with pytest.raises(ValueError, match="'ssh'"):
        SSHTransport({"kind": "adb", "host": "pi"})
    transport = SSHTransport({"kind": "ssh", "host": "pi"})
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        transport.run(fast_request(tmp_path / "missing.onnx"))


def test_measure_retries_after_sshd_dies_and_caches_one_good_result(ssh_server: SSHServer, tmp_path: Path,
                                                                    onnx_model: Path,
                                                                    monkeypatch: pytest.MonkeyPatch):
    from nni_gensynth.hardware.cache import MeasurementCache
    from nni_gensynth.hardware.measure import measure
    from nni_gensynth.hardware.profiles import profile_from_dict

    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path / "cache"))
    fields = settings(ssh_server, tmp_path, known_hosts=known(ssh_server, tmp_path))
    profile = profile_from_dict({
        "name": "fake-pi", "backend": "onnxruntime", "threads": 1, "transport": fields,
        "warmup": {"min_time_s": 0.05, "min_runs": 2}, "repeat": {"min_time_s": 1.5, "min_runs": 10},
        "energy": {"source": "model"}})
    cache = MeasurementCache(tmp_path / "cache.sqlite")
    outcome: dict = {}

    class Counting(SSHTransport):
        calls: list = []
        ended_at: list = []

        def run(self, request):
            try:
                answer = super().run(request)
            except DeviceError as exc:
                self.calls.append(exc)
                self.ended_at.append(time.monotonic())
                raise
            self.calls.append("ok")
            self.ended_at.append(time.monotonic())
            return answer

    transport = Counting(profile)

    def run() -> None:
        try:
            outcome["result"] = measure(onnx_model, profile, cache=cache, retries=2, transport=transport)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 20
    while not ssh_server.device_runners():
        assert time.monotonic() < deadline, "the device runner never started"
        time.sleep(0.05)
    killed_at = time.monotonic()
    ssh_server.kill()   # the Pi drops off the network mid-measurement ...
    ssh_server.start()  # ... and is back before measure()'s retry
    thread.join(timeout=180)  # generous: detection, reconnect and re-measure on a loaded machine
    assert not thread.is_alive(), "measure() did not return within 180 s of the device dropping"
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert not result.from_cache and len(result.samples_ms) >= 10
    assert len(cache) == 1  # one good result stored, nothing from the dropped attempt
    assert len(transport.calls) == 2 and transport.calls[1] == "ok"
    assert isinstance(transport.calls[0], DeviceError) and transport.calls[0].retryable
    assert transport.ended_at[0] - killed_at < 10  # the drop is noticed in seconds, not the 60 s timeout_s
    transport.close()


def test_unusable_workdir_is_not_retried(ssh_server: SSHServer, tmp_path: Path, onnx_model: Path):
    (tmp_path / "blocked").write_text("a file where the workdir's parent should be")
    transport = SSHTransport(settings(ssh_server, tmp_path, known_hosts=known(ssh_server, tmp_path),
                                      workdir=str(tmp_path / "blocked" / "wd")))
    with pytest.raises(DeviceError, match="cannot create transport.workdir") as info:
        transport.run(fast_request(onnx_model))
    assert info.value.retryable is False
    transport.close()


def test_output_past_the_limit_is_not_read(ssh_server: SSHServer, tmp_path: Path, onnx_model: Path):
    """A device whose python prints 32 MB: the old transport buffered all of it (760 MB of host RAM
    for 200 MB); now reading stops at MAX_OUTPUT_BYTES, the channel is closed, and the device
    command dies with it."""
    transport = SSHTransport(settings(ssh_server, tmp_path, known_hosts=known(ssh_server, tmp_path),
                                      python=str(chatty_python(tmp_path, megabytes=32))))
    with pytest.raises(DeviceError, match=f"more than {MAX_OUTPUT_BYTES // (1 << 20)} MB") as info:
        transport.run(fast_request(onnx_model))
    assert info.value.retryable is False and "127.0.0.1" in str(info.value)
    deadline = time.monotonic() + 10
    while ssh_server.commands_running("chatty-python"):
        assert time.monotonic() < deadline, "the device command kept running"
        time.sleep(0.1)
    transport.close()
    (tmp_path / "small").mkdir()
    small = SSHTransport(settings(ssh_server, tmp_path, known_hosts=known(ssh_server, tmp_path),
                                  python=str(chatty_python(tmp_path / "small", megabytes=1))))
    assert small.run(fast_request(onnx_model)) == {"ok": True}
    small.close()
