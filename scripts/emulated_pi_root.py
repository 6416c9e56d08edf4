"""The emulated Raspberry Pi's disk: a Debian bookworm arm64 root (what 64-bit Raspberry Pi OS is
built on), set up with the commands docs/devices.md gives a Pi owner, built once and cached.

    ROOT_CACHE/<key>/root       the arm64 root (debootstrap), run under qemu-user via binfmt_misc
    ROOT_CACHE/<key>/id_ed25519 the login key of user pi (authorized in the root)
    ROOT_CACHE/<key>/build.log  every command's output
    ROOT_CACHE/<key>/complete   written last, with what was built: a root without it is never used
    ROOT_CACHE/<key>.failed     the step that failed last time, and why

``key`` hashes this file, the setup script (docs/devices.md step 2) and the vcgencmd stand-in:
change any of them and the next build makes a new root. ROOT_CACHE is $GENSYNTH_EMULATED_PI_DIR,
else ~/.cache/nni-gensynth/emulated-pi. Building needs root (debootstrap, chroot, mounts), the
packages qemu-user-static, debootstrap and binfmt-support (scripts/system_deps.sh installs them),
and the network to Debian's mirror and PyPI. Every command that runs inside the root does so in a
private mount namespace (``emulated_pi_chroot.in_root``): /proc, /dev and /sys are bind-mounted
there and vanish with it, so nothing stays mounted whatever happens.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

from emulated_pi_chroot import HOST_CA, in_root, root_env, write_cpuinfo

HERE = Path(__file__).resolve().parent
SETUP_SCRIPT = HERE / "emulated_pi_setup.sh"
VCGENCMD_SCRIPT = HERE / "emulated_pi_vcgencmd.sh"
CACHE_ENV = "GENSYNTH_EMULATED_PI_DIR"
SUITE = "bookworm"
ARCH = "arm64"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# What a fresh Raspberry Pi OS Lite has that the doc's steps do not install: Python 3 and an SSH server.
BASE_PACKAGES = ("python3", "openssh-server", "ca-certificates")
USER = "pi"
HOSTNAME = "emulated-pi5"
VENV_PYTHON = f"/home/{USER}/gensynth-venv/bin/python"
TFLITE_VENV_PYTHON = f"/home/{USER}/gensynth-tflite-venv/bin/python"
QEMU_BINFMT = "qemu-aarch64"
SSHD_DROP_IN = """\
# scripts/emulated_pi_root.py: the emulated Raspberry Pi takes key logins of user pi only, on
# loopback (the port is given on sshd's command line when it starts).
ListenAddress 127.0.0.1
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers pi
UsePAM no
"""


class BuildError(RuntimeError):
    """A build step failed; ``step`` names it and the message says why."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"emulated Pi build, step '{step}': {reason}")
        self.step = step
        self.reason = reason


