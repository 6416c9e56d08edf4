"""A fake ADB server on 127.0.0.1 that speaks the real ADB host ("smart socket") protocol and runs
the device side on this machine.

Protocol (as documented in AOSP packages/modules/adb: OVERVIEW.TXT, SERVICES.TXT, SYNC.TXT):

- every request is a 4-hex-digit length followed by that many bytes; the server answers
  ``OKAY`` or ``FAIL`` + 4-hex length + message; host queries then send a length-prefixed block;
- host services: host:version, host:devices, host:devices-l, host:features, host:kill,
  host:transport:SERIAL, host:transport-any, host:tport:serial:SERIAL / host:tport:any (OKAY then
  an 8-byte little-endian transport id), host-serial:SERIAL:(features|get-state|get-serialno|
  get-devpath);
- after a transport is chosen, device services on the same socket: ``shell:CMD`` (raw output,
  stderr merged, socket closed at the end), ``shell,v2,...:CMD`` (packets: 1-byte id, 4-byte LE
  length, data; ids 1 stdout, 2 stderr, 3 exit code) and ``sync:`` (STAT, LIST, SEND with
  DATA/DONE, RECV, QUIT; 4-byte id + 4-byte LE length/value).

The device: paths are mapped into a temporary directory (``FakeDevice.root``), so /data/local/tmp
and the fixture sysfs tree (battery current_now/voltage_now, cpufreq) are real files. Shell
commands run through a small allowlisted interpreter: cd, cat, grep -H, getprop, echo, mkdir,
rm, chmod, ls, taskset MASK CMD, dumpsys thermalservice, the device's benchmark_model (a local
script that really runs the model with LiteRT and prints benchmark_model's output), and
``python3 -m nni_gensynth.device`` (the real device runner). Anything else answers "not found"
with exit code 127. While a workload runs, the fixture battery draws ``load_ua`` instead of
``idle_ua`` (the device's physics, so energy readers see a difference).

Test hooks: ``drop_during(match, after_s)`` closes the client socket (and kills the process)
after ``after_s`` seconds of the next shell command containing ``match`` - a phone unplugged
mid-run; ``unplug(serial)`` / ``plug(device)``.
"""
from __future__ import annotations

import fnmatch
import json
import os
import posixpath
import shlex
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

FAKE_BENCHMARK = Path(__file__).with_name("fake_benchmark_model.py")
ADB_SERVER_VERSION = 41  # "Android Debug Bridge version 1.0.41"
FEATURES = "shell_v2,cmd,fixed_push_mkdir"
BATTERY = "sys/class/power_supply/battery"


