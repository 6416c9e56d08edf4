"""Running commands inside the emulated Raspberry Pi's arm64 root: the namespace plumbing, shared by
the build (scripts/emulated_pi_root.py) and the running device (scripts/emulated_pi_device.py).

Every command runs in a private mount namespace where /proc, /dev and /sys are bind-mounted into
the root; they vanish when the last process in it ends, so nothing is left mounted whatever
happens. /proc/cpuinfo is replaced there by the emulated board's (``cpuinfo``), as qemu 8.1 and
later do by themselves: Debian bookworm's qemu 7.2 shows the host's x86 /proc/cpuinfo to arm64
programs, and LiteRT's XNNPACK delegate crashes (SIGSEGV) reading CPU features from it.
Not part of the root's build key: nothing here changes what the root holds.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

HOST_CA = "/etc/gensynth-host-ca.crt"      # inside the root: the host's CA bundle, for pip and apt
CPUINFO = "/etc/gensynth-emulated-cpuinfo"  # inside the root: what /proc/cpuinfo shows there
# One Cortex-A76 core of a Raspberry Pi 5 (BCM2712), with the features qemu's "max" CPU emulates.
_CORE = """processor\t: {n}
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x4
CPU part\t: 0xd0b
CPU revision\t: 1
"""


def cpuinfo(cores: int) -> str:
    """/proc/cpuinfo of the emulated board: ``cores`` Cortex-A76 cores (as many as the host runs
    its threads on, so it agrees with /sys/devices/system/cpu)."""
    return "\n".join(_CORE.format(n=n) for n in range(max(cores, 1)))


def write_cpuinfo(root: Path) -> None:
    """Write the emulated board's /proc/cpuinfo into the root (atomically: roots are shared)."""
    target = root / CPUINFO.lstrip("/")
    temporary = target.with_name(f"{target.name}.{os.getpid()}")
    temporary.write_text(cpuinfo(os.cpu_count() or 1))
    os.replace(temporary, target)


def in_root(root: Path, argv: Sequence[str], *, user: Optional[str] = None, env: Optional[Mapping[str, str]] = None,
            hostname: Optional[str] = None) -> List[str]:
    """The host command that runs ``argv`` inside ``root`` (chroot, as ``user``), in a private mount
    namespace where /proc, /dev and /sys are bind-mounted (and /proc/cpuinfo is the board's, once
    ``write_cpuinfo`` wrote it), and, with ``hostname``, a private UTS namespace with that host
    name. ``env`` is the whole environment (nothing of the host's leaks in)."""
    mounts = ('mount --bind /proc "$R/proc" && mount --rbind /dev "$R/dev" && mount --rbind /sys "$R/sys"'
              f' && {{ [ ! -f "$R{CPUINFO}" ] || mount --bind "$R{CPUINFO}" "$R/proc/cpuinfo"; }}'
              + (f' && echo {hostname} > /proc/sys/kernel/hostname' if hostname else "")
              + ' && exec "$@"')
    command = ["unshare", "--mount", "--propagation", "private"] + (["--uts"] if hostname else [])
    command += ["env", f"R={root}", "sh", "-c", mounts, "in_root"]
    command += ["env", "-i"] + [f"{k}={v}" for k, v in (env or {}).items()]
    command += ["chroot"] + ([f"--userspec={user}:{user}"] if user else []) + [str(root), *argv]
    return command


def root_env(home: str = "/root", user: str = "root") -> Dict[str, str]:
    """The environment of commands run inside the root: a plain login's, plus the host's proxy
    settings and its CA bundle (so pip and apt trust what the host trusts)."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": home, "USER": user,
           "LOGNAME": user, "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive",
           "PIP_CERT": HOST_CA, "SSL_CERT_FILE": HOST_CA, "REQUESTS_CA_BUNDLE": HOST_CA,
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_DEFAULT_TIMEOUT": "180", "PIP_PROGRESS_BAR": "off"}
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env
