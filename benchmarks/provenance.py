"""Which code produced a result: the commit, and whether the product package had local edits."""
from __future__ import annotations

import hashlib
import os
import platform
import subprocess

from . import REPO_ROOT


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""


def provenance() -> dict:
    """HEAD, the files of nni_gensynth/ changed since HEAD, and a digest of those changes."""
    diff = _git("diff", "HEAD", "--", "nni_gensynth")
    return {
        "commit": _git("rev-parse", "HEAD").strip() or None,
        "nni_gensynth_uncommitted": sorted(line[3:] for line in _git("status", "--porcelain", "--", "nni_gensynth")
                                           .splitlines() if line.strip()),
        "nni_gensynth_diff_sha256": hashlib.sha256(diff.encode()).hexdigest()[:16] if diff else None,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
