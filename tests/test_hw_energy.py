"""Energy readers against fixture sysfs trees, and the pure functions the ADB path reuses."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nni_gensynth.device import energy, system

# `vcgencmd pmic_read_adc` on a Raspberry Pi 5, in the tool's real layout (right-aligned names,
# current and voltage of a rail on different ADC channels, EXT5V and BATT with a voltage only).
PMIC_OUTPUT = """\
 3V7_WL_SW_A current(0)=0.05000000A
   3V3_SYS_A current(1)=0.10000000A
   1V8_SYS_A current(2)=0.20000000A
  DDR_VDD2_A current(3)=0.02000000A
  DDR_VDDQ_A current(4)=0.00000000A
   1V1_SYS_A current(5)=0.18000000A
    0V8_SW_A current(6)=0.30000000A
  VDD_CORE_A current(7)=2.00000000A
 3V7_WL_SW_V volt(8)=3.70000000V
   3V3_SYS_V volt(9)=3.30000000V
   1V8_SYS_V volt(10)=1.80000000V
  DDR_VDD2_V volt(11)=1.10000000V
  DDR_VDDQ_V volt(12)=0.60000000V
   1V1_SYS_V volt(13)=1.10000000V
    0V8_SW_V volt(14)=0.80000000V
  VDD_CORE_V volt(15)=0.90000000V
     EXT5V_V volt(24)=5.10000000V
      BATT_V volt(25)=0.00000000V
