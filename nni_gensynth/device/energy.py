"""Energy per inference, from the best source the device offers; every result names its source.

Sources ("source" in the result):

- ``rapl``: Intel/AMD RAPL package counters, /sys/class/powercap/intel-rapl:N/energy_uj (microjoules,
  wrapping at max_energy_range_uj).
- ``battery``: a battery's current_now (uA) x voltage_now (uV) under /sys/class/power_supply,
  sampled during the sustained timed run (Android, laptops).
- ``pmic``: the Raspberry Pi 5 PMIC, ``vcgencmd pmic_read_adc``: V x A summed over every rail that
  reports both (EXT5V reports a voltage only, so the 5 V input is not double-counted).
- ``ina219``: an INA219 (or INA2xx) power monitor through Linux hwmon: power1_input (uW), or
  curr1_input (mA) x in1_input (bus voltage, mV).
- ``model``: no meter: active power per busy core x CPU-seconds the runner used (the process CPU
  clock; a clock that reads 0 counts the run's wall time as one busy core, and says so).
  The default, ``DEFAULT_ACTIVE_POWER_W`` = 0.925 W per busy core, is the Raspberry Pi 4 figure
  measured by RasPi.TV ("How much power does Pi4B use?", 2019: 2.7 W idle, 6.4 W with
  ``stress --cpu 4``; (6.4 - 2.7) / 4 = 0.925 W). Set ``active_power_w`` in the hardware profile
  for any other CPU (e.g. its TDP divided by its cores).

Measured sources subtract an idle baseline taken before the model is loaded (``idle_s``, default
1 s): ``energy_mj`` = (mean power during the timed run - idle power) x run time / inferences, so
it is the energy the inferences add. The gross figures are kept next to it. The runner never
answers with an energy of 0 or less (``check_positive``): a run that drew no more than idle is an
error that says so.

The pure functions (``rapl_delta_uj``, ``battery_power_w``, ``battery_energy``,
``active_energy``, ``parse_pmic_adc``, ``ina219_power_w``, ``model_energy``) are also used on the
host, on values read over adb.
"""
from __future__ import annotations

import glob
import math
import os
import re
import shutil
import subprocess
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from . import commands
from .protocol import ENERGY_SOURCES as SOURCES
from .system import PeriodicSampler, read_int, read_text, sysfs_path

DEFAULT_ACTIVE_POWER_W = 0.925
DEFAULT_IDLE_S = 1.0
DEFAULT_SAMPLE_INTERVAL_S = {"battery": 0.1, "ina219": 0.05, "pmic": 0.25}


class EnergySourceUnavailable(RuntimeError):
    """The requested energy source does not exist or cannot be read on this device."""


# ---------------------------------------------------------------------------------------------
# Pure functions


def rapl_delta_uj(start_uj: int, end_uj: int, max_range_uj: int) -> int:
    """Energy between two RAPL counter readings, allowing for one wraparound at max_range_uj."""
    if end_uj >= start_uj:
        return end_uj - start_uj
    if max_range_uj <= 0:
        raise ValueError("RAPL counter went backwards and max_energy_range_uj is unknown")
    return max_range_uj - start_uj + end_uj


def battery_power_w(current_ua: float, voltage_uv: float) -> float:
    """Battery power in W from power_supply current_now (uA) and voltage_now (uV).

    The sign of current_now differs between vendors (discharge is negative on some), so its
    magnitude is used.
    """
    return abs(float(current_ua)) * float(voltage_uv) / 1e12


def active_energy(
    active_power_w: Sequence[float],
    idle_power_w: Sequence[float],
    duration_s: float,
    inferences: int,
    source: str,
) -> Dict[str, Any]:
    """Energy per inference from power samples over a run and over an idle baseline.

    energy_mj = max(mean(active) - mean(idle), 0) x duration_s / inferences x 1000.
    """
    if not active_power_w:
        raise ValueError(f"{source}: no power samples were taken during the run")
    if inferences <= 0 or duration_s <= 0:
        raise ValueError("inferences and duration_s must be > 0")
    power = sum(active_power_w) / len(active_power_w)
    idle = sum(idle_power_w) / len(idle_power_w) if idle_power_w else 0.0
    net = max(power - idle, 0.0)
    return {
        "energy_mj": net * duration_s / inferences * 1000.0,
        "gross_energy_mj": power * duration_s / inferences * 1000.0,
        "source": source,
        "power_w": power,
        "idle_power_w": idle,
        "net_power_w": net,
        "duration_s": duration_s,
        "inferences": inferences,
        "samples": len(active_power_w),
        "idle_samples": len(idle_power_w),
    }


