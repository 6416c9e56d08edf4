"""Interpreters behind one protocol, and the timing loop.

``load_model(path, backend, threads, delegate=...)`` returns a ``LoadedModel`` whose ``run()``
performs one inference on fixed random inputs (of the model's input types: an int8 model gets
int8 inputs), and says which delegate really took the graph (``delegate``). Backends:
"onnxruntime" and "litert" (``ai_edge_litert``, falling back to ``tflite_runtime`` as installed on
many Raspberry Pis); LiteRT's delegate is "xnnpack" (its default) or "none" (built-in kernels).
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from . import stats
from .protocol import BACKENDS, RUNNER_DELEGATES
from .system import runtime_name

_ORT_DTYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_,
}


@dataclass
class LoadedModel:
    """A model ready to run: ``run()`` does one inference; ``runtime`` names interpreter + version."""

    run: Callable[[], Any]
    runtime: str
    input_shapes: List[Tuple[int, ...]]
    delegate: Dict[str, Any] = field(default_factory=dict)


def _random_input(shape: Tuple[int, ...], dtype: Any, rng: np.random.Generator) -> np.ndarray:
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(shape).astype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    return rng.integers(0, 8, shape).astype(dtype)


def import_backend(backend: str) -> Tuple[Any, str]:
    """Import the interpreter module for ``backend``; return (module/class, "name version")."""
    if backend == "onnxruntime":
        import onnxruntime

        return onnxruntime, runtime_name("onnxruntime", onnxruntime.__version__)
    if backend == "litert":
        try:
            from ai_edge_litert import interpreter as litert

            return litert.Interpreter, runtime_name("ai_edge_litert", getattr(litert, "__version__", None))
        except ImportError:
            try:
                from tflite_runtime import interpreter as tflite  # the Pi's classic package
            except ImportError:
                raise RuntimeError(
                    "backend litert needs ai_edge_litert (pip install ai-edge-litert) "
                    "or tflite_runtime (pip install tflite-runtime)") from None
            import tflite_runtime

            return tflite.Interpreter, runtime_name("tflite_runtime", getattr(tflite_runtime, "__version__", None))
    raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def load_model(path: str, backend: str, threads: int, seed: int = 0, delegate: Optional[str] = None) -> LoadedModel:
    """Load ``path`` with ``backend`` using ``threads`` intra-op threads, inputs filled at random;
    ``delegate`` (LiteRT only): "xnnpack", "none", or None for the runtime's default."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file not found: {path}")
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    if delegate is not None and (backend != "litert" or delegate not in RUNNER_DELEGATES):
        raise ValueError(f"--delegate {delegate!r}: the runner applies {' or '.join(RUNNER_DELEGATES)} "
                         f"with backend litert")
    module, runtime = import_backend(backend)
    try:
        return _load(module, runtime, path, backend, threads, seed, delegate)
    except Exception as exc:
        raise RuntimeError(f"{runtime} cannot load {path}: {type(exc).__name__}: {exc}") from exc


def open_litert(interpreter_class: Any, path: str, threads: int, delegate: Optional[str]) -> Any:
    """A LiteRT interpreter for ``path``: delegate "none" runs the built-in kernels (no default
    delegate), anything else leaves LiteRT's default XNNPACK delegate on."""
    options: Dict[str, Any] = {}
    if delegate == "none":
        resolver = sys.modules[interpreter_class.__module__].OpResolverType
        options["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return interpreter_class(model_path=path, num_threads=threads, **options)


def litert_delegation(interpreter: Any, requested: Optional[str]) -> Dict[str, Any]:
    """Which delegate took the graph: the DELEGATE nodes in the interpreter's execution plan
    (one per partition a delegate claimed). The runner can only apply XNNPACK, so any such
    node is XNNPACK's. Empty when the interpreter does not tell."""
    try:
        ops = interpreter._get_ops_details()  # noqa: SLF001 - both interpreters have it; no public API
    except Exception:  # noqa: BLE001 - an interpreter without it: unknown, not an error
        return {}
    kernels = sum(1 for op in ops if op.get("op_name") == "DELEGATE")
    return {"requested": requested or "default", "applied": "xnnpack" if kernels else None,
            "delegated_kernels": kernels, "nodes": len(ops) - kernels}


def _load(module: Any, runtime: str, path: str, backend: str, threads: int, seed: int,
          delegate: Optional[str] = None) -> LoadedModel:
    rng = np.random.default_rng(seed)
    if backend == "onnxruntime":
        options = module.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = module.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = module.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = module.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        feeds = {}
        for node in session.get_inputs():
            shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in node.shape)
            feeds[node.name] = _random_input(shape, _ORT_DTYPES.get(node.type, np.float32), rng)
        return LoadedModel(lambda: session.run(None, feeds), runtime, [v.shape for v in feeds.values()],
                           {"requested": "default", "applied": session.get_providers()[0]})

    interpreter = open_litert(module, path, threads, delegate)
    details = interpreter.get_input_details()
    for detail in details:
        signature = detail.get("shape_signature", detail["shape"])
        if any(int(d) < 0 for d in signature):
            interpreter.resize_tensor_input(detail["index"], [int(d) if d > 0 else 1 for d in signature])
    interpreter.allocate_tensors()
    shapes = []
    for detail in interpreter.get_input_details():
        shape = tuple(int(d) for d in detail["shape"])
        interpreter.set_tensor(detail["index"], _random_input(shape, detail["dtype"], rng))
        shapes.append(shape)
    return LoadedModel(interpreter.invoke, runtime, shapes, litert_delegation(interpreter, delegate))


