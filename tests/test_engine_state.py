"""Saved state: a damaged or truncated checkpoint never crashes a resume (issue #11, item 8)."""
from __future__ import annotations

import copy
import json
import logging
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nni_gensynth.engine import GenSynth, Objective, Requirements, SearchSpace, StateError
from nni_gensynth.engine.state import load_state_file, save_state_file

from conftest import ALL_TYPES_SPACE


def latency(params: dict) -> float:
    return params["width"] / 16 + params["depth"]


def make(space: dict = ALL_TYPES_SPACE, seed: int = 0) -> GenSynth:
    return GenSynth(SearchSpace(space), Objective("accuracy"), Requirements({"latency_ms": {"max": 5}}),
                    profiler=lambda p: {"latency_ms": latency(p)}, seed=seed, population_size=4)


def taught(results: int = 11) -> GenSynth:
    """An engine with cycles, failures, probe responses, measurements and pending proposals."""
    engine = make()
    for i in range(results):
        arch = engine.ask()
        p = engine.space.to_parameters(arch)
        metrics = None if i % 5 == 3 else {"accuracy": 0.5 + p["dropout"], "latency_ms": latency(p),
                                             "responses": {"width": {"target": 16, "weight": 0.5}}}
        engine.tell(arch, metrics)
    engine.ask()  # pending at the stop
    return engine


def saved(engine: GenSynth) -> dict:
    return json.loads(json.dumps(engine.state_dict(), allow_nan=False))


def test_state_round_trips_exactly_and_learning_continues():
    first = taught()
    state = saved(first)
    assert state["pending"] and state["cycles"] and any(not r["trained"] for r in state["records"])
    again = make()
    again.load_state_dict(state)
    assert saved(again) == state
    assert [again.ask() for _ in range(3)] == [first.ask() for _ in range(3)]


def test_a_result_replaced_by_a_failure_leaves_no_stale_surrogate():
    """The only scored result is replaced by a failure after its cycle: θ_I must not keep
    predicting from it, or a resumed engine (which never saw it) proposes something else."""
    first = make()
    for metrics in ({}, {}, {}, {"accuracy": 0.9, "latency_ms": 2.0}):
        first.tell(first.ask(), metrics)
    assert len(first.cycles) == 1 and first.inquisitor.u_model.fitted
    first.tell(list(first.records)[-1], {})  # a late report replaces it
    again = make()
    again.load_state_dict(saved(first))
    assert again.ask() == first.ask()
    assert not first.inquisitor.u_model.fitted


def test_state_is_json_without_nan_even_when_learning_produced_some():
    engine = taught()
    engine.cycles[0].best_u = float("nan")
    engine.cycles[0].delta_norm = float("inf")
    state = json.loads(json.dumps(engine.state_dict(), allow_nan=False))
    assert state["cycles"][0]["best_u"] is None and state["cycles"][0]["delta_norm"] is None


def damaged(mutate) -> dict:
    state = saved(taught())
    mutate(state)
    return state


@pytest.mark.parametrize("what, mutate, check", [
    ("a record outside the space", lambda s: s["records"][0].update(parameters={"nope": 1}),
     lambda e, s: len(e.records) == len(s["records"]) - 1),
    ("garbage records", lambda s: s["records"].extend([None, 5, "x", {"parameters": None}, {}]),
     lambda e, s: len(e.records) == 11),
    ("garbage metrics", lambda s: s["records"][1].update(metrics={"accuracy": "NaN", "latency_ms": [1]}),
     lambda e, s: len(e.records) == 11 and not e.records[list(e.records)[1]].feasible),
    ("records not a list", lambda s: s.update(records={"a": 1}), lambda e, s: not e.records and e.measurements),
    ("a bad measurement", lambda s: s["measurements"][0].update(metrics=[1, 2]),
     lambda e, s: len(e.measurements) == len(s["measurements"]) - 1),
    ("a garbage generator", lambda s: s.update(generator={"logits": {"0": [float("nan")]}}),
     lambda e, s: len(e.records) == 11),
    ("a generator of another space", lambda s: s["generator"]["logits"].update({"999": [0.0]}),
     lambda e, s: len(e.records) == 11),
    ("NaN hyperparameters", lambda s: s["u_model"].update(log_noise=None), lambda e, s: len(e.records) == 11),
    ("a garbage RNG", lambda s: s.update(rng={"bit_generator": "MT19937", "state": 5}), lambda e, s: True),
    ("garbage cycles", lambda s: s["cycles"].extend([{"cycle": "x"}, None]),
     lambda e, s: len(e.cycles) == len(s["cycles"]) - 2),
    ("negative counters", lambda s: s.update(asks=-3, profiler_calls="many", results_in_cycle=10**9),
     lambda e, s: e._asks == 0 and e.profiler_calls == 0 and e._results_in_cycle == 3),
    ("garbage pending", lambda s: s["pending"].extend([None, {"width": 5}]), lambda e, s: len(e.pending) == 1),
])
def test_a_damaged_part_is_skipped_and_the_rest_loaded(what, mutate, check, caplog):
    state = damaged(mutate)
    engine = make()
    with caplog.at_level(logging.WARNING, logger="nni_gensynth.engine"):
        engine.load_state_dict(state)
    assert check(engine, state), what
    assert caplog.records, "a skipped part is logged"
    for _ in range(5):  # and the search goes on
        arch = engine.ask()
        engine.tell(arch, {"accuracy": 0.7, "latency_ms": 1.0})
    json.dumps(engine.state_dict(), allow_nan=False)