def battery_energy(
    active: Sequence[Tuple[float, float]],
    idle: Sequence[Tuple[float, float]],
    duration_s: float,
    inferences: int,
) -> Dict[str, Any]:
    """Energy per inference from (current_now uA, voltage_now uV) pairs sampled during the run
    and during an idle baseline (source "battery")."""
    return active_energy(
        [battery_power_w(c, v) for c, v in active],
        [battery_power_w(c, v) for c, v in idle],
        duration_s,
        inferences,
        "battery",
    )


_PMIC_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=([-+0-9.eE]+|nan)([AV])\s*$")


def parse_pmic_adc(text: str) -> Dict[str, float]:
    """Per-rail power in W from ``vcgencmd pmic_read_adc`` output.

    Lines look like ``  VDD_CORE_A current(7)=1.08053000A`` and ``  VDD_CORE_V volt(15)=0.72178200V``;
    the bracketed ADC channels of a rail's current and voltage differ, so rails pair by name. Rails
    with only a voltage (EXT5V, BATT) are left out.
    """
    amps: Dict[str, float] = {}
    volts: Dict[str, float] = {}
    for line in text.splitlines():
        match = _PMIC_LINE.match(line)
        if not match:
            continue
        rail, kind, value, unit = match.groups()
        if kind != unit:
            continue
        number = float(value)
        if number != number:  # nan
            continue
        (amps if kind == "A" else volts)[rail] = number
    return {rail: amps[rail] * volts[rail] for rail in sorted(set(amps) & set(volts))}


def ina219_power_w(hwmon_dir: str) -> float:
    """Power in W from an INA2xx hwmon directory: power1_input (uW), else curr1_input (mA) x
    in1_input (bus voltage, mV)."""
    power_uw = read_int(os.path.join(hwmon_dir, "power1_input"))
    if power_uw is not None:
        return power_uw / 1e6
    current_ma = read_int(os.path.join(hwmon_dir, "curr1_input"))
    bus_mv = read_int(os.path.join(hwmon_dir, "in1_input"))
    if current_ma is None or bus_mv is None:
        raise EnergySourceUnavailable(
            f"ina219: {hwmon_dir} has neither power1_input nor curr1_input and in1_input")
    return abs(current_ma) * bus_mv / 1e6


def model_energy(cpu_seconds: float, duration_s: float, inferences: int,
                 active_power_w: float = DEFAULT_ACTIVE_POWER_W) -> Dict[str, Any]:
    """Modelled energy per inference: active power per busy core x CPU-seconds / inferences.

    A CPU time of 0 over a run that took time is a clock that did not tick (or an emulator that
    hides it), not a free inference: the run then counts as one core busy for its wall time
    (``basis: "wall"``, with a ``note`` saying so) instead of giving 0 mJ.
    """
    if inferences <= 0 or duration_s <= 0:
        raise ValueError("inferences and duration_s must be > 0")
    result: Dict[str, Any] = {"source": "model", "basis": "cpu"}
    busy_s = cpu_seconds
    if not cpu_seconds > 0:
        busy_s = duration_s
        result.update(basis="wall", note=f"CPU time read {cpu_seconds:g} s over a {duration_s:.3g} s run; "
                                         f"counted as one busy core for the run's wall time")
    energy_j = active_power_w * busy_s
    result.update({
        "energy_mj": energy_j / inferences * 1000.0,
        "power_w": energy_j / duration_s,
        "active_power_w_per_core": active_power_w,
        "cpu_s": cpu_seconds,
        "duration_s": duration_s,
        "inferences": inferences,
    })
    return result


def check_positive(result: Dict[str, Any]) -> Dict[str, Any]:
    """``result`` when its ``energy_mj`` is a positive finite number; otherwise a RuntimeError that
    says why (a 0 or negative energy is a wrong figure, never a measurement)."""
    value = result.get("energy_mj")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return result
    source = result.get("source", "?")
    if "idle_power_w" in result:
        raise RuntimeError(
            f"energy source {source}: the timed run drew {result.get('power_w', float('nan')):.4g} W, no more than "
            f"the idle baseline ({result['idle_power_w']:.4g} W), so this model's energy is below what the meter "
            f"resolves over {result.get('duration_s', float('nan')):.3g} s; lengthen repeat.min_time_s, or use "
            f"energy source model")
    raise RuntimeError(f"energy source {source} gave {value!r} mJ per inference; an energy must be > 0")


