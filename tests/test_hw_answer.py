"""A device's answer is read (read_answer) and checked field by field (validate_answer) before
anything is built from it: hostile values either pass as valid figures or raise a DeviceError
naming the field, never another exception (issue #11 item 4)."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings, strategies as st

from nni_gensynth.hardware.answer import AnswerError, RunnerAnswer, read_answer, tail, validate_answer
from nni_gensynth.hardware.measurement import Measurement, MeasurementSpec
from nni_gensynth.hardware.transports.base import DeviceError

GOOD = {"ok": True, "backend": "onnxruntime", "runtime": "onnxruntime 1.20", "threads": 1,
        "samples_ms": [1.0, 1.2, 0.9], "cpu_samples_ms": [0.9, 1.0, 0.8], "peak_mem_mb": 3.5,
        "energy": {"energy_mj": 0.4, "source": "model", "cpu_s": 0.01}, "affinity": [0],
        "thermal": {"max_temp_c": 41.0, "throttled": None, "load_avg_start": 0.3, "cpu_count": 2, "zones_c": {}},
        "device": {"hostname": "pi", "cpu_count": 4, "runtimes": {"onnxruntime": "onnxruntime 1.20"}},
        "summary_ms": {"median": 1.0, "count": 3.0}, "warmup": {"runs": 3, "time_s": 0.1},
        "delegate": {"requested": "default", "applied": "CPUExecutionProvider"}}
SPEC = MeasurementSpec("a", "p", "f", "onnxruntime", "onnxruntime 1.20", 1, "local:x")


def test_a_good_answer_becomes_a_measurement():
    answer = validate_answer(GOOD)
    assert isinstance(answer, RunnerAnswer) and answer.samples_ms == (1.0, 1.2, 0.9)
    assert answer.cpu_samples_ms == (0.9, 1.0, 0.8) and answer.affinity == (0,) and answer.threads == 1
    m = Measurement.from_runner(answer, SPEC, 0.05)
    assert m.median_ms == 1.0 and m.energy_mj == 0.4 and Measurement.from_json(m.to_json()) == m


def test_a_delegate_that_took_nothing_is_a_warning_not_a_silent_fallback():
    """The delegate the device really used is kept; one that claimed no node is said aloud."""
    def measured(delegate):
        return Measurement.from_runner(validate_answer({**GOOD, "delegate": delegate}), SPEC, 0.05)

    took = measured({"requested": "xnnpack", "applied": "xnnpack", "delegated_kernels": 2, "nodes": 3})
    assert took.metrics()["delegate"] == "xnnpack" and not took.delegate_claimed_nothing
    assert Measurement.from_json(took.to_json()) == took
    for nothing in ({"requested": "gpu", "applied": None, "delegated_kernels": 0},
                    {"requested": "nnapi", "applied": None, "delegated_kernels": None},
                    {"requested": "default", "applied": None, "delegated_kernels": 0}):
        m = measured(nothing)
        assert m.metrics()["delegate"] == "none" and m.delegate_claimed_nothing
        assert any(f"the {nothing['requested']} delegate claimed no node" in w for w in m.warnings)
    off = measured({"requested": "none", "applied": None, "delegated_kernels": 0})
    assert not off.delegate_claimed_nothing and not [w for w in off.warnings if "delegate" in w]
    assert "delegate" not in measured(None).metrics()  # an older runner's answer: nothing claimed


@pytest.mark.parametrize("path, value", [
    ("samples_ms", "123"), ("samples_ms", []), ("samples_ms", [True]), ("samples_ms", [10 ** 5000]),
    ("samples_ms", [-1.0]), ("energy", None), ("energy", {"energy_mj": 1.0}), ("energy.energy_mj", 0),
    ("energy.energy_mj", "abc"), ("energy.energy_mj", float("nan")), ("peak_mem_mb", float("-inf")),
    ("backend", "tensorrt"), ("ok", False), ("ok", 1), ("affinity", [0, -1]), ("threads", 0),
    ("samples_kind", "guess"), ("thermal.cpu_count", 0.5), ("device", [1] * 5000), ("runtime", ""),
    ("delegate", "xnnpack"), ("delegate.applied", 5), ("delegate.delegated_kernels", -1),
    ("delegate.requested", "x" * 100),
])
def test_each_bad_field_is_named(path, value):
    answer = json.loads(json.dumps(GOOD))
    *parents, name = path.split(".")
    target = answer
    for parent in parents:
        target = target[parent]
    target[name] = value
    with pytest.raises(AnswerError) as info:
        validate_answer(answer, "device local:x")
    field = info.value.field
    assert (field == path or field.startswith((path + "[", path + "."))) and info.value.retryable is False
    assert f"'{info.value.field}'" in str(info.value) and "device local:x" in str(info.value)


def _json_values(depth: int = 4):
    leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=-10 ** 400, max_value=10 ** 400),
                       st.floats(allow_nan=True, allow_infinity=True), st.floats(min_value=-1e-300, max_value=1e-300),
                       st.text(max_size=10), st.just("x" * 10_000))
    return st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                        max_leaves=depth * 4)


FIELDS = sorted(set(GOOD) | {"samples_kind", "summary_ms", "extra"})


@settings(max_examples=400, deadline=None)
@given(field=st.sampled_from(FIELDS), value=_json_values())
def test_hostile_fields_are_accepted_or_named(field, value):
    answer = dict(GOOD, **{field: value})
    try:
        checked = validate_answer(answer)
    except AnswerError as exc:
        assert exc.field == field or exc.field.startswith((field + "[", field + ".", field + " ")) or \
            exc.field in ("cpu_samples_ms", "samples_ms"), (field, exc)  # their lengths must agree
        return
    assert all(math.isfinite(s) and s > 0 for s in checked.samples_ms)
    assert checked.energy["energy_mj"] > 0
    Measurement.from_runner(checked, SPEC, 0.05)  # whatever passed makes a valid Measurement


@settings(max_examples=200, deadline=None)
@given(value=_json_values())
def test_any_json_as_a_whole_answer_is_accepted_or_named(value):
    try:
        validate_answer(value)
    except AnswerError as exc:
        assert exc.field


def test_deep_nesting_and_huge_values_in_runner_output():
    deep = '{"ok": true, "device": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(DeviceError, match="no JSON answer"):  # too deep for json: no answer, not a crash
        read_answer(deep, "", 0, "local:x")
    nested = json.dumps(dict(GOOD, device={"a": [[[[[[[[["deep"]]]]]]]]]}))
    with pytest.raises(AnswerError, match="nested too deeply"):
        validate_answer(read_answer(nested, "", 0, "local:x"))
    huge = json.dumps(dict(GOOD, samples_ms=[1.0]))[:-1] + ', "peak_mem_mb": 1e999}'  # JSON's inf
    with pytest.raises(AnswerError, match="'peak_mem_mb'"):
        validate_answer(read_answer(huge, "", 0, "local:x"))
    big_int = '{"ok": true, "samples_ms": [' + "9" * 5000 + "]}"  # more digits than int() takes
    with pytest.raises(DeviceError, match="no JSON answer"):
        read_answer(big_int, "", 0, "local:x")


def test_read_answer_says_why_there_is_none():
    assert read_answer('progress\n{"ok": true, "x": 1}\n', "", 0, "d")["x"] == 1
    with pytest.raises(DeviceError, match=r"failed \(exit 1\): ValueError: bad") as info:
        read_answer('{"ok": false, "error": "ValueError: bad"}\n', "", 1, "d")
    assert info.value.retryable is False
    with pytest.raises(DeviceError, match="python3 missing"):
        read_answer("", "sh: python3: not found", 127, "d", not_found_hint="python3 missing")
    with pytest.raises(DeviceError, match="Killed") as info:
        read_answer("", "Killed", -9, "d")
    assert info.value.retryable is True  # killed by a signal: worth another try
    with pytest.raises(DeviceError) as info:
        read_answer('{"ok": false, "error": ' + json.dumps("e" * 100_000) + "}", "", 1, "d")
    assert len(str(info.value)) < 5000
    assert tail("a\n\nb\n" + "c\n" * 20, 2) == "c\nc"
