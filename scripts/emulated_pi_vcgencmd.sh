#!/bin/sh
# vcgencmd stand-in of the emulated Raspberry Pi 5 (scripts/emulated_pi.py installs it as
# /usr/bin/vcgencmd in the arm64 root). There is no VideoCore firmware under qemu-user, so this
# prints what the real tool prints, in its exact formats, with values that are a MODEL:
#
#   vcgencmd measure_temp    ->  temp=48.3'C
#   vcgencmd get_throttled   ->  throttled=0x0
#   vcgencmd pmic_read_adc   ->  the Pi 5 PMIC's 12 current and 14 voltage channels, one per line,
#                                "%12s current(N)=%.8fA" / "%12s volt(N)=%.8fV", currents first
#
# The PMIC figures follow the load the calling user's processes put on the CPU (their utime +
# stime from /proc/PID/stat over a 0.2 s window): VDD_CORE draws 0.75 A idle plus 1.2 A per busy
# core, so a model running on the "board" adds power over the idle baseline, as it would on a Pi.
# They are not a Pi's figures: real PMIC values need a real board (docs/devices.md).
# Unknown commands answer as the real tool does: error=2 error_msg="Command not registered".
set -u

# "up SECONDS", then "PID TICKS" (utime + stime, in USER_HZ ticks) for each of this user's processes.
snapshot() {
  find /proc -mindepth 1 -maxdepth 1 -name '[0-9]*' -uid "$(id -u)" -printf '%p\n' 2>/dev/null \
    | awk '{ file = $0 "/stat"
             if ((getline line < file) > 0) { pid = line; sub(/ .*/, "", pid); sub(/^.*\) /, "", line)
                                               split(line, f, " "); print pid, f[12] + f[13] }
             close(file) }
           END { getline up < "/proc/uptime"; split(up, u, " "); print "up", u[1] }'
}

# Busy cores = CPU time this user's processes used over a 0.2 s window / the window; only processes
# alive at both ends count (the short-lived ones, this script's own included, would come and go).
pmic_read_adc() {
  first=$(snapshot)
  sleep 0.2
  second=$(snapshot)
  printf '%s\n--\n%s\n' "$first" "$second" | awk -v hz="$(getconf CLK_TCK)" '
    $0 == "--" { after = 1; next }
    !after { if ($1 == "up") up0 = $2; else before[$1] = $2; next }
    $1 == "up" { up1 = $2; next }
    ($1 in before) { ticks += $2 - before[$1] }
    END {
    busy = (up1 > up0) ? ticks / hz / (up1 - up0) : 0
    if (busy < 0) busy = 0
    if (busy > 4) busy = 4
    n = split("3V7_WL_SW 3V3_SYS 1V8_SYS DDR_VDD2 DDR_VDDQ 1V1_SYS 0V8_SW VDD_CORE 3V3_DAC 3V3_ADC 0V8_AON HDMI", rail, " ")
    split("0 1 2 3 4 5 6 7 17 18 16 22", achan, " ")
    split("8 9 10 11 12 13 14 15 20 21 19 23", vchan, " ")
    split("0.00390 0.05490 0.16885 0.02049 0.00000 0.19032 0.34845 0.75000 0.00049 0.00049 0.00537 0.02260", amps, " ")
    split("3.71133 3.31519 1.79925 1.11184 0.60551 1.11184 0.80250 0.77440 3.30402 3.30402 0.80250 5.15988", volts, " ")
    amps[8] += 1.2 * busy      # VDD_CORE: the ARM cores
    amps[4] += 0.05 * busy     # DDR_VDD2: memory traffic
    for (i = 1; i <= n; i++) printf "%12s current(%d)=%.8fA\n", rail[i] "_A", achan[i], amps[i]
    for (i = 1; i <= n; i++) printf "%12s volt(%d)=%.8fV\n", rail[i] "_V", vchan[i], volts[i]
    printf "%12s volt(%d)=%.8fV\n", "EXT5V_V", 24, 5.15316
    printf "%12s volt(%d)=%.8fV\n", "BATT_V", 25, 0
    }'
}

case "${1:-}" in
  measure_temp) echo "temp=48.3'C" ;;
  get_throttled) echo "throttled=0x0" ;;
  pmic_read_adc) pmic_read_adc ;;
  *) echo 'error=2 error_msg="Command not registered"'; exit 255 ;;
esac
