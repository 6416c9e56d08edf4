"""Timeouts and size limits of the hardware layer, in one place.

Everything read from a device is bounded: a device (or whatever answers in its place) can
print without end, nest JSON without end, or send numbers no measurement produces.
"""
from __future__ import annotations

# -- timeouts (seconds) -----------------------------------------------------------------------
RUN_TIMEOUT_S = 600.0           # one device-runner / benchmark_model call (profile: transport.timeout_s)
MAX_RUN_TIMEOUT_S = 86400.0     # the longest transport.timeout_s a profile may ask for
CONNECT_TIMEOUT_S = 10.0        # opening an SSH connection (TCP, banner, authentication)
SHORT_COMMAND_TIMEOUT_S = 30.0  # small device commands: mkdir, getprop, dumpsys, cpufreq
SAMPLE_TIMEOUT_S = 10.0         # one energy sample read over adb
SSH_KEEPALIVE_S = 5             # paramiko's keepalive (wants no reply)
ALIVE_INTERVAL_S = 2.0          # SSH liveness probe (wants a reply) every ...
ALIVE_TIMEOUT_S = 8.0           # ... and a link with no reply this long is lost
CACHE_BUSY_TIMEOUT_S = 30.0     # waiting for another process's sqlite write lock

# -- what is read from a device ---------------------------------------------------------------
MAX_OUTPUT_BYTES = 16 * 1024 * 1024  # stdout + stderr of one device command, all transports

# -- what a measurement may hold --------------------------------------------------------------
MAX_RUNS = 200_000          # timed inferences (profile repeat.max_runs; samples in an answer):
                            # two sample lists of this length fit well within MAX_OUTPUT_BYTES
MAX_LATENCY_MS = 3.6e6      # one inference taking an hour is not a measurement
MAX_ENERGY_MJ = 3.6e9       # a megawatt for an hour, per inference
MAX_MEMORY_MB = 1.0e8       # 100 TB
# Strings, lists and nesting of an answer are bounded by nni_gensynth.constraints (MAX_TEXT,
# MAX_ITEMS, MAX_DEPTH), which every checked value shares.
