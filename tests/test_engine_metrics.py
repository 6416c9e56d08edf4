"""clean_metrics: any reported value in, a flat dict of finite floats, bools and short texts out."""
from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nni_gensynth.engine.metrics import (MAX_JSON_TEXT, MAX_METRICS, MAX_RESPONSES, clean_metrics,
                                         parse_responses)


def deep(levels: int, leaf=0.5):
    """A list nested `levels` deep (built without recursion)."""
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def test_usable_values_are_kept_and_the_rest_dropped_with_the_key_named(caplog):
    raw = {"default": 0.9, "params": 22186, "feasible": True, "energy_source": "rapl", "np": np.float32(0.5),
           "huge": 10**400, "nan": float("nan"), "inf": -float("inf"), "nested": deep(50_000), "list": [1, 2],
           "text": "x" * 10_000, 7: 1.0, "missing": None, "k" * 500: 1.0}
    with caplog.at_level(logging.WARNING, logger="nni_gensynth.engine"):
        clean = clean_metrics(raw)
    assert clean == {"default": 0.9, "params": 22186, "feasible": True, "energy_source": "rapl", "np": 0.5}
    assert type(clean["params"]) is int and type(clean["np"]) is float
    warning = " ".join(r.getMessage() for r in caplog.records)
    for key in ("'huge'", "'nan'", "'inf'", "'nested'", "'list'", "'text'", "7"):
        assert key in warning
    assert "'missing'" not in warning  # a metric the trial could not compute: dropped quietly


@pytest.mark.parametrize("raw, expected", [
    (0.75, {"default": 0.75}), (3, {"default": 3.0}), ('{"default": 0.5}', {"default": 0.5}), ("0.25", {"default": 0.25}),
    (None, None), (float("nan"), None), (10**400, None), (True, None), ("garbage", None), ([0.5], None),
    ("[" * 200_000, None), ("1" * 10_000, None), (" " * (MAX_JSON_TEXT + 1), None),
])
def test_scalars_and_json_text(raw, expected):
    assert clean_metrics(raw) == expected


def test_a_huge_dict_keeps_the_keys_u_and_1r_read():
    raw = {f"m{i}": float(i) for i in range(100_000)}
    raw.update({"accuracy": 0.9, "latency_ms": 3.0})
    clean = clean_metrics(raw, keep=("accuracy", "latency_ms", "absent"))
    assert len(clean) == MAX_METRICS
    assert clean["accuracy"] == 0.9 and clean["latency_ms"] == 3.0


def test_a_mapping_that_cannot_be_read_is_a_failure():
    class Hostile(dict):
        def items(self):
            raise RuntimeError("no")

        def __iter__(self):
            raise RuntimeError("no")

    assert clean_metrics(Hostile(default=1.0)) is None


def test_responses_are_parsed_within_bounds():
    responses = {"width": {"target": 16, "weight": 1.0}, "k": {"target": [3, {"a": "b"}]},
                 "bad_weight": {"target": 1, "weight": float("nan")}, "no_target": {"weight": 1},
                 "deep": {"target": deep(1000)}, "huge": {"target": 10**400}, "not_dict": 5, 3: {"target": 1}}
    expected = {"width": {"target": 16, "weight": 1.0}, "k": {"target": [3, {"a": "b"}], "weight": 1.0}}
    assert parse_responses(responses) == expected
    assert parse_responses(json.dumps({k: v for k, v in responses.items() if k not in ("deep", 3, "huge")})) == expected
    assert clean_metrics({"default": 1.0, "responses": responses}) == {"default": 1.0, "responses": expected}
    for garbage in ("{" * 100_000, "[" * 100_000 + "]" * 100_000, "nope", 5, [1], {}, {"x": 1}):
        assert parse_responses(garbage) is None
    many = {f"d{i}": {"target": i} for i in range(MAX_RESPONSES * 3)}
    assert len(parse_responses(many)) == MAX_RESPONSES


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**400, 10**400), st.floats(), st.text(max_size=300)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)),
    max_leaves=20)


@settings(max_examples=300, deadline=None, database=None)
@given(st.one_of(json_values, st.dictionaries(st.one_of(st.text(max_size=140), st.integers()), json_values,
                                              max_size=8)))
def test_anything_in_clean_dict_or_none_out(raw):
    for value in (raw, json.dumps(raw, default=str) if not isinstance(raw, str) else raw):
        clean = clean_metrics(value)
        if clean is None:
            continue
        json.dumps(clean, allow_nan=False)
        for key, v in clean.items():
            assert isinstance(key, str) and len(key) <= 128
            if key == "responses":
                assert isinstance(v, dict)
            else:
                assert type(v) in (float, int, bool, str) and (not isinstance(v, float) or math.isfinite(v))
                assert type(v) is not int or abs(v) <= 2**53
        assert clean_metrics(clean) == clean  # idempotent: a saved result reads back the same