def cache_root() -> Path:
    """Where built roots are kept."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "nni-gensynth" / "emulated-pi").expanduser()


def build_key() -> str:
    """The content hash of what a root is built from (this file and the scripts it installs)."""
    digest = hashlib.sha256(f"{SUITE} {ARCH} {BASE_PACKAGES}".encode())
    for path in (Path(__file__).resolve(), SETUP_SCRIPT, VCGENCMD_SCRIPT):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_dir() -> Path:
    return cache_root() / build_key()


def completed() -> Optional[Path]:
    """The build folder when a complete root exists for the current scripts, else None."""
    folder = build_dir()
    return folder if (folder / "complete").is_file() else None


def last_failure() -> Optional[str]:
    """Why the last build of the current scripts failed, if it did."""
    path = cache_root() / f"{build_key()}.failed"
    return path.read_text(errors="replace").strip() if path.is_file() else None


def cannot_build_reason() -> Optional[str]:
    """Why a root cannot be built on this machine (None when it can be tried)."""
    if os.geteuid() != 0:
        return "building the emulated Pi needs root (debootstrap, chroot, mounts, binfmt_misc)"
    missing = [tool for tool in ("debootstrap", "chroot", "unshare", "ssh-keygen", "qemu-aarch64-static")
               if shutil.which(tool) is None]
    if missing:
        return (f"missing {', '.join(missing)} (install: apt-get install qemu-user-static debootstrap "
                f"binfmt-support openssh-client, or run bash scripts/system_deps.sh)")
    return None


# ---------------------------------------------------------------------------------------------
# Host set-up: binfmt_misc and the Debian mirror


def ensure_binfmt() -> None:
    """qemu-aarch64 registered with binfmt_misc with the F (fix-binary) flag, so arm64 programs run
    inside a chroot that has no qemu of its own; mounts binfmt_misc and registers when needed."""
    mount_point = Path("/proc/sys/fs/binfmt_misc")
    entry = mount_point / QEMU_BINFMT
    if not (mount_point / "register").exists():
        _run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(mount_point)], "binfmt_misc", log=None)
    if not entry.exists():
        if shutil.which("update-binfmts") is None:
            raise BuildError("binfmt_misc", f"{entry} is not registered and update-binfmts is missing "
                                            f"(apt-get install binfmt-support qemu-user-static)")
        _run(["update-binfmts", "--enable", QEMU_BINFMT], "binfmt_misc", log=None)
    text = entry.read_text() if entry.exists() else ""
    flags = re.search(r"^flags:\s*(\S*)", text, re.M)
    if "enabled" not in text or not flags or "F" not in flags.group(1):
        raise BuildError("binfmt_misc", f"{entry} must be enabled with the F flag (fix-binary), got: {text.strip()!r}")


def debian_mirror(sources: Sequence[Path] = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))) -> str:
    """The Debian archive this host's apt uses (deb822 .sources or one-line entries), else deb.debian.org."""
    files: List[Path] = []
    for path in sources:
        files += sorted(path.glob("*")) if path.is_dir() else [path]
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for match in re.finditer(r"^\s*(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text, re.M):
            uri = match.group(1).rstrip("/")
            if re.search(r"/debian$", uri) and "security" not in uri:
                return uri
    return DEFAULT_MIRROR


# ---------------------------------------------------------------------------------------------
# The build


def _run(argv: Sequence[str], step: str, log: Optional[Path], timeout: float = 1800) -> None:
    """Run ``argv``; its output goes to ``log``; BuildError naming ``step`` (with the output's
    tail) when it fails."""
    handle = open(log, "ab") if log is not None else subprocess.PIPE
    try:
        if log is not None:
            handle.write(f"\n$ {' '.join(argv)}\n".encode())
            handle.flush()
        done = subprocess.run(list(argv), stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BuildError(step, f"{argv[0]} did not finish within {timeout:.0f} s (log: {log})") from None
    except OSError as exc:
        raise BuildError(step, f"cannot run {argv[0]}: {exc}") from None
    finally:
        if log is not None:
            handle.close()
    if done.returncode != 0:
        output = log.read_text(errors="replace") if log is not None else (done.stdout or b"").decode(errors="replace")
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise BuildError(step, f"{_shown(argv)} exited {done.returncode}; last output:\n{tail}")


def _shown(argv: Sequence[str]) -> str:
    """A command as a reader wants it named: what runs inside the root, not the namespace plumbing."""
    argv = list(argv)
    if "chroot" in argv:
        inner = argv[argv.index("chroot") + 1:]
        inner = inner[1:] if inner and inner[0].startswith("--userspec") else inner
        return f"{' '.join(inner[1:])} (inside the root)"
    return " ".join(argv[:4]) + (" ..." if len(argv) > 4 else "")


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


def _remove(folder: Path) -> None:
    """Delete a build folder, never through a mount point (``in_root`` mounts nothing outside its
    namespace, but a root bind-mounted by hand must not take /proc or /dev with it)."""
    mounts = Path("/proc/self/mountinfo").read_text().split("\n")
    inside = [line for line in mounts if f" {folder}/" in line]
    if inside:
        raise BuildError("clean", f"{folder} has mounts inside it; unmount them first: {inside[0]}")
    subprocess.run(["rm", "-rf", "--one-file-system", str(folder)], check=False)


def _configure(folder: Path, root: Path, log: Path) -> None:
    """What the Pi owner gets from Raspberry Pi Imager: a user with an SSH key, the SSH server
    on, a host name; plus the vcgencmd stand-in and what builds need here (DNS, CA bundle)."""
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    shutil.copy(_host_ca_bundle(), root / HOST_CA.lstrip("/"))
    write_cpuinfo(root)
    (root / "etc" / "hostname").write_text(HOSTNAME + "\n")
    policy = root / "usr" / "sbin" / "policy-rc.d"   # no service starts inside the root during apt
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    vcgencmd = root / "usr" / "bin" / "vcgencmd"
    shutil.copy(VCGENCMD_SCRIPT, vcgencmd)
    vcgencmd.chmod(0o755)
    (root / "etc" / "ssh" / "sshd_config.d" / "gensynth-emulated-pi.conf").write_text(SSHD_DROP_IN)
    (root / "run" / "sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # sshd's privilege separation
    _run(in_root(root, ["useradd", "--create-home", "--shell", "/bin/bash", "--uid", "1000", USER],
                 env=root_env()), "configure the image", log)
    _run(in_root(root, ["usermod", "--password", "*", USER], env=root_env()), "configure the image", log)
    key = folder / "id_ed25519"
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nni-gensynth emulated pi", "-f", str(key)],
         "configure the image", log)
    uid, gid = _uid_gid(root, USER)
    ssh_dir = root / "home" / USER / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    authorized = ssh_dir / "authorized_keys"
    authorized.write_text(Path(f"{key}.pub").read_text())
    authorized.chmod(0o600)
    for path in (ssh_dir, authorized):
        os.chown(path, uid, gid)


def _host_ca_bundle() -> str:
    for candidate in (os.environ.get("SSL_CERT_FILE"), os.environ.get("PIP_CERT"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise BuildError("configure the image", "no CA certificate bundle on this host (/etc/ssl/certs/ca-certificates.crt)")


def _uid_gid(root: Path, user: str) -> "tuple[int, int]":
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise BuildError("configure the image", f"user {user} is not in {root}/etc/passwd")


def _versions(root: Path, log: Path) -> Dict[str, str]:
    """What the two venvs run, read from their package metadata inside the root."""
    found = {}
    for python, dist in ((VENV_PYTHON, "ai-edge-litert"), (TFLITE_VENV_PYTHON, "tflite-runtime")):
        script = f"from importlib import metadata as m; print(m.version({dist!r}), m.version('numpy'))"
        out = subprocess.run(in_root(root, [python, "-c", script], user=USER, env=root_env(f"/home/{USER}", USER)),
                             capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise BuildError("check", f"{python} cannot import {dist}: {out.stderr.strip()[-500:]}")
        version, numpy = out.stdout.split()
        found[dist] = version
        found[f"numpy ({dist} venv)"] = numpy
    return found


def build(log_to: Optional[Path] = None, progress=print) -> Path:
    """Build the root for the current scripts (or return the cached one); the build folder.

    Raises BuildError naming the step that failed (also written to ``<key>.failed``)."""
    reason = cannot_build_reason()
    if reason:
        raise BuildError("prerequisites", reason)
    folder = build_dir()
    with _lock(cache_root() / f"{folder.name}.lock"):
        if (folder / "complete").is_file():
            return folder
        failed = cache_root() / f"{folder.name}.failed"
        try:
            _build(folder, log_to or folder / "build.log", progress)
        except BuildError as exc:
            failed.write_text(f"{exc} (at {time.strftime('%Y-%m-%d %H:%M:%S')}; log: {log_to or folder / 'build.log'})\n")
            raise
        failed.unlink(missing_ok=True)
        _prune_others(folder, progress)
        return folder


def _build(folder: Path, log: Path, progress) -> None:
    if folder.exists():
        progress(f"[emulated-pi] removing the unfinished build {folder}")
        _remove(folder)
    root = folder / "root"
    root.mkdir(parents=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def step(name: str, *commands: Sequence[str], timeout: float = 1800) -> None:
        t0 = time.monotonic()
        progress(f"[emulated-pi] {name} ...")
        for argv in commands:
            _run(argv, name, log, timeout)
        progress(f"[emulated-pi] {name}: {time.monotonic() - t0:.0f} s")

    ensure_binfmt()
    mirror = debian_mirror()
    step(f"debootstrap first stage ({SUITE} {ARCH} from {mirror})",
         ["debootstrap", f"--arch={ARCH}", "--foreign", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
          SUITE, str(root), mirror])
    step("debootstrap second stage (under qemu-aarch64)", in_root(root, ["/debootstrap/debootstrap", "--second-stage"],
                                                                  env=root_env()))
    t0 = time.monotonic()
    progress("[emulated-pi] configure the image (user pi, SSH key, vcgencmd stand-in) ...")
    _configure(folder, root, log)
    progress(f"[emulated-pi] configure the image: {time.monotonic() - t0:.0f} s")
    setup = root / "opt" / "gensynth" / SETUP_SCRIPT.name
    setup.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(SETUP_SCRIPT, setup)
    inside = f"/opt/gensynth/{SETUP_SCRIPT.name}"
    step("docs/devices.md step 2, as root (apt)",
         in_root(root, ["/bin/sh", inside, "system"], env=dict(root_env(), USER=USER)))
    step("docs/devices.md step 2, as pi (venvs, pip)",
         in_root(root, ["/bin/sh", inside, "user"], user=USER, env=root_env(f"/home/{USER}", USER)))
    step("check sshd's configuration", in_root(root, ["/usr/sbin/sshd", "-t"], env=root_env()))
    versions = _versions(root, log)
    record = {"key": folder.name, "suite": SUITE, "arch": ARCH, "mirror": mirror, "built": time.strftime("%Y-%m-%d %H:%M:%S"),
              "build_s": round(time.monotonic() - started), "versions": versions}
    (folder / "complete").write_text(json.dumps(record, indent=1) + "\n")
    progress(f"[emulated-pi] built {folder} in {record['build_s']} s: {versions}")


def _prune_others(keep: Path, progress) -> None:
    """Remove roots built from older scripts (about 700 MB each)."""
    for other in cache_root().iterdir():
        if other.is_dir() and other != keep and re.fullmatch(r"[0-9a-f]{16}", other.name):
            try:
                _remove(other)
                progress(f"[emulated-pi] removed the old root {other}")
            except BuildError as exc:
                progress(f"[emulated-pi] kept {other}: {exc}")


if __name__ == "__main__":  # pragma: no cover - scripts/emulated_pi.py is the command line
    sys.exit("run: python scripts/emulated_pi.py build")
