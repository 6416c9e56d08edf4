"""Property: whatever trials and devices report, GenSynth keeps answering and its state stays
clean JSON that reloads to the same engine (issue #11)."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nni_gensynth.engine import GenSynth, Objective, Requirements, SearchSpace

SPACE = SearchSpace({
    "width": {"_type": "choice", "_value": [8, 16, 32, 64]},
    "depth": {"_type": "randint", "_value": [1, 6]},
    "dropout": {"_type": "uniform", "_value": [0.0, 0.5]},
    "lr": {"_type": "loguniform", "_value": [1e-5, 1e-1]},
    "optimizer": {"_type": "choice", "_value": [
        {"_name": "sgd", "momentum": {"_type": "uniform", "_value": [0.5, 0.99]}},
        {"_name": "adam", "beta1": {"_type": "choice", "_value": [0.8, 0.9, 0.99]}}]},
})
DECISIONS = ["width", "depth", "dropout", "lr", "optimizer", "optimizer.0.momentum", "optimizer.1.beta1"]


def deep(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


def as_json(value) -> str:
    """JSON text of a value; for one too deep for the encoder, text just as deep."""
    try:
        return json.dumps(value, default=str)
    except (RecursionError, ValueError):
        return "[" * 100_000


numbers = st.one_of(
    st.floats(), st.integers(-10**400, 10**400),
    st.sampled_from([0, -0.0, 1e308, -1e308, 1e-320, 5e-324, 1.5, 100, 150, 10**400, float("nan"), float("inf")]))
HUGE = {"2 MB of text": lambda: "x" * 2_000_000, "100k list": lambda: list(range(100_000)),
        "50k-deep list": lambda: deep(50_000), "20k-key dict": lambda: {str(i): i for i in range(20_000)},
        "200k-deep JSON": lambda: "[" * 200_000, "100k-deep JSON object": lambda: "{" * 100_000}
huge = st.sampled_from(sorted(HUGE)).map(lambda name: HUGE[name]())  # made on draw: reprs stay short
scalars = st.one_of(numbers, st.booleans(), st.none(), st.text(max_size=30))
values = st.one_of(scalars, huge, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=3), scalars, max_size=3))
response = st.fixed_dictionaries({}, optional={"target": st.one_of(values, st.sampled_from([16, 0.3, 1e-3, "adam", 3])),
                                               "weight": st.one_of(numbers, scalars)})
responses = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(DECISIONS), st.text(max_size=5)), st.one_of(response, values), max_size=4),
    values)
responses = st.one_of(responses, responses.map(as_json))
plausible = st.fixed_dictionaries({  # results the surrogates can learn from, so cycles fit and rank
    "default": st.floats(0, 1), "accuracy": st.floats(0.01, 1), "params": st.floats(1e3, 1e7),
    "macs": st.floats(1e5, 1e9), "latency_ms": st.floats(0.1, 10)})
hostile_dict = st.dictionaries(
    st.one_of(st.sampled_from(["default", "accuracy", "params", "macs", "latency_ms", "feasible"]),
              st.text(max_size=8), st.integers()),
    values, max_size=6)
reports = st.one_of(
    plausible, plausible,
    st.tuples(plausible, hostile_dict).map(lambda pair: {**pair[0], **pair[1]}),
    st.tuples(plausible, responses).map(lambda pair: {**pair[0], "responses": pair[1]}),
    hostile_dict, values)
profiled = st.one_of(st.fixed_dictionaries({"latency_ms": st.floats(0.1, 10)}),
                     st.dictionaries(st.sampled_from(["latency_ms", "energy_mj"]), values, max_size=2), values)


def engine(objective: str, profiler) -> GenSynth:
    return GenSynth(SPACE, Objective(objective), Requirements({"latency_ms": {"max": 5}}), profiler=profiler,
                    seed=0, population_size=3, pool_size=40)


def in_space(arch) -> bool:
    params = SPACE.to_parameters(arch)
    return SPACE.from_parameters(json.loads(json.dumps(params, allow_nan=False))) == arch


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(["default", "accuracy", "netscore", "netscore_hw"]), st.data())
def test_hostile_reports_never_escape_and_state_round_trips(objective, data):
    def profiler(params: dict):
        return data.draw(profiled, label="device answer")

    gs = engine(objective, profiler)
    for _ in range(data.draw(st.integers(1, 10), label="results")):
        arch = gs.ask()
        assert in_space(arch)
        gs.tell(arch, data.draw(st.one_of(reports, st.none()), label="report"))
        if data.draw(st.integers(0, 9), label="late result") == 0:
            gs.tell(arch, data.draw(reports, label="second report"))  # replaces the first
        for record in gs.records.values():
            assert record.score is None or abs(record.score) < float("inf")

    event(f"{len(gs.cycles)} cycles")
    event("some results scored" if len(gs.failed) < len(gs.records) else "every result failed")
    state = json.loads(json.dumps(gs.state_dict(), allow_nan=False))
    resumed = engine(objective, profiler)
    resumed.load_state_dict(state)
    assert json.loads(json.dumps(resumed.state_dict(), allow_nan=False)) == state
    assert len(resumed.records) == len(gs.records) and resumed.failed == gs.failed
    gs.profiler = resumed.profiler = lambda params: {"latency_ms": 1.0}  # the same device answer for both
    nxt = gs.ask()
    assert in_space(nxt) and resumed.ask() == nxt
