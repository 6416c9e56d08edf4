"""A pool of SSH "devices" on 127.0.0.1 for the device-pool tests: several real OpenSSH servers
(tests/fixtures_ssh.py), each with its own workdir, one known_hosts file holding all their keys, a
pooled profile over them, and the devices' own lease logs (WORKDIR/lease.log).

Run as a script, it is a measuring process of the tests: it measures the given models through a
pooled profile and prints one JSON line per measurement (which device measured it, when).

    python fixtures_pool.py PROFILE.yml MODEL.onnx [MODEL.onnx ...]
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import yaml

from fixtures_ssh import SSHD, SSHServer

FAST_POOL_TIMING = {"warmup": {"min_time_s": 0.05, "min_runs": 2},
                    "repeat": {"min_time_s": 0.2, "min_runs": 10, "max_runs": 100_000}}


class DevicePoolFixture:
    """``count`` sshd "devices" under ``root``; ``profile()`` builds a pooled profile over them."""

    def __init__(self, root: Path, count: int) -> None:
        self.root = root
        self.servers: List[SSHServer] = []
        for i in range(count):
            folder = root / f"device{i}"
            folder.mkdir(parents=True)
            self.servers.append(SSHServer(folder))
        self.known_hosts = root / "known_hosts"

    def start(self) -> None:
        keys = []
        for server in self.servers:
            server.start()
            keys.append(server.keyscan(server.root / "known_hosts").read_text())
        self.known_hosts.write_text("".join(keys))

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def workdir(self, i: int) -> Path:
        return self.root / f"device{i}" / "workdir"

    def device_id(self, i: int) -> str:
        """Device ``i``'s id, as its transport names it."""
        from nni_gensynth.hardware.transports.ssh import SSHTransport

        server = self.servers[i]
        return SSHTransport({"kind": "ssh", "host": server.host, "port": server.port, "user": server.user}).device_id()

    def profile(self, name: str = "test-pool", **overrides: Any) -> Dict[str, Any]:
        """A pooled onnxruntime profile over every device (short timing; ``pool`` settings and
        other fields overridable)."""
        devices = [{"host": s.host, "port": s.port, "key_file": str(s.user_key), "workdir": str(self.workdir(i))}
                   for i, s in enumerate(self.servers)]
        data: Dict[str, Any] = {
            "name": name, "backend": "onnxruntime", "threads": 1, "energy": {"source": "model"},
            "input_shape": [1, 64],
            "transport": {"kind": "ssh", "user": self.servers[0].user, "python": sys.executable,
                          "known_hosts": str(self.known_hosts), "timeout_s": 60.0, "devices": devices},
            "pool": {"name": name, "probe_interval_s": 1.0, "lease_wait_s": 120.0, "cross_check_every": 0},
            **FAST_POOL_TIMING}
        pool = overrides.pop("pool", {})
        data.update(overrides)
        data["pool"] = {**data["pool"], **pool}
        return data

    def write_profile(self, path: Path, **overrides: Any) -> Path:
        path.write_text(yaml.safe_dump(self.profile(**overrides)))
        return path

    def lease_log(self, i: int) -> List[Dict[str, Any]]:
        """The device's own record of its leased runs (one JSON object per run)."""
        path = self.workdir(i) / "lease.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def lease_is_free(self, i: int) -> bool:
        """Whether device ``i``'s lease can be taken now (the device is this machine)."""
        import fcntl

        path = self.workdir(i) / "lease.lock"
        if not path.exists():
            return True
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return True


def overlapping(runs: Sequence[Dict[str, Any]]) -> List[Tuple[Dict[str, Any], Dict[str, Any]]]:
    """Pairs of runs of one device whose [start, end] intervals overlap (none, if the lease works)."""
    ordered = sorted(runs, key=lambda run: run["start"])
    return [(a, b) for a, b in zip(ordered, ordered[1:]) if b["start"] < a["end"]]


def device_pool(tmp_path: Path, count: int = 2) -> Iterator[DevicePoolFixture]:
    """The fixture body: ``count`` running devices, stopped afterwards (skips without sshd)."""
    import pytest

    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        pytest.skip(f"{SSHD} or ssh-keygen not installed (run: bash scripts/system_deps.sh)")
    pool = DevicePoolFixture(tmp_path / "pool", count)
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()


def _measure_main(argv: List[str]) -> int:
    """Measure each model through the pooled profile; one JSON line per measurement."""
    from nni_gensynth.hardware import measure

    profile, models = argv[0], argv[1:]
    for model in models:
        result = measure(model, profile, use_cache=False)
        print(json.dumps({"model": model, "device": result.measured_on, "pool": result.spec.device_id,
                          "latency_ms": result.median_ms, "pid": os.getpid()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_measure_main(sys.argv[1:]))
