"""The emulated Pi's pieces that need no emulator: docs/devices.md and the setup script say the same,
the vcgencmd stand-in prints the real tool's formats, the generated profiles load, the mirror is
the host's."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from nni_gensynth.device import energy, system
from nni_gensynth.hardware.profiles import load_profile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import emulated_pi_chroot  # noqa: E402
import emulated_pi_device  # noqa: E402
import emulated_pi_root  # noqa: E402


def doc_step_2_commands() -> list:
    """The commands of every sh block in docs/devices.md's step 2 of the Raspberry Pi part."""
    text = (REPO / "docs" / "devices.md").read_text()
    section = text.split("### 2. ", 1)[1].split("### 3. ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def test_the_setup_script_runs_every_command_of_the_doc():
    script_lines = {line.split("  #", 1)[0].strip() for line in emulated_pi_root.SETUP_SCRIPT.read_text().splitlines()}
    commands = doc_step_2_commands()
    assert len(commands) >= 9
    for command in commands:
        assert re.sub(r"^sudo ", "", command) in script_lines, f"docs/devices.md step 2 runs {command!r}; " \
                                                                 f"scripts/emulated_pi_setup.sh does not"


def vcgencmd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(emulated_pi_root.VCGENCMD_SCRIPT), *args], capture_output=True, text=True,
                          timeout=30)


def test_the_vcgencmd_stand_in_prints_the_real_formats():
    pmic = vcgencmd("pmic_read_adc")
    assert pmic.returncode == 0
    lines = pmic.stdout.splitlines()
    assert len(lines) == 26  # 12 currents, then 14 voltages (EXT5V and BATT without a current)
    assert all(re.fullmatch(r" *\S+_A current\(\d+\)=\d+\.\d{8}A", line) and len(line.split(" current")[0]) == 12
               for line in lines[:12])
    assert all(re.fullmatch(r" *\S+_V volt\(\d+\)=\d+\.\d{8}V", line) for line in lines[12:])
    assert lines[7].startswith("  VDD_CORE_A current(7)=") and lines[-2].startswith("     EXT5V_V volt(24)=")
    rails = energy.parse_pmic_adc(pmic.stdout)
    assert len(rails) == 12 and "EXT5V" not in rails and 0.5 < sum(rails.values()) < 15
    assert energy.PmicReader(["sh", str(emulated_pi_root.VCGENCMD_SCRIPT), "pmic_read_adc"]).read_power_w() > 0
    assert system.parse_throttled(vcgencmd("get_throttled").stdout) == 0
    assert re.fullmatch(r"temp=\d+\.\d'C\n", vcgencmd("measure_temp").stdout)
    unknown = vcgencmd("no_such_command")
    assert unknown.returncode == 255 and unknown.stdout == 'error=2 error_msg="Command not registered"\n'


def test_the_generated_profiles_load(tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("[127.0.0.1]:2222 ssh-ed25519 AAAA\n")
    written = emulated_pi_device.write_profiles(tmp_path, 2222, known_hosts, tmp_path)
    assert set(written) == {"emulated-pi-5", "emulated-pi-5-tflite-runtime"}
    litert, tflite = (load_profile(written[name]) for name in sorted(written))
    assert litert.transport.kind == "ssh" and litert.transport.host == "127.0.0.1" and litert.transport.port == 2222
    assert litert.transport.python.endswith("/gensynth-venv/bin/python")
    assert tflite.transport.python.endswith("/gensynth-tflite-venv/bin/python")
    assert litert.energy.source == "pmic" and litert.backend == "litert"
    assert "EMULATED" in litert.description


@pytest.mark.parametrize("text, mirror", [
    ("Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n", "http://mirror.example/debian"),
    ("deb [signed-by=/k.gpg] http://ftp.example/debian/ bookworm main\n", "http://ftp.example/debian"),
    ("deb http://security.debian.org/debian-security bookworm-security main\n", emulated_pi_root.DEFAULT_MIRROR),
])
def test_the_mirror_is_the_hosts(tmp_path, text, mirror):
    (tmp_path / "sources.list").write_text(text)
    assert emulated_pi_root.debian_mirror([tmp_path / "sources.list"]) == mirror


def test_commands_inside_the_root_get_a_private_namespace_and_a_clean_environment(tmp_path):
    argv = emulated_pi_chroot.in_root(tmp_path, ["/bin/true"], user="pi", env={"HOME": "/home/pi"}, hostname="pi5")
    assert argv[:5] == ["unshare", "--mount", "--propagation", "private", "--uts"]
    assert argv[argv.index("env", 6):][:3] == ["env", "-i", "HOME=/home/pi"]
    assert argv[-4:] == ["chroot", "--userspec=pi:pi", str(tmp_path), "/bin/true"]


def test_the_emulated_board_has_an_arm_cpuinfo():
    from nni_gensynth.device.emulation import cpuinfo_family

    text = emulated_pi_chroot.cpuinfo(2)
    assert cpuinfo_family(text) == "arm" and text.count("processor\t:") == 2 and "CPU part\t: 0xd0b" in text


def test_a_failing_build_step_says_which_and_why(tmp_path, monkeypatch):
    log = tmp_path / "build.log"
    with pytest.raises(emulated_pi_root.BuildError) as caught:
        emulated_pi_root._run(["sh", "-c", "echo fetching; echo 'E: no route to mirror' >&2; exit 100"],
                              "debootstrap first stage", log)
    message = str(caught.value)
    assert "step 'debootstrap first stage'" in message and "exited 100" in message
    assert "E: no route to mirror" in message and "E: no route to mirror" in log.read_text()
    monkeypatch.setattr(emulated_pi_root.os, "geteuid", lambda: 1000)
    monkeypatch.setenv(emulated_pi_root.CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(emulated_pi_root.BuildError, match="step 'prerequisites': .*needs root"):
        emulated_pi_root.build()
    assert emulated_pi_root.completed() is None