"""
PMIC_WATTS = 0.05 * 3.7 + 0.10 * 3.3 + 0.20 * 1.8 + 0.02 * 1.1 + 0.0 + 0.18 * 1.1 + 0.30 * 0.8 + 2.0 * 0.9


def put(root: Path, relative: str, value) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{value}\n")


# ---- pure functions ----------------------------------------------------------------------

def test_rapl_delta_handles_wraparound():
    assert energy.rapl_delta_uj(100, 350, 1000) == 250
    assert energy.rapl_delta_uj(900, 50, 1000) == 150
    with pytest.raises(ValueError):
        energy.rapl_delta_uj(900, 50, 0)


def test_battery_power_uses_magnitude_of_current():
    assert energy.battery_power_w(-500_000, 4_000_000) == pytest.approx(2.0)  # 0.5 A x 4 V
    assert energy.battery_power_w(500_000, 4_000_000) == pytest.approx(2.0)


def test_battery_energy_subtracts_idle_baseline():
    idle = [(250_000, 4_000_000)] * 5  # 1 W
    active = [(750_000, 4_000_000), (1_000_000, 4_000_000)]  # 3 W and 4 W: mean 3.5 W
    result = energy.battery_energy(active, idle, duration_s=2.0, inferences=100)
    assert result["source"] == "battery"
    assert result["idle_power_w"] == pytest.approx(1.0)
    assert result["power_w"] == pytest.approx(3.5)
    assert result["energy_mj"] == pytest.approx((3.5 - 1.0) * 2.0 / 100 * 1000)  # 50 mJ
    assert result["gross_energy_mj"] == pytest.approx(3.5 * 2.0 / 100 * 1000)
    with pytest.raises(ValueError):
        energy.battery_energy([], idle, 1.0, 10)


def test_parse_pmic_pairs_rails_by_name_and_skips_voltage_only():
    rails = energy.parse_pmic_adc(PMIC_OUTPUT)
    assert "EXT5V" not in rails and "BATT" not in rails
    assert rails["VDD_CORE"] == pytest.approx(1.8)
    assert sum(rails.values()) == pytest.approx(PMIC_WATTS)
    assert energy.parse_pmic_adc('error=1 error_msg="Command not registered"\n') == {}


def test_model_energy_is_active_power_times_cpu_time():
    result = energy.model_energy(cpu_seconds=2.0, duration_s=4.0, inferences=1000, active_power_w=1.5)
    assert result["source"] == "model"
    assert result["energy_mj"] == pytest.approx(1.5 * 2.0 / 1000 * 1000)
    assert result["power_w"] == pytest.approx(0.75)


# ---- readers on fixture trees ----------------------------------------------------------------

def test_rapl_reader_sums_packages_and_survives_wraparound(tmp_path):
    put(tmp_path, "sys/class/powercap/intel-rapl:0/energy_uj", 999_000_000)
    put(tmp_path, "sys/class/powercap/intel-rapl:0/max_energy_range_uj", 1_000_000_000)
    put(tmp_path, "sys/class/powercap/intel-rapl:0:0/energy_uj", 5)  # a subzone (core): not added
    put(tmp_path, "sys/class/powercap/intel-rapl:1/energy_uj", 0)
    put(tmp_path, "sys/class/powercap/intel-rapl:1/max_energy_range_uj", 1_000_000_000)
    reader = energy.RaplReader(str(tmp_path))
    assert len(reader.zones) == 2
    assert reader.read_energy_j() == 0.0
    put(tmp_path, "sys/class/powercap/intel-rapl:0/energy_uj", 1_000_000)  # wrapped: +2 J
    put(tmp_path, "sys/class/powercap/intel-rapl:1/energy_uj", 3_000_000)  # +3 J
    assert reader.read_energy_j() == pytest.approx(5.0)


def test_rapl_missing_is_unavailable(tmp_path):
    with pytest.raises(energy.EnergySourceUnavailable, match="rapl"):
        energy.RaplReader(str(tmp_path))


def test_battery_meter_subtracts_idle_on_fixture_tree(tmp_path):
    put(tmp_path, "sys/class/power_supply/ac/type", "Mains")
    put(tmp_path, "sys/class/power_supply/ac/current_now", 9_000_000)
    put(tmp_path, "sys/class/power_supply/ac/voltage_now", 5_000_000)
    bat = "sys/class/power_supply/battery"
    put(tmp_path, f"{bat}/type", "Battery")
    put(tmp_path, f"{bat}/current_now", -300_000)
    put(tmp_path, f"{bat}/voltage_now", 4_000_000)  # idle: 1.2 W
    meter = energy.EnergyMeter("battery", {"idle_s": 0.1, "sample_interval_s": 0.02}, str(tmp_path))
    assert meter.source == "battery" and meter.reader.path.endswith("battery")
    meter.idle()
    put(tmp_path, f"{bat}/current_now", -800_000)  # running: 3.2 W
    meter.start()
    __import__("time").sleep(0.1)
    result = meter.stop(inferences=50)
    assert result["source"] == "battery"
    assert result["idle_power_w"] == pytest.approx(1.2)
    assert result["power_w"] == pytest.approx(3.2)
    assert result["energy_mj"] == pytest.approx(2.0 * result["duration_s"] / 50 * 1000)
    assert result["samples"] >= 2


def test_ina219_power_input_and_current_times_voltage(tmp_path):
    put(tmp_path, "sys/class/hwmon/hwmon0/name", "coretemp")
    put(tmp_path, "sys/class/hwmon/hwmon1/name", "ina219")
    put(tmp_path, "sys/class/hwmon/hwmon1/power1_input", 2_500_000)  # uW
    reader = energy.Ina219Reader(str(tmp_path))
    assert reader.path.endswith("hwmon1")
    assert reader.read_power_w() == pytest.approx(2.5)
    other = tmp_path / "other"
    put(other, "sys/class/hwmon/hwmon2/name", "ina219")
    put(other, "sys/class/hwmon/hwmon2/curr1_input", 600)  # mA
    put(other, "sys/class/hwmon/hwmon2/in1_input", 5000)  # mV
    assert energy.Ina219Reader(str(other), "sys/class/hwmon/hwmon2").read_power_w() == pytest.approx(3.0)
    with pytest.raises(energy.EnergySourceUnavailable, match="ina219"):
        energy.Ina219Reader(str(tmp_path / "empty"))


def test_pmic_reader_runs_the_command(tmp_path):
    fixture = tmp_path / "pmic.txt"
    fixture.write_text(PMIC_OUTPUT)
    command = [sys.executable, "-c", f"print(open({str(fixture)!r}).read())"]
    reader = energy.PmicReader(command)
    assert reader.read_power_w() == pytest.approx(PMIC_WATTS)
    with pytest.raises(energy.EnergySourceUnavailable, match="pmic"):
        energy.PmicReader([sys.executable, "-c", "print('error=1')"])


def test_auto_falls_back_to_model_and_prefers_rapl(tmp_path):
    assert energy.EnergyMeter("auto", {}, str(tmp_path / "nothing")).source in ("model", "pmic")
    put(tmp_path, "sys/class/powercap/intel-rapl:0/energy_uj", 10)
    put(tmp_path, "sys/class/powercap/intel-rapl:0/max_energy_range_uj", 100)
    assert energy.EnergyMeter("auto", {}, str(tmp_path)).source == "rapl"
    with pytest.raises(energy.EnergySourceUnavailable):
        energy.EnergyMeter("battery", {}, str(tmp_path))
    with pytest.raises(ValueError, match="energy-source"):
        energy.EnergyMeter("solar", {}, str(tmp_path))


# ---- thermal and affinity fixtures -----------------------------------------------------------

def test_thermal_zones_and_throttled_parse(tmp_path):
    put(tmp_path, "sys/class/thermal/thermal_zone0/temp", 45200)
    put(tmp_path, "sys/class/thermal/thermal_zone0/type", "cpu-thermal")
    put(tmp_path, "sys/class/thermal/thermal_zone1/temp", 51000)
    zones = system.thermal_zones(str(tmp_path))
    assert zones == {"thermal_zone0:cpu-thermal": 45.2, "thermal_zone1:unknown": 51.0}
    result = system.ThermalWatch(str(tmp_path)).start().stop()
    assert result["max_temp_c"] == 51.0
    assert system.parse_throttled("throttled=0x50005\n") == 0x50005
    with pytest.raises(ValueError):
        system.parse_throttled("nonsense")


def test_big_cores_from_cpufreq(tmp_path):
    for core, freq in enumerate([1_800_000, 1_800_000, 2_400_000, 2_400_000]):
        put(tmp_path, f"sys/devices/system/cpu/cpu{core}/cpufreq/cpuinfo_max_freq", freq)
    assert system.big_cores(str(tmp_path)) == [2, 3]


def _run_on_battery_fixture(root: Path, model: Path, energy_config: str) -> "tuple[int, dict]":
    out = subprocess.run(
        [sys.executable, "-m", "nni_gensynth.device", "measure", "--model", str(model), "--backend", "onnxruntime",
         "--threads", "1", "--warmup-min-time-s", "0", "--warmup-min-runs", "2", "--min-time-s", "0.1",
         "--min-runs", "5", "--energy-source", "battery", "--energy-config", energy_config,
         "--sysfs-root", str(root)], capture_output=True, text=True, timeout=120)
    return out.returncode, json.loads(out.stdout.strip().splitlines()[-1])


def test_device_runner_reports_fixture_battery(tmp_path, tiny_onnx):
    put(tmp_path, "sys/class/power_supply/battery/type", "Battery")
    put(tmp_path, "sys/class/power_supply/battery/current_now", 500_000)
    put(tmp_path, "sys/class/power_supply/battery/voltage_now", 3_800_000)
    put(tmp_path, "sys/class/thermal/thermal_zone0/temp", 40000)
    code, answer = _run_on_battery_fixture(tmp_path, tiny_onnx, '{"idle_s": 0}')
    assert code == 0 and answer["ok"], answer
    assert answer["energy"]["source"] == "battery"
    assert answer["energy"]["power_w"] == pytest.approx(1.9)
    assert answer["energy"]["energy_mj"] == pytest.approx(answer["energy"]["gross_energy_mj"])  # no baseline
    assert answer["energy"]["energy_mj"] > 0
    assert answer["emulated"] is False and answer["warnings"] == []
    assert answer["thermal"]["max_temp_c"] == 40.0


def test_device_runner_refuses_an_energy_of_zero(tmp_path, tiny_onnx):
    """A constant fixture draws during the run what it drew idle: the runner says the meter cannot
    resolve the model's energy instead of answering 0 mJ."""
    put(tmp_path, "sys/class/power_supply/battery/type", "Battery")
    put(tmp_path, "sys/class/power_supply/battery/current_now", 500_000)
    put(tmp_path, "sys/class/power_supply/battery/voltage_now", 3_800_000)
    code, answer = _run_on_battery_fixture(tmp_path, tiny_onnx, '{"idle_s": 0.05}')
    assert code == 1 and answer["ok"] is False
    assert "battery" in answer["error"] and "idle baseline" in answer["error"]


