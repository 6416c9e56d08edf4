"""Whether the device runner runs under an emulator (qemu-user and the like), and what shows it.

An emulated device is a plumbing check, never a figure: its timings are the emulator's (qemu-user
runs aarch64 code about 400x slower than the board), so every result from one says so.

Under qemu-user, ``platform.machine()`` is the guest's (aarch64) and qemu answers for the files
that describe this process (/proc/self/exe, /proc/self/stat, /proc/self/maps) as the guest would
see them. It does not answer for the rest of /proc, so three facts give it away, each on its own:

- ``/proc/self/task/<tid>/exe`` (qemu only rewrites /proc/self/exe and /proc/<pid>/exe) names
  the real executable, ``qemu-aarch64-static`` (or any ``qemu-*``);
- ``/proc/sys/kernel/arch`` is the kernel's architecture (x86_64) while this process runs another
  family's code (aarch64);
- ``/proc/cpuinfo`` describes a CPU of another family (an AMD or Intel CPU, not an ARM core).

qemu 8.1 and later emulate /proc/cpuinfo for arm guests (and so does the emulated Raspberry Pi of
scripts/emulated_pi.py, whose LiteRT crashes on an x86 one); the kernel's architecture and the real
executable still tell. An arm32 program on an arm64 kernel (armv7l on aarch64) is one family: not
emulated.
"""
from __future__ import annotations

import os
import platform
import re
import threading
from typing import Dict, List, Optional


def _read(path: str) -> Optional[str]:
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def arch_family(machine: str) -> str:
    """The instruction-set family of a machine name: "x86", "arm", "riscv", ... (else the name)."""
    name = machine.strip().lower()
    if name in ("x86_64", "amd64", "x86", "i86pc") or re.fullmatch(r"i[3-6]86", name):
        return "x86"
    if name.startswith(("aarch64", "arm")):
        return "arm"
    if name.startswith("riscv"):
        return "riscv"
    if name.startswith(("ppc", "powerpc")):
        return "power"
    return name


def cpuinfo_family(text: str) -> Optional[str]:
    """The family of the CPU /proc/cpuinfo describes, or None when it does not say."""
    if re.search(r"^vendor_id\s*:\s*(GenuineIntel|AuthenticAMD|HygonGenuine|CentaurHauls)", text, re.M):
        return "x86"
    if re.search(r"^CPU implementer\s*:", text, re.M):
        return "arm"
    if re.search(r"^isa\s*:\s*rv\d+", text, re.M):
        return "riscv"
    return None


def real_executable() -> Optional[str]:
    """The file the kernel runs as this process (an emulator's, under qemu-user), or None."""
    try:
        return os.readlink(f"/proc/self/task/{threading.get_native_id()}/exe")
    except (OSError, AttributeError):
        return None


def detect(sysfs_root: str = "/", machine: Optional[str] = None) -> Optional[Dict[str, str]]:
    """``{"emulator": ..., "evidence": ...}`` when this process is emulated, else None.

    ``sysfs_root`` re-roots /proc/sys/kernel/arch and /proc/cpuinfo (tests point it at a fixture
    tree); the real executable is always this process's own.
    """
    machine = machine or platform.machine()
    family = arch_family(machine)
    evidence: List[str] = []
    emulator = None
    exe = real_executable()
    if exe and os.path.basename(exe).startswith("qemu-"):
        emulator = os.path.basename(exe)
        evidence.append(f"this process is run by {exe}")
    kernel = (_read(os.path.join(sysfs_root, "proc/sys/kernel/arch")) or "").strip()
    if kernel and arch_family(kernel) != family:
        evidence.append(f"the kernel is {kernel} while this process runs {machine} code")
    cpu = cpuinfo_family(_read(os.path.join(sysfs_root, "proc/cpuinfo")) or "")
    if cpu is not None and cpu != family:
        evidence.append(f"/proc/cpuinfo describes a {cpu} CPU while this process runs {machine} code")
    if not evidence:
        return None
    return {"emulator": emulator or "unknown", "evidence": "; ".join(evidence)}


def warning(machine: str, emulation: Dict[str, str]) -> str:
    """The warning every result from an emulated device carries."""
    return (f"emulated device: {machine} code under {emulation.get('emulator', 'an emulator')} "
            f"({emulation.get('evidence', 'no detail')}); latency and energy are the emulator's, "
            f"not a real {machine} board's (qemu-user is about 400x slower): a plumbing check, never a figure")
