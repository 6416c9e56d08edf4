"""A stand-in for TFLite's ``benchmark_model`` binary that REALLY runs the model with LiteRT on
this CPU and prints what the real tool prints.

The loop and the log lines follow tensorflow/lite/tools/benchmark/benchmark_model.cc
(BenchmarkModel::Run, BenchmarkLoggingListener::OnBenchmarkEnd) and the statistics line follows
tsl::Stat::OutputToStream ("count=50 first=.. curr=.. min=.. max=.. avg=.. std=..", integer
microseconds, avg printed like a C++ stream prints a double). Log lines are "INFO: ..." on stdout
(tensorflow/lite/tools/logging.h). Flags are --name=value, as the real tool parses them.

Delegates follow tensorflow/lite/tools/delegates/*_delegate_provider.cc and
BenchmarkTfLiteModel::Init: --use_xnnpack=true applies XNNPACK explicitly (its kernels are counted
from the interpreter, for real), --use_xnnpack=false turns off the runtime's implicit XNNPACK
(LiteRT's built-in kernels, for real); without the flag LiteRT applies XNNPACK itself. There is
no GPU or NPU here: --use_gpu / --use_nnapi report what the phone's FAKE_ADB_ACCELERATORS
({"gpu": kernels or null, "nnapi": ...}; absent or null: the delegate cannot be created) says,
in the real tool's words, and the model runs on the CPU.

Used by tests/fakes/fake_adb_server.py when a shell command runs the device's benchmark binary.
"""
from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from typing import Dict, List, Tuple

import numpy as np

FLAGS = {  # name: (type, default), as in BenchmarkModel::DefaultParams / BenchmarkTfLiteModel
    "graph": (str, ""),
    "num_runs": (int, 50),
    "min_secs": (float, 1.0),
    "max_secs": (float, 150.0),
    "run_delay": (float, -1.0),
    "num_threads": (int, -1),
    "warmup_runs": (int, 1),
    "warmup_min_secs": (float, 0.5),
    "enable_op_profiling": (bool, False),
    "report_peak_memory_footprint": (bool, False),
    "memory_footprint_check_interval_ms": (int, 50),
    "use_xnnpack": (bool, False),
    "use_gpu": (bool, False),
    "use_nnapi": (bool, False),
    "verbose": (bool, False),
}


def log(message: str) -> None:
    sys.stdout.write(f"INFO: {message}\n")
    sys.stdout.flush()


def cpp_double(value: float) -> str:
    """A double as ``std::ostream << double`` prints it (precision 6, %g)."""
    return format(value, "g")


def parse_flags(argv: List[str]) -> Tuple[Dict[str, object], List[str], set]:
    """(values, unconsumed arguments, names given on the command line)."""
    values: Dict[str, object] = {name: default for name, (_, default) in FLAGS.items()}
    unconsumed = []
    given = set()
    for arg in argv:
        name, sep, raw = arg.lstrip("-").partition("=")
        if not arg.startswith("--") or not sep or name not in FLAGS:
            unconsumed.append(arg)
            continue
        kind = FLAGS[name][0]
        if kind is bool:
            values[name] = raw.lower() in ("1", "true")
        else:
            values[name] = kind(raw)
        given.add(name)
    return values, unconsumed, given


def applied_line(name: str, kernels: int, fully: bool) -> str:
    """BenchmarkTfLiteModel::Init's line about a delegate it applied explicitly."""
    if fully:
        return f"Explicitly applied {name} delegate, and the model graph will be completely executed by the delegate."
    if kernels > 0:
        return (f"Explicitly applied {name} delegate, and the model graph will be partially executed by the "
                f"delegate w/ {kernels} delegate kernels.")
    return f"Though {name} delegate is explicitly applied, the model graph will not be executed by the delegate."


def xnnpack_kernels(interpreter) -> Tuple[int, bool]:
    """(delegate kernels in the interpreter's graph, whether one kernel produces every output)."""
    delegates = [op for op in interpreter._get_ops_details() if op["op_name"] == "DELEGATE"]
    outputs = {int(d["index"]) for d in interpreter.get_output_details()}
    fully = len(delegates) == 1 and outputs <= {int(t) for t in delegates[0]["outputs"]}
    return len(delegates), fully


def accelerator_lines(name: str, label: str, accelerators: Dict[str, object]) -> List[str]:
    """What the GPU or NNAPI delegate provider logs on a phone whose ``accelerators`` say how many
    kernels that delegate takes (null or absent: the delegate cannot be created)."""
    kernels = accelerators.get(name)
    if kernels is None:
        return [f"{label} acceleration is unsupported on this platform."]
    return [f"{label} delegate created.", applied_line(label, int(kernels), False)]


class Stat:
    """tsl::Stat<int64_t>: integer microseconds, avg as a double, std truncated to an integer."""

    def __init__(self) -> None:
        self.values: List[int] = []

    def add(self, value: int) -> None:
        self.values.append(int(value))

    def line(self) -> str:
        v = self.values
        if not v:
            return "count=0"
        if min(v) == max(v):
            return f"count={len(v)} curr={v[-1]}" + ("(all same)" if len(v) > 1 else "")
        avg = sum(v) / len(v)
        std = int(math.sqrt(max(sum(x * x for x in v) / len(v) - avg * avg, 0.0)))
        return (f"count={len(v)} first={v[0]} curr={v[-1]} min={min(v)} max={max(v)} "
                f"avg={cpp_double(avg)} std={std}")