# ---------------------------------------------------------------------------------------------
# Readers


class RaplReader:
    """Cumulative package energy (J) from the top-level RAPL zones, wraparound handled."""

    kind = "counter"
    name = "rapl"

    def __init__(self, sysfs_root: str = "/") -> None:
        pattern = sysfs_path(sysfs_root, "sys/class/powercap/intel-rapl:*")
        self.zones = [z for z in sorted(glob.glob(pattern)) if re.search(r"intel-rapl:\d+$", z)]
        if not self.zones:
            raise EnergySourceUnavailable(f"rapl: no {pattern}")
        self._ranges = [read_int(os.path.join(z, "max_energy_range_uj")) or 0 for z in self.zones]
        self._last = self._raw()
        self._total_uj = 0

    def _raw(self) -> List[int]:
        values = []
        for zone in self.zones:
            value = read_int(os.path.join(zone, "energy_uj"))
            if value is None:
                raise EnergySourceUnavailable(f"rapl: cannot read {zone}/energy_uj (needs root on recent kernels)")
            values.append(value)
        return values

    def read_energy_j(self) -> float:
        now = self._raw()
        self._total_uj += sum(rapl_delta_uj(a, b, r) for a, b, r in zip(self._last, now, self._ranges))
        self._last = now
        return self._total_uj / 1e6


class BatteryReader:
    """Instantaneous battery power (W) from /sys/class/power_supply/<battery>."""

    kind = "power"
    name = "battery"

    def __init__(self, sysfs_root: str = "/", supply: Optional[str] = None) -> None:
        base = sysfs_path(sysfs_root, "sys/class/power_supply")
        candidates = [os.path.join(base, supply)] if supply else sorted(glob.glob(os.path.join(base, "*")))
        for path in candidates:
            kind = read_text(os.path.join(path, "type"))
            if (supply or kind == "Battery") and read_int(os.path.join(path, "current_now")) is not None \
                    and read_int(os.path.join(path, "voltage_now")) is not None:
                self.path = path
                break
        else:
            raise EnergySourceUnavailable(f"battery: no battery with current_now and voltage_now under {base}")

    def read_raw(self) -> Tuple[int, int]:
        current = read_int(os.path.join(self.path, "current_now"))
        voltage = read_int(os.path.join(self.path, "voltage_now"))
        if current is None or voltage is None:
            raise EnergySourceUnavailable(f"battery: {self.path} stopped answering")
        return current, voltage

    def read_power_w(self) -> float:
        return battery_power_w(*self.read_raw())


class PmicReader:
    """Instantaneous board power (W) from ``vcgencmd pmic_read_adc`` (Raspberry Pi 5)."""

    kind = "power"
    name = "pmic"

    def __init__(self, command: Optional[Sequence[str]] = None) -> None:
        self.command = list(command or ["vcgencmd", "pmic_read_adc"])
        if shutil.which(self.command[0]) is None:
            raise EnergySourceUnavailable(f"pmic: {self.command[0]} not found (Raspberry Pi 5 only)")
        self.read_power_w()  # fails early on a Pi without the PMIC ADC

    def read_power_w(self) -> float:
        try:
            code, output = commands.run(self.command, timeout_s=5)
        except (OSError, TimeoutError, subprocess.SubprocessError) as exc:
            raise EnergySourceUnavailable(f"pmic: {' '.join(self.command)} failed: {exc}") from exc
        rails = parse_pmic_adc(output)
        if code != 0 or not rails:
            raise EnergySourceUnavailable(
                f"pmic: {' '.join(self.command)} gave no rail readings: {output.strip()[:200]!r}")
        return sum(rails.values())