@dataclass
class FakeDevice:
    """One phone: a serial, a filesystem root and its fixture state."""

    serial: str
    root: Path
    cpu_max_khz: Tuple[int, ...] = (1804800,) * 4 + (2803200,) * 4  # 4 little + 4 big
    props: Dict[str, str] = field(default_factory=lambda: {
        "ro.product.model": "Fake Pixel", "ro.product.manufacturer": "nni-gensynth",
        "ro.build.version.release": "14", "ro.build.version.sdk": "34", "ro.product.cpu.abi": "arm64-v8a"})
    thermal_status: int = 0
    idle_ua: int = -250_000  # discharging current is negative on many phones
    load_ua: int = -900_000
    voltage_uv: int = 3_900_000
    python: str = "python3"
    python_executable: str = sys.executable  # what really runs when the phone's python is called
    benchmark_binary: str = "/data/local/tmp/benchmark_model"
    # delegate kernels the phone's GPU / NNAPI delegates take ({"gpu": 0}: created, takes nothing);
    # absent: that delegate cannot be created on this phone
    accelerators: Dict[str, Optional[int]] = field(default_factory=dict)
    transport_id: int = 1
    taskset_masks: List[str] = field(default_factory=list)
    shell_log: List[str] = field(default_factory=list)
    outputs: List[Tuple[str, bytes, bytes, int]] = field(default_factory=list)  # (command, out, err, code)
    _workloads: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        for sub in ("data/local/tmp", "sdcard"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        battery = self.root / BATTERY
        battery.mkdir(parents=True, exist_ok=True)
        (battery / "type").write_text("Battery\n")
        (battery / "status").write_text("Discharging\n")
        (battery / "current_now").write_text(f"{self.idle_ua}\n")
        (battery / "voltage_now").write_text(f"{self.voltage_uv}\n")
        for cpu, khz in enumerate(self.cpu_max_khz):
            freq = self.root / f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
            freq.mkdir(parents=True, exist_ok=True)
            (freq / "cpuinfo_max_freq").write_text(f"{khz}\n")
        (self.root / "sys/devices/system/cpu/possible").write_text(f"0-{len(self.cpu_max_khz) - 1}\n")

    def local(self, device_path: str, cwd: str = "/") -> Path:
        """The local file behind a device path (never outside ``root``)."""
        absolute = posixpath.normpath(posixpath.join(cwd, device_path))
        return self.root / absolute.lstrip("/")

    def install_benchmark_binary(self) -> None:
        """Put a file at the benchmark binary's path (its content is not run; the fake script is)."""
        path = self.local(self.benchmark_binary)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/system/bin/sh\n# fake benchmark_model\n")
        path.chmod(0o755)

    def workload(self, running: bool) -> None:
        """Battery physics: current rises to load_ua while any workload runs."""
        with self._lock:
            self._workloads += 1 if running else -1
            value = self.load_ua if self._workloads > 0 else self.idle_ua
            (self.root / BATTERY / "current_now").write_text(f"{value}\n")


class _Dropped(Exception):
    """The test asked for this connection to be cut."""


class FakeADBServer:
    """ADB server on 127.0.0.1:<free port> serving FakeDevices. Use as a context manager."""

    def __init__(self, devices: List[FakeDevice]) -> None:
        self.devices: Dict[str, FakeDevice] = {d.serial: d for d in devices}
        self.requests: List[str] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.5)  # accept() wakes up to notice stop() even where shutdown does not
        self.host, self.port = self._listener.getsockname()
        self._threads: List[threading.Thread] = []
        self._conns: List[socket.socket] = []
        self._procs: List[subprocess.Popen] = []
        self._drop: Optional[Tuple[str, float]] = None
        self._lock = threading.Lock()
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True, name="fake-adb-accept")

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> "FakeADBServer":
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._closed = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close alone does not)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            conns, procs = list(self._conns), list(self._procs)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for conn in conns:
            _hard_close(conn)
        self._acceptor.join(timeout=5)
        for thread in list(self._threads):
            thread.join(timeout=5)

    def __enter__(self) -> "FakeADBServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- test hooks ----------------------------------------------------------------------------

    def drop_during(self, match: str, after_s: float) -> None:
        """Cut the client socket ``after_s`` seconds into the next shell command containing ``match``."""
        self._drop = (match, after_s)

    def unplug(self, serial: str) -> FakeDevice:
        return self.devices.pop(serial)

    def plug(self, device: FakeDevice) -> None:
        self.devices[device.serial] = device

    # -- connection handling -------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(None)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True, name="fake-adb-conn")
            with self._lock:
                self._conns.append(conn)
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            device: Optional[FakeDevice] = None
            while True:
                request = _read_request(conn)
                if request is None:
                    return
                self.requests.append(request)
                if device is None:
                    device, keep_going = self._host_service(conn, request)
                    if not keep_going:
                        return
                    continue
                if request.startswith("shell"):
                    self._shell(conn, device, request)
                elif request == "sync:":
                    conn.sendall(b"OKAY")
                    _Sync(conn, device).serve()
                else:
                    _fail(conn, f"unknown device service: {request}")
                return
        except (_Dropped, OSError, ConnectionError):
            return
        finally:
            _graceful_close(conn)
            with self._lock:
                if conn in self._conns:
                    self._conns.remove(conn)

    def _device(self, conn: socket.socket, serial: Optional[str]) -> Optional[FakeDevice]:
        if serial is None:
            if len(self.devices) == 1:
                return next(iter(self.devices.values()))
            _fail(conn, "no devices/emulators found" if not self.devices else "more than one device/emulator")
            return None
        device = self.devices.get(serial)
        if device is None:
            _fail(conn, f"device '{serial}' not found")
        return device

    def _host_service(self, conn: socket.socket, request: str) -> Tuple[Optional[FakeDevice], bool]:
        """Answer a host request; returns (device chosen for a transport, keep reading requests)."""
        if request == "host:version":
            _okay_block(conn, f"{ADB_SERVER_VERSION:04x}")
        elif request in ("host:devices", "host:devices-l"):
            lines = []
            for d in self.devices.values():
                if request.endswith("-l"):
                    model = d.props.get("ro.product.model", "").replace(" ", "_")
                    lines.append(f"{d.serial:<22} device product:fake model:{model} device:fake "
                                 f"transport_id:{d.transport_id}")
                else:
                    lines.append(f"{d.serial}\tdevice")
            _okay_block(conn, "".join(line + "\n" for line in lines))
        elif request == "host:features":
            _okay_block(conn, FEATURES)
        elif request == "host:kill":
            conn.sendall(b"OKAY")
        elif request.startswith("host-serial:"):
            rest = request[len("host-serial:"):]
            serial = next((s for s in self.devices if rest.startswith(s + ":")), None)
            if serial is None:
                _fail(conn, f"device '{rest.rsplit(':', 1)[0]}' not found")
                return None, False
            command = rest[len(serial) + 1:]
            answers = {"features": FEATURES, "get-state": "device", "get-serialno": serial,
                       "get-devpath": "usb:fake"}
            if command in answers:
                _okay_block(conn, answers[command])
            else:
                _fail(conn, f"unsupported host-serial command: {command}")
        elif request.startswith(("host:transport:", "host:tport:serial:")) or request in (
                "host:transport-any", "host:tport:any"):
            serial = None if request.endswith("any") else request.split(":", 3 if "tport" in request else 2)[-1]
            device = self._device(conn, serial)
            if device is None:
                return None, False
            conn.sendall(b"OKAY")
            if request.startswith("host:tport:"):
                conn.sendall(struct.pack("<Q", device.transport_id))
            return device, True
        else:
            _fail(conn, f"unknown host service: {request}")
        return None, False

    # -- shell ---------------------------------------------------------------------------------

    def _shell(self, conn: socket.socket, device: FakeDevice, request: str) -> None:
        name, _, command = request.partition(":")
        v2 = "v2" in name.split(",")[1:]
        device.shell_log.append(command)
        conn.sendall(b"OKAY")
        drop_after = None
        if self._drop is not None and self._drop[0] in command:
            drop_after, self._drop = self._drop[1], None
        shell = _Shell(device, self)
        out, err, code = shell.run(command, drop_after)
        device.outputs.append((command, out, err, code))
        if v2:
            for packet_id, data in ((1, out), (2, err)):
                for start in range(0, len(data), 65536):
                    chunk = data[start:start + 65536]
                    conn.sendall(struct.pack("<BI", packet_id, len(chunk)) + chunk)
            conn.sendall(struct.pack("<BI", 3, 1) + bytes([code & 0xFF]))
        else:
            conn.sendall(out + err)

    def _track(self, proc: subprocess.Popen, add: bool) -> None:
        with self._lock:
            if add:
                self._procs.append(proc)
            elif proc in self._procs:
                self._procs.remove(proc)