class PeakMemory:
    """Periodic RSS monitor, like profiling::memory::MemoryUsageMonitor."""

    def __init__(self, interval_ms: int) -> None:
        import psutil

        self.process = psutil.Process()
        self.interval = max(interval_ms, 1) / 1000.0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(self.interval)

    def start(self) -> "PeakMemory":
        self._thread.start()
        return self

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        return self.peak / (1024.0 * 1024.0)


def run(invoke, min_runs: int, min_secs: float, max_secs: float, delay: float) -> Stat:
    """BenchmarkModel::Run: at least min_runs and min_secs, stop after max_secs."""
    log(f"Running benchmark for at least {min_runs} iterations and at least {cpp_double(min_secs)} seconds "
        f"but terminate if exceeding {cpp_double(max_secs)} seconds.")
    stat = Stat()
    now = time.perf_counter()
    min_finish, max_finish = now + min_secs, now + max_secs
    run_index = 0
    while (run_index < min_runs or now < min_finish) and now <= max_finish:
        start = time.perf_counter()
        invoke()
        stat.add(int((time.perf_counter() - start) * 1e6))
        if delay > 0:
            time.sleep(delay)
        now = time.perf_counter()
        run_index += 1
    log(stat.line() + "\n")
    return stat


def main(argv: List[str]) -> int:
    flags, unconsumed, given = parse_flags(argv)
    log("STARTING!")
    if unconsumed:
        sys.stderr.write(f"ERROR: Unconsumed cmdline flags: {' '.join(unconsumed)}\n")
        return 1
    graph = str(flags["graph"])
    log(f"Log parameter values verbosely: [{int(bool(flags['verbose']))}]")
    log(f"Min num runs: [{flags['num_runs']}]")
    log(f"Num threads: [{flags['num_threads']}]")
    log(f"Min warmup runs: [{flags['warmup_runs']}]")
    log(f"Graph: [{os.environ.get('FAKE_ADB_DEVICE_GRAPH', graph)}]")
    log(f"Enable op profiling: [{int(bool(flags['enable_op_profiling']))}]")
    log(f"Report the peak memory footprint: [{int(bool(flags['report_peak_memory_footprint']))}]")
    log(f"#threads used for CPU inference: [{flags['num_threads']}]")
    for name, label in (("use_gpu", "Use gpu"), ("use_nnapi", "Use NNAPI"), ("use_xnnpack", "Use xnnpack")):
        if name in given:
            log(f"{label}: [{int(bool(flags[name]))}]")
    if not graph or not os.path.isfile(graph):
        sys.stderr.write(f"ERROR: Could not open '{os.environ.get('FAKE_ADB_DEVICE_GRAPH', graph)}'.\n")
        return 1
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    monitor = PeakMemory(int(flags["memory_footprint_check_interval_ms"])).start() \
        if flags["report_peak_memory_footprint"] else None
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    threads = int(flags["num_threads"])
    options = {}
    if "use_xnnpack" in given and not flags["use_xnnpack"]:  # off explicitly: no implicit XNNPACK either
        options["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    log(f"Loaded model {os.environ.get('FAKE_ADB_DEVICE_GRAPH', graph)}")
    interpreter = Interpreter(model_path=graph, num_threads=threads if threads > 0 else None, **options)
    interpreter.allocate_tensors()
    accelerators = json.loads(os.environ.get("FAKE_ADB_ACCELERATORS") or "{}")
    if flags["use_gpu"]:
        for line in accelerator_lines("gpu", "GPU", accelerators):
            log(line)
    if flags["use_nnapi"]:
        for line in accelerator_lines("nnapi", "NNAPI", accelerators):
            log(line)
    if flags["use_xnnpack"]:
        log("XNNPACK delegate created.")
        log(applied_line("XNNPACK", *xnnpack_kernels(interpreter)))
    init_us = int((time.perf_counter() - t0) * 1e6)
    init_mem = _rss_mb() - rss0
    log(f"The input model file size (MB): {cpp_double(os.path.getsize(graph) / 1e6)}")
    log(f"Initialized session in {cpp_double(init_us / 1e3)}ms.")
    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():  # random inputs, as PrepareInputData does
        dtype = np.dtype(detail["dtype"])
        if np.issubdtype(dtype, np.floating):
            data = rng.uniform(-1.0, 1.0, detail["shape"]).astype(dtype)
        else:
            data = rng.integers(0, 100, detail["shape"]).astype(dtype)
        interpreter.set_tensor(detail["index"], data)

    warmup = run(interpreter.invoke, int(flags["warmup_runs"]), float(flags["warmup_min_secs"]),
                 float(flags["max_secs"]), float(flags["run_delay"]))
    inference = run(interpreter.invoke, int(flags["num_runs"]), float(flags["min_secs"]),
                    float(flags["max_secs"]), float(flags["run_delay"]))
    overall_mem = _rss_mb() - rss0
    inf_avg = sum(inference.values) / len(inference.values) if inference.values else float("nan")
    warm_avg = sum(warmup.values) / len(warmup.values) if warmup.values else float("nan")
    first = warmup.values[0] if warmup.values else 0
    log(f"Inference timings in us: Init: {init_us}, First inference: {first}, "
        f"Warmup (avg): {cpp_double(warm_avg)}, Inference (avg): {cpp_double(inf_avg)}")
    log("Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE "
        "to the actual memory footprint of the model at runtime. Take the information at your discretion.")
    log(f"Memory footprint delta from the start of the tool (MB): init={cpp_double(init_mem)} "
        f"overall={cpp_double(overall_mem)}")
    if monitor is not None:
        log(f"Overall peak memory footprint (MB) via periodic monitoring: {cpp_double(monitor.stop())}")
        log("Memory status at the end of exeution:")
        log(f"- VmRSS              : {int(_rss_mb())} MB")
    return 0


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / (1024.0 * 1024.0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
