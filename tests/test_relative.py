"""Requirements relative to the prototype: parsing, splitting and resolving."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from nni_gensynth.engine.objective import Requirements
from nni_gensynth.engine.relative import has_relative, parse_bound, resolve_relative, split_relative

CONSTRAINTS = {"accuracy": {"min": "prototype - 0.005"}, "latency_ms": {"max": "prototype / 4"},
               "macs": {"max": "0.1 * prototype"}, "params": {"max": "prototype*0.1", "min": 1000},
               "energy_mj": {"max": 2.0}}
PROTOTYPE = {"accuracy": 0.975, "latency_ms": 1.0, "macs": 88e6, "params": 2.2e6, "energy_mj": 1.0}


def test_relative_bounds_resolve_from_the_prototypes_figures():
    resolved = resolve_relative(CONSTRAINTS, PROTOTYPE)
    assert resolved == {"accuracy": {"min": pytest.approx(0.97)}, "latency_ms": {"max": 0.25},
                        "macs": {"max": pytest.approx(8.8e6)}, "params": {"max": pytest.approx(2.2e5), "min": 1000},
                        "energy_mj": {"max": 2.0}}
    Requirements(resolved)  # a valid requirements config


def test_split_keeps_numbers_for_requirements_and_parses_expressions():
    absolute, relative = split_relative(CONSTRAINTS)
    assert absolute == {"params": {"min": 1000}, "energy_mj": {"max": 2.0}}
    assert set(relative) == {"accuracy", "latency_ms", "macs", "params"}
    assert has_relative(CONSTRAINTS) and not has_relative({"latency_ms": {"max": 1}}) and not has_relative(None)


@pytest.mark.parametrize("text", ["prototype /", "prototype / 0", "prototype ** 2", "half the prototype", "1e999 * prototype",
                                  "prototype - nan", "prototype + 1 + 1"])
def test_bad_expressions_are_named(text):
    with pytest.raises(ValueError, match="constraints\\['x'\\].max"):
        parse_bound(text, "constraints['x'].max")


def test_a_metric_the_prototype_did_not_report_is_a_clear_error():
    with pytest.raises(ValueError, match="latency_ms.*no latency_ms"):
        resolve_relative({"latency_ms": {"max": "prototype / 4"}}, {"accuracy": 0.9})


@given(op=st.sampled_from("+-*/"), operand=st.floats(0.001, 1000), value=st.floats(1e-6, 1e9))
def test_any_well_formed_expression_resolves_to_a_finite_number(op, operand, value):
    bound = parse_bound(f"prototype {op} {operand!r}", "x")
    resolved = bound.resolve(value)
    expected = {"+": value + operand, "-": value - operand, "*": value * operand, "/": value / operand}[op]
    assert resolved == pytest.approx(expected)