class Ina219Reader:
    """Instantaneous power (W) from an INA219/INA2xx hwmon device."""

    kind = "power"
    name = "ina219"

    def __init__(self, sysfs_root: str = "/", hwmon: Optional[str] = None) -> None:
        if hwmon:
            self.path = hwmon if os.path.isabs(hwmon) and os.path.isdir(hwmon) else sysfs_path(sysfs_root, hwmon)
        else:
            base = sysfs_path(sysfs_root, "sys/class/hwmon")
            found = [p for p in sorted(glob.glob(os.path.join(base, "hwmon*")))
                     if (read_text(os.path.join(p, "name")) or "").startswith("ina2")]
            if not found:
                raise EnergySourceUnavailable(f"ina219: no hwmon device named ina2xx under {base}")
            self.path = found[0]
        if not os.path.isdir(self.path):
            raise EnergySourceUnavailable(f"ina219: {self.path} does not exist")
        self.read_power_w()

    def read_power_w(self) -> float:
        return ina219_power_w(self.path)


def cpu_seconds() -> float:
    """CPU time (user + system, all threads) this process has used.

    From the process CPU clock (``time.process_time``, nanoseconds), not psutil: psutil reads
    /proc/self/stat, which is in 10 ms ticks and which qemu-user answers with zeros.
    """
    return time.process_time()


# ---------------------------------------------------------------------------------------------
# The meter the runner drives


class EnergyMeter:
    """Measures energy over the timed run: ``idle()`` before loading, ``start()`` / ``stop(n)``
    around the timed inferences."""

    def __init__(self, source: str, config: Optional[Mapping[str, Any]] = None, sysfs_root: str = "/") -> None:
        if source not in SOURCES:
            raise ValueError(f"--energy-source must be one of {', '.join(SOURCES)}, got {source!r}")
        self.config = dict(config or {})
        self.sysfs_root = sysfs_root
        self.reader = self._open(source)
        self.source = "model" if self.reader is None else self.reader.name
        self.idle_s = float(self.config.get("idle_s", DEFAULT_IDLE_S))
        self.interval_s = float(self.config.get("sample_interval_s", DEFAULT_SAMPLE_INTERVAL_S.get(self.source, 0.1)))
        self._idle_w: List[float] = []
        self._sampler: Optional[PeriodicSampler] = None
        self._t0 = 0.0
        self._e0 = 0.0
        self._cpu0 = 0.0

    def _open(self, source: str) -> Any:
        openers = {
            "rapl": lambda: RaplReader(self.sysfs_root),
            "battery": lambda: BatteryReader(self.sysfs_root, self.config.get("battery_supply")),
            "pmic": lambda: PmicReader(self.config.get("pmic_command")),
            "ina219": lambda: Ina219Reader(self.sysfs_root, self.config.get("ina219_hwmon")),
        }
        if source == "model":
            return None
        if source != "auto":
            return openers[source]()  # raises EnergySourceUnavailable with the reason
        order = ["rapl", "pmic", "battery"]
        if self.config.get("ina219_hwmon"):
            order.insert(0, "ina219")
        for name in order:
            try:
                return openers[name]()
            except EnergySourceUnavailable:
                continue
        return None

    def _power_over(self, seconds: float) -> List[float]:
        if self.reader.kind == "counter":
            e0, t0 = self.reader.read_energy_j(), time.perf_counter()
            time.sleep(seconds)
            return [(self.reader.read_energy_j() - e0) / (time.perf_counter() - t0)]
        sampler = PeriodicSampler(self.reader.read_power_w, self.interval_s).start()
        time.sleep(seconds)
        return [value for _, value in sampler.stop()]

    def idle(self) -> None:
        """Measure the idle baseline (nothing for the model source)."""
        if self.reader is not None and self.idle_s > 0:
            self._idle_w = self._power_over(self.idle_s)

    def start(self) -> None:
        self._t0 = time.perf_counter()
        if self.reader is None:
            self._cpu0 = cpu_seconds()
        elif self.reader.kind == "counter":
            self._e0 = self.reader.read_energy_j()
        else:
            self._sampler = PeriodicSampler(self.reader.read_power_w, self.interval_s).start()

    def stop(self, inferences: int) -> Dict[str, Any]:
        duration = time.perf_counter() - self._t0
        if self.reader is None:
            power = float(self.config.get("active_power_w", DEFAULT_ACTIVE_POWER_W))
            return model_energy(cpu_seconds() - self._cpu0, duration, inferences, power)
        if self.reader.kind == "counter":
            active = [(self.reader.read_energy_j() - self._e0) / duration]
        else:
            active = [value for _, value in self._sampler.stop()]
        return active_energy(active, self._idle_w, duration, inferences, self.source)