class _Shell:
    """The allowlisted device shell: ``;`` and ``&&`` sequences of a few commands."""

    def __init__(self, device: FakeDevice, server: FakeADBServer) -> None:
        self.device = device
        self.server = server
        self.cwd = "/"
        self.out = bytearray()
        self.err = bytearray()

    def run(self, command: str, drop_after: Optional[float]) -> Tuple[bytes, bytes, int]:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|<>()")
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError as exc:
            return b"", f"/system/bin/sh: syntax error: {exc}\n".encode(), 2
        code = 0
        segment: List[str] = []
        for token in tokens + [";"]:
            if token in (";", "&&"):
                if segment:
                    code = self._command(segment, drop_after)
                segment = []
                if token == "&&" and code != 0:
                    break
            elif token and token[0] in ";&|<>()":
                self.err += f"/system/bin/sh: '{token}' is not supported by the fake device shell\n".encode()
                return bytes(self.out), bytes(self.err), 2
            else:
                segment.append(token)
        return bytes(self.out), bytes(self.err), code

    def _expand(self, args: List[str]) -> List[str]:
        out = []
        for arg in args:
            if arg.startswith("/") and any(c in arg for c in "*?["):
                matches = sorted(self._glob(arg))
                out.extend(matches or [arg])
            else:
                out.append(arg)
        return out

    def _glob(self, pattern: str) -> List[str]:
        parts = pattern.strip("/").split("/")
        found = ["/"]
        for part in parts:
            nxt = []
            for base in found:
                local = self.device.local(base)
                if not local.is_dir():
                    continue
                names = sorted(os.listdir(local)) if any(c in part for c in "*?[") else [part]
                for name in names:
                    if fnmatch.fnmatchcase(name, part) and (local / name).exists():
                        nxt.append(posixpath.join(base, name))
            found = nxt
        return found

    def _command(self, argv: List[str], drop_after: Optional[float]) -> int:
        argv = self._expand(argv)
        name, args = argv[0], argv[1:]
        dev = self.device
        if name == "cd":
            target = dev.local(args[0] if args else "/", self.cwd)
            if not target.is_dir():
                self.err += f"/system/bin/sh: cd: {args[0]}: No such file or directory\n".encode()
                return 2
            self.cwd = "/" + str(target.relative_to(dev.root)).replace(os.sep, "/").lstrip(".")
            return 0
        if name == "echo":
            self.out += (" ".join(args) + "\n").encode()
            return 0
        if name == "cat":
            code = 0
            for arg in args:
                path = dev.local(arg, self.cwd)
                if path.is_file():
                    self.out += path.read_bytes()
                else:
                    self.err += f"cat: {arg}: No such file or directory\n".encode()
                    code = 1
            return code
        if name == "grep" and args[:2] == ["-H", "."]:
            found = False
            for arg in args[2:]:
                path = dev.local(arg, self.cwd)
                if not path.is_file():
                    self.err += f"grep: {arg}: No such file or directory\n".encode()
                    continue
                for line in path.read_text().splitlines():
                    if line:
                        self.out += f"{arg}:{line}\n".encode()
                        found = True
            return 0 if found else 1
        if name == "getprop":
            if args:
                self.out += (dev.props.get(args[0], "") + "\n").encode()
            else:
                self.out += "".join(f"[{k}]: [{v}]\n" for k, v in sorted(dev.props.items())).encode()
            return 0
        if name == "mkdir":
            code = 0
            for arg in (a for a in args if not a.startswith("-")):
                try:
                    dev.local(arg, self.cwd).mkdir(parents="-p" in args, exist_ok="-p" in args)
                except OSError as exc:
                    self.err += f"mkdir: '{arg}': {exc.strerror}\n".encode()
                    code = 1
            return code
        if name == "rm":
            for arg in (a for a in args if not a.startswith("-")):
                path = dev.local(arg, self.cwd)
                if path.is_dir() and "-r" in "".join(args):
                    import shutil
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
            return 0
        if name == "chmod":
            for arg in args[1:]:
                path = dev.local(arg, self.cwd)
                if path.exists():
                    path.chmod(int(args[0], 8) if args[0].isdigit() else 0o755)
            return 0
        if name == "ls":
            target = dev.local(args[-1] if args else ".", self.cwd)
            if not target.exists():
                self.err += f"ls: {args[-1]}: No such file or directory\n".encode()
                return 1
            names = sorted(os.listdir(target)) if target.is_dir() else [target.name]
            self.out += "".join(n + "\n" for n in names).encode()
            return 0
        if name == "dumpsys" and args == ["thermalservice"]:
            self.out += (
                "IsStatusOverride: false\nThermalEventListeners:\n\tcallbacks: 0\n"
                f"ThermalStatusListeners:\n\tcallbacks: 1\nThermal Status: {dev.thermal_status}\n"
                "Cached temperatures:\n"
                "\tTemperature{mValue=36.2, mType=0, mName=cpu0-silver-usr, mStatus=0}\n"
                "\tTemperature{mValue=31.5, mType=2, mName=battery, mStatus=0}\n"
                "HAL Ready: true\nHAL connection:\n\tThermalHAL AIDL 1  connected: yes\n").encode()
            return 0
        if name == "taskset":
            if len(args) < 2:
                self.err += b"taskset: usage: taskset [-p] [mask] [PID | cmd [args...]]\n"
                return 1
            try:
                mask = int(args[0], 16)
            except ValueError:
                self.err += f"taskset: bad mask '{args[0]}'\n".encode()
                return 1
            if mask == 0 or mask >> len(dev.cpu_max_khz):
                self.err += f"taskset: sched_setaffinity: Invalid argument (mask {args[0]})\n".encode()
                return 1
            dev.taskset_masks.append(args[0])
            return self._command(args[1:], drop_after)  # 8 fake cores cannot pin to 2 real ones
        if name == dev.benchmark_binary or dev.local(name, self.cwd) == dev.local(dev.benchmark_binary):
            if not dev.local(dev.benchmark_binary).is_file():
                self.err += f"/system/bin/sh: {name}: inaccessible or not found\n".encode()
                return 127
            graph = next((a.split("=", 1)[1] for a in args if a.startswith("--graph=")), "")
            return self._process([sys.executable, str(FAKE_BENCHMARK)] + [self._map_arg(a) for a in args],
                                 drop_after, {"FAKE_ADB_DEVICE_GRAPH": graph,
                                              "FAKE_ADB_ACCELERATORS": json.dumps(dev.accelerators)})
        if name == dev.python and args[:2] == ["-m", "nni_gensynth.device"]:
            mapped = [self._map_arg(a) for a in args]
            if len(mapped) > 2 and "--sysfs-root" not in mapped and mapped[2] in ("measure", "info"):
                mapped[3:3] = ["--sysfs-root", str(dev.root)]  # the device's "/" is its root dir
            return self._process([dev.python_executable] + mapped, drop_after, {"PYTHONDONTWRITEBYTECODE": "1"})
        self.err += f"/system/bin/sh: {name}: inaccessible or not found\n".encode()
        return 127

    def _map_arg(self, arg: str) -> str:
        if arg.startswith("/"):
            return str(self.device.local(arg, self.cwd))
        flag, sep, value = arg.partition("=")
        if sep and value.startswith("/"):
            return f"{flag}={self.device.local(value, self.cwd)}"
        return arg

    def _process(self, argv: List[str], drop_after: Optional[float], env: Dict[str, str]) -> int:
        cwd = self.device.local(self.cwd)
        self.device.workload(True)
        try:
            proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL, env={**os.environ, **env})
            self.server._track(proc, True)
            try:
                out, err = proc.communicate(timeout=drop_after)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise _Dropped() from None
            finally:
                self.server._track(proc, False)
        finally:
            self.device.workload(False)
        self.out += out
        self.err += err
        return proc.returncode