def test_model_energy_never_zero_when_the_cpu_clock_reads_zero():
    """qemu-user answers /proc/self/stat with zeros, and a coarse clock may not tick in a short run:
    the run then counts as one busy core for its wall time, and the result says so."""
    result = energy.model_energy(cpu_seconds=0.0, duration_s=2.0, inferences=100, active_power_w=1.0)
    assert result["energy_mj"] == pytest.approx(1.0 * 2.0 / 100 * 1000)
    assert result["basis"] == "wall" and "wall time" in result["note"]
    assert energy.model_energy(cpu_seconds=1.0, duration_s=2.0, inferences=100)["basis"] == "cpu"
    assert energy.check_positive(result) is result
    with pytest.raises(RuntimeError, match="must be > 0"):
        energy.check_positive({"energy_mj": 0.0, "source": "model"})
    with pytest.raises(RuntimeError, match="idle baseline"):
        energy.check_positive(energy.active_energy([2.0], [2.5], 1.0, 10, "pmic"))


def test_cpu_seconds_reads_the_process_clock():
    before = energy.cpu_seconds()
    sum(i * i for i in range(200_000))
    assert energy.cpu_seconds() > before


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    from hw_support import tiny_net
    from nni_gensynth.hardware.export import export_onnx

    return export_onnx(tiny_net(), (1, 3, 16, 16), directory=tmp_path_factory.mktemp("onnx"))


# ---- the device's small commands, through one long-lived shell -------------------------------

def test_command_shell_runs_commands_without_forking_the_runner(tmp_path):
    from nni_gensynth.device.commands import CommandShell

    shell = CommandShell()
    try:
        assert shell.run(["sh", "-c", "echo out; echo err >&2; exit 3"]) == (3, "out\nerr\n")
        assert shell.run(["cat"]) == (0, "")  # stdin is /dev/null: the shell's own input is not eaten
        assert shell.run(["printf", "no newline"]) == (0, "no newline")
        first = shell._proc.pid
        assert shell.run(["true"])[0] == 0 and shell._proc.pid == first  # one shell for every command
        with pytest.raises(TimeoutError):
            shell.run(["sleep", "5"], timeout_s=0.2)
        assert shell.run(["echo", "a b; $HOME"]) == (0, "a b; $HOME\n")  # words are quoted, a new shell runs it
        results = []
        threads = [__import__("threading").Thread(target=lambda i=i: results.append(shell.run(["echo", str(i)])))
                   for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [(0, f"{i}\n") for i in range(8)]
    finally:
        shell.close()