def warm_up(run: Callable[[], Any], min_time_s: float, min_runs: int) -> Tuple[int, float]:
    """Run until at least ``min_time_s`` have passed AND ``min_runs`` were done; (runs, seconds)."""
    start = time.perf_counter()
    runs = 0
    while runs < min_runs or time.perf_counter() - start < min_time_s:
        run()
        runs += 1
    return runs, time.perf_counter() - start


def _cpu_clock_overhead_ms(repeats: int = 200) -> float:
    """The CPU time the clock reads themselves add to one CPU-time sample (median, ms)."""
    costs = []
    for _ in range(repeats):
        c0 = time.thread_time_ns()
        time.perf_counter_ns()
        time.perf_counter_ns()
        costs.append(time.thread_time_ns() - c0)
    costs.sort()
    return costs[len(costs) // 2] / 1e6


def time_runs(run: Callable[[], Any], min_time_s: float, min_runs: int, max_runs: int,
              cpu_samples: Optional[List[float]] = None, max_time_s: Optional[float] = None,
              target_rse: Optional[float] = None) -> List[float]:
    """Per-inference wall times in ms: repeat until ``min_time_s`` of timed inference AND
    ``min_runs`` samples, stopping at ``max_runs``.

    With ``target_rse``, timing then goes on in steps of a fifth of ``min_time_s`` while the
    median's relative standard error (``stats.median_rse``) is above it, up to ``max_time_s`` of
    timed inference: a measurement disturbed by load that comes and goes is lengthened until
    its median settles, instead of being returned as it happened to fall.

    When ``cpu_samples`` is a list, the calling thread's CPU time per inference (ms) is appended
    to it as well. With one interpreter thread the inference runs on the calling thread, so this
    is the latency without the time spent preempted by other programs (a busy host).
    """
    if min_runs < 1 or max_runs < min_runs:
        raise ValueError(f"need 1 <= min_runs <= max_runs, got min_runs={min_runs}, max_runs={max_runs}")
    if target_rse is not None and not 0.0 < target_rse < 1.0:
        raise ValueError(f"target_rse must be in (0, 1), got {target_rse}")
    samples: List[float] = []
    total_ns = 0
    clock = time.perf_counter_ns
    cpu_clock = time.thread_time_ns if cpu_samples is not None else None
    cpu_overhead_ms = _cpu_clock_overhead_ms() if cpu_samples is not None else 0.0
    limit_ns = max(min_time_s, max_time_s or 0.0) * 1e9
    goal_ns = min_time_s * 1e9
    while True:
        while len(samples) < max_runs and (len(samples) < min_runs or total_ns < goal_ns):
            if cpu_clock is not None:
                c0 = cpu_clock()
            t0 = clock()
            run()
            elapsed = clock() - t0
            if cpu_clock is not None:
                cpu_samples.append(max((cpu_clock() - c0) / 1e6 - cpu_overhead_ms, 0.0))
            total_ns += elapsed
            samples.append(elapsed / 1e6)
        if (target_rse is None or len(samples) >= max_runs or total_ns >= limit_ns
                or stats.median_rse(samples) <= target_rse):
            return samples
        goal_ns = min(limit_ns, total_ns + max(min_time_s, 1e-3) * 1e9 / 5)