class _Sync:
    """The sync: service (SYNC.TXT): 4-byte id + 4-byte little-endian length/value."""

    def __init__(self, conn: socket.socket, device: FakeDevice) -> None:
        self.conn = conn
        self.device = device

    def serve(self) -> None:
        while True:
            header = _recv_exact(self.conn, 8)
            if header is None:
                return
            ident, length = header[:4], struct.unpack("<I", header[4:])[0]
            if ident == b"QUIT":
                return
            payload = _recv_exact(self.conn, length)
            if payload is None:
                return
            path = payload.decode("utf-8", "replace")
            handler = {b"STAT": self._stat, b"LIST": self._list, b"SEND": self._send, b"RECV": self._recv}.get(ident)
            if handler is None:
                self._fail(f"unknown sync command {ident!r}")
                return
            handler(path)

    def _fail(self, message: str) -> None:
        data = message.encode()
        self.conn.sendall(b"FAIL" + struct.pack("<I", len(data)) + data)

    def _stat(self, path: str) -> None:
        local = self.device.local(path)
        try:
            st = os.lstat(local)
            values = (st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime))
        except OSError:
            values = (0, 0, 0)
        self.conn.sendall(b"STAT" + struct.pack("<III", *values))

    def _list(self, path: str) -> None:
        local = self.device.local(path)
        if local.is_dir():
            for name in sorted(os.listdir(local)):
                st = os.lstat(local / name)
                data = name.encode()
                self.conn.sendall(b"DENT" + struct.pack("<IIII", st.st_mode, st.st_size & 0xFFFFFFFF,
                                                         int(st.st_mtime), len(data)) + data)
        self.conn.sendall(b"DONE" + bytes(16))

    def _send(self, spec: str) -> None:
        path, _, mode = spec.rpartition(",")
        if not path:
            path, mode = spec, str(stat.S_IFREG | 0o644)
        local = self.device.local(path)
        try:
            local.parent.mkdir(parents=True, exist_ok=True)  # fixed_push_mkdir
            handle = open(local, "wb")
        except OSError as exc:
            self._fail(f"couldn't create file: {exc.strerror}")
            return
        with handle:
            while True:
                header = _recv_exact(self.conn, 8)
                if header is None:
                    return  # dropped mid-push: the partial file stays, as on a real device
                ident, value = header[:4], struct.unpack("<I", header[4:])[0]
                if ident == b"DATA":
                    data = _recv_exact(self.conn, value)
                    if data is None:
                        return
                    handle.write(data)
                elif ident == b"DONE":
                    break
                else:
                    self._fail(f"invalid data message {ident!r}")
                    return
        os.chmod(local, int(mode) & 0o777 if mode.isdigit() else 0o644)
        self.conn.sendall(b"OKAY" + bytes(4))

    def _recv(self, path: str) -> None:
        local = self.device.local(path)
        if not local.is_file():
            self._fail(f"open failed: No such file or directory: {path}")
            return
        with open(local, "rb") as handle:
            for chunk in iter(lambda: handle.read(65536), b""):
                self.conn.sendall(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
        self.conn.sendall(b"DONE" + bytes(4))


# -- wire helpers ------------------------------------------------------------------------------


def _recv_exact(conn: socket.socket, n: int) -> Optional[bytes]:
    data = bytearray()
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _read_request(conn: socket.socket) -> Optional[str]:
    header = _recv_exact(conn, 4)
    if header is None:
        return None
    body = _recv_exact(conn, int(header.decode("ascii"), 16))
    return None if body is None else body.decode("utf-8", "replace")


def _okay_block(conn: socket.socket, text: str) -> None:
    data = text.encode()
    conn.sendall(b"OKAY" + f"{len(data):04x}".encode() + data)


def _fail(conn: socket.socket, message: str) -> None:
    data = message.encode()
    conn.sendall(b"FAIL" + f"{len(data):04x}".encode() + data)


def _graceful_close(conn: socket.socket) -> None:
    """Half-close, drain what the client still sends (so closing sends FIN, not RST), close."""
    try:
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(1.0)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and conn.recv(65536):
            pass
    except OSError:
        pass
    conn.close()


def _hard_close(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()
