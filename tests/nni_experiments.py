"""Running real NNI experiments from tests: free port, private working directory, cleanup."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

import yaml

BIN = Path(sys.executable).parent
NNICTL = str(BIN / "nnictl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni/check-status", timeout=5) as r:
        return json.load(r)


def rest(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni/{path}", timeout=5) as r:
        return json.load(r)


def _env() -> dict:
    """The environment with this interpreter's bin folder first on PATH (trials use it)."""
    return dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}")


class Experiment:
    """`nnictl create` on a config dict; waits for an end state; always stopped on exit."""

    def __init__(self, config: dict, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        config = dict(config, experimentWorkingDirectory=str(workdir / "nni"))
        self.config_path = workdir / "config.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.id: Optional[str] = None

    def __enter__(self) -> "Experiment":
        out = subprocess.run([NNICTL, "create", "--config", str(self.config_path), "--port", str(self.port)],
                             capture_output=True, text=True, timeout=120, env=_env())
        if out.returncode != 0:
            raise RuntimeError(f"nnictl create failed: {out.stdout}\n{out.stderr}")
        self.id = rest(self.port, "experiment")["id"]
        return self

    def wait(self, until: tuple = ("DONE", "ERROR", "STOPPED"), timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = status(self.port)
            if st["status"] in until:
                return st
            time.sleep(1)
        raise TimeoutError(f"experiment {self.id} still {status(self.port)} after {timeout} s")

    def log(self, name: str) -> str:
        return (self.workdir / "nni" / self.id / "log" / name).read_text(errors="replace")

    @property
    def directory(self) -> Path:
        return self.workdir / "nni" / self.id

    def stop(self) -> None:
        subprocess.run([NNICTL, "stop", "--port", str(self.port)], capture_output=True, timeout=60)

    def resume(self) -> None:
        """`nnictl resume` of this (stopped) experiment on a fresh port."""
        self.port = free_port()
        out = subprocess.run([NNICTL, "resume", self.id, "--port", str(self.port),
                              "--experiment_dir", str(self.directory.parent)],
                             capture_output=True, text=True, timeout=120, env=_env())
        if out.returncode != 0:
            raise RuntimeError(f"nnictl resume failed: {out.stdout}\n{out.stderr}")

    def __exit__(self, *exc: Any) -> None:
        self.stop()
