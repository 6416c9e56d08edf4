"""The device runner knows when it runs under an emulator, and the host carries that to every figure.

Fixture trees stand in for /proc here; the emulated Raspberry Pi itself (tests/test_emulated_pi.py)
checks the same on real qemu-user."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nni_gensynth.device import emulation
from nni_gensynth.hardware.answer import AnswerError, validate_answer
from nni_gensynth.hardware.measurement import Measurement, MeasurementSpec

X86_CPUINFO = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel name\t: AMD EPYC\n"
ARM_CPUINFO = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n"


def proc_tree(root: Path, kernel_arch: str, cpuinfo: str) -> str:
    (root / "proc" / "sys" / "kernel").mkdir(parents=True)
    (root / "proc" / "sys" / "kernel" / "arch").write_text(kernel_arch + "\n")
    (root / "proc" / "cpuinfo").write_text(cpuinfo)
    return str(root)


def test_arch_families():
    assert emulation.arch_family("x86_64") == emulation.arch_family("i686") == "x86"
    assert emulation.arch_family("aarch64") == emulation.arch_family("armv7l") == "arm"
    assert emulation.cpuinfo_family(X86_CPUINFO) == "x86"
    assert emulation.cpuinfo_family(ARM_CPUINFO) == "arm"
    assert emulation.cpuinfo_family("") is None


def test_qemu_user_on_an_x86_kernel_is_emulated(tmp_path):
    found = emulation.detect(proc_tree(tmp_path, "x86_64", X86_CPUINFO), machine="aarch64")
    assert found is not None
    assert "the kernel is x86_64" in found["evidence"] and "x86 CPU" in found["evidence"]
    assert "not a real aarch64 board's" in emulation.warning("aarch64", found)


def test_a_real_board_and_a_32_bit_userland_are_not_emulated(tmp_path):
    assert emulation.detect(proc_tree(tmp_path / "pi", "aarch64", ARM_CPUINFO), machine="aarch64") is None
    assert emulation.detect(proc_tree(tmp_path / "pi32", "aarch64", ARM_CPUINFO), machine="armv7l") is None
    assert emulation.detect(str(tmp_path / "nothing"), machine="aarch64") is None  # nothing readable: no evidence


def test_device_info_names_the_cpu_model_so_results_from_different_machines_are_told_apart(tmp_path):
    from nni_gensynth.device.system import cpu_model

    assert cpu_model(proc_tree(tmp_path / "x86", "x86_64", X86_CPUINFO)) == "AMD EPYC"
    pi = ARM_CPUINFO + "Hardware\t: BCM2835\nModel\t: Raspberry Pi 4 Model B Rev 1.4\n"
    assert cpu_model(proc_tree(tmp_path / "pi", "aarch64", pi)) == "Raspberry Pi 4 Model B Rev 1.4"
    assert cpu_model(proc_tree(tmp_path / "bare", "aarch64", ARM_CPUINFO)) is None
    assert cpu_model(str(tmp_path / "nothing")) is None


def test_this_host_is_not_emulated():
    out = subprocess.run([sys.executable, "-m", "nni_gensynth.device", "info"], capture_output=True, text=True,
                         timeout=60)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["ok"] and info["emulated"] is False and "emulation" not in info


def answer(**overrides) -> dict:
    data = {"ok": True, "samples_ms": [60.0, 61.0, 62.0], "backend": "litert", "runtime": "ai_edge_litert 2.0",
            "peak_mem_mb": 1.0, "energy": {"energy_mj": 3.0, "source": "pmic"},
            "device": {"machine": "aarch64", "emulated": True,
                       "emulation": {"emulator": "qemu-aarch64-static", "evidence": "the kernel is x86_64"}},
            "emulated": True, "warnings": ["emulated device: ..."]}
    data.update(overrides)
    return data


def spec() -> MeasurementSpec:
    return MeasurementSpec(arch_hash="a" * 16, profile="emulated-pi-5", profile_fingerprint="f", backend="litert",
                           runtime="ai_edge_litert 2.0", threads=1, device_id="ssh:pi@127.0.0.1:2222")


def test_emulated_answer_becomes_a_labelled_measurement():
    checked = validate_answer(answer())
    assert checked.emulated is True
    measurement = Measurement.from_runner(checked, spec(), 0.05)
    assert measurement.metrics()["emulated"] is True
    assert any("emulated device (aarch64 under qemu-aarch64-static)" in w for w in measurement.warnings)
    again = Measurement.from_json(measurement.to_json())
    assert again.emulated is True and again == measurement
    assert "EMULATED" in repr(again)


def test_native_measurements_do_not_report_emulated():
    measurement = Measurement.from_runner(validate_answer(answer(emulated=False, warnings=[])), spec(), 0.05)
    assert "emulated" not in measurement.metrics()
    assert not any("emulated" in w for w in measurement.warnings)
    stored = json.loads(measurement.to_json())
    del stored["emulated"]  # a cache row written before the field existed
    assert Measurement.from_dict(stored).emulated is False


@pytest.mark.parametrize("field, value", [("emulated", "yes"), ("emulated", 1), ("warnings", "one"),
                                          ("warnings", [1]), ("warnings", ["x" * 100_000])])
def test_bad_emulation_fields_are_named(field, value):
    with pytest.raises(AnswerError) as caught:
        validate_answer(answer(**{field: value}))
    assert caught.value.field.split("[")[0].split(".")[0] == field


def test_the_report_marks_trials_measured_on_an_emulated_device():
    from nni_gensynth.results.analysis import summarize
    from nni_gensynth.results.html import render_index
    from nni_gensynth.results.model import ExperimentRecord, TrialRecord

    figures = {"default": 0.9, "accuracy": 0.9, "latency_ms": 12.0, "energy_source": "pmic"}
    trials = [TrialRecord("emu", "SUCCEEDED", 0, {"w": 8}, dict(figures, emulated=True)),
              TrialRecord("real", "SUCCEEDED", 1, {"w": 16}, dict(figures))]
    record = ExperimentRecord("emulated", "sqlite", None, {"tuner": {"name": "GenSynth"}}, trials)
    page = render_index(record, summarize(record))
    assert page.count('<span class="emulated">EMULATED</span>') == 1
    assert "EMULATED: 1 trial(s) measured on an emulated device (qemu-user)" in page
    plain = ExperimentRecord("plain", "sqlite", None, {"tuner": {"name": "GenSynth"}}, trials[1:])
    assert "EMULATED" not in render_index(plain, summarize(plain))