def test_a_state_with_only_theta_g_loads_it():
    state = saved(taught())
    for key in ("records", "measurements", "pending", "cycles", "u_model", "metric_models", "rng"):
        state.pop(key)
    engine = make()
    engine.load_state_dict(state)
    assert not engine.records and saved(engine)["generator"] == state["generator"]


@pytest.mark.parametrize("state", [
    None, [], "state", 5, {}, {"version": 2}, {"version": "1"},
    {"version": 1, "generator": None, "records": [{"parameters": {"zzz": 1}}]},
])
def test_nothing_usable_raises_state_error_and_changes_nothing(state):
    engine = make()
    before = saved(engine)
    with pytest.raises(StateError):
        engine.load_state_dict(state)
    assert saved(engine) == before
    assert isinstance(StateError(), ValueError)


def test_a_state_of_another_search_space_is_nothing_usable():
    other = {"lr": {"_type": "uniform", "_value": [0, 1]}}
    engine = GenSynth(SearchSpace(other), Objective("default"), seed=0)
    with pytest.raises(StateError, match="nothing usable"):
        engine.load_state_dict(saved(taught()))


# --- files --------------------------------------------------------------------------------------

def test_save_writes_atomically_with_nan_as_null(tmp_path):
    path = tmp_path / "gensynth" / "state.json"
    assert save_state_file(path, {"version": 1, "x": float("nan"), "y": [np.float64("inf"), np.int64(3)]})
    assert json.loads(path.read_text()) == {"version": 1, "x": None, "y": [None, 3]}
    assert save_state_file(path, {"version": 1, "x": 2.0})
    assert json.loads(path.read_text()) == {"version": 1, "x": 2.0}
    assert os.listdir(path.parent) == ["state.json"]  # no temporary file left behind


def test_save_failures_are_logged_not_raised(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert save_state_file(blocker / "state.json", {"version": 1}) is False
    assert save_state_file(tmp_path / "state.json", {"x": object()}) is False
    assert not (tmp_path / "state.json").exists()
    assert os.listdir(tmp_path) == ["file"]
    assert "could not be saved" in caplog.text


def test_load_of_a_missing_file_is_none(tmp_path):
    assert load_state_file(tmp_path / "state.json") is None
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("content", [b"", b"{", b"\x00\xff\xfe garbage", b"[1, 2]", b"null", b"42",
                                     b'{"version": 1, "records": [' * 3, b"[" * 100_000])
def test_an_unreadable_file_is_moved_aside(tmp_path, content, caplog):
    path = tmp_path / "state.json"
    path.write_bytes(content)
    assert load_state_file(path) is None
    assert not path.exists()
    (kept,) = tmp_path.glob("state.json.corrupt-*")
    assert kept.read_bytes() == content
    assert str(kept) in caplog.text
    path.write_bytes(content)
    assert load_state_file(path) is None
    assert len(list(tmp_path.glob("state.json.corrupt-*"))) == 2  # an earlier one is never overwritten


def test_every_truncation_of_a_state_file_resumes_or_starts_fresh(tmp_path):
    text = json.dumps(saved(taught()))
    path = tmp_path / "state.json"
    cuts = sorted({int(len(text) * f) for f in np.linspace(0, 1, 60)} | {len(text) - 1, len(text)})
    for cut in cuts:
        path.write_text(text[:cut])
        state = load_state_file(path)
        engine = make()
        if state is not None:
            engine.load_state_dict(state)  # only the complete text is a JSON object
        assert (state is not None) == (cut == len(text))
        engine.tell(engine.ask(), {"accuracy": 0.6, "latency_ms": 1.0})
        for kept in tmp_path.glob("state.json.corrupt-*"):
            kept.unlink()


# --- any damage ---------------------------------------------------------------------------------

hostile = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(), st.text(max_size=4),
                    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=3))


def locations(value, path=()) -> list:
    """Every (container path, key) in a JSON tree, for replacing one part of it."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found.append(path + (key,))
        found.extend(locations(child, path + (key,)))
    return found


BASE = None


def base_state() -> dict:
    global BASE
    if BASE is None:
        engine = taught(9)
        engine.generator.logits = {i: v[:4] for i, v in engine.generator.logits.items()}
        BASE = saved(engine)
        BASE["rng"]["state"] = {"state": 1, "inc": 1}  # a short tree: damage lands on what matters
    return BASE


@settings(max_examples=120, deadline=None, database=None)
@given(st.data())
def test_any_damage_loads_what_is_valid_or_raises_state_error(data):
    state = copy.deepcopy(base_state())
    where = locations(state)
    for _ in range(data.draw(st.integers(1, 4))):
        path = data.draw(st.sampled_from(where))
        parent = state
        try:
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = data.draw(hostile)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this part
    engine = make()
    try:
        engine.load_state_dict(state)
    except StateError:
        pass
    for _ in range(3):
        arch = engine.ask()
        engine.space.from_parameters(engine.space.to_parameters(arch))
        engine.tell(arch, {"accuracy": 0.7, "latency_ms": 1.0})
    text = json.dumps(engine.state_dict(), allow_nan=False)
    assert all(math.isfinite(v) for v in json.loads(text)["u_model"]["log_w"])
