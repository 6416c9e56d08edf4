"""Multi-objective mode: hypervolume against hand-computed fronts, `objectives` parsing, and the
engine and the NNI tuner growing a front of accuracy against measured latency."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nni_gensynth.engine.front import ObjectivesError, parse_objectives, pareto_fitness, spread_order
from nni_gensynth.engine.generator import Generator
from nni_gensynth.engine.gensynth import GenSynth
from nni_gensynth.engine.hypervolume import contributions, hv_improvement, hypervolume, non_dominated
from nni_gensynth.engine.objective import Requirements
from nni_gensynth.engine.space import SearchSpace

# -- hypervolume, by hand -------------------------------------------------------------------------


def test_two_objective_staircase():
    front = [(1, 3), (2, 2), (3, 1)]
    assert hypervolume(front, (0, 0)) == pytest.approx(6.0)  # steps of 3, 2 and 1
    assert hypervolume(front + [(1, 1), (2, 2)], (0, 0)) == pytest.approx(6.0)  # dominated, repeated
    assert hypervolume(front, (1.5, 0)) == pytest.approx(2.0)  # (1, 3) does not beat the reference
    assert hypervolume([], (0, 0)) == 0.0
    assert hv_improvement(front, [(2, 3), (1, 1), (4, 4), (-1, 9)], (0, 0)) == pytest.approx([1.0, 0.0, 10.0, 0.0])


def test_three_objective_boxes():
    assert hypervolume([(1, 1, 1)], (0, 0, 0)) == pytest.approx(1.0)
    # three boxes of volume 2, pairwise overlaps of 1, a common cube of 1: 6 - 3 + 1
    assert hypervolume([(2, 1, 1), (1, 2, 1), (1, 1, 2)], (0, 0, 0)) == pytest.approx(4.0)
    assert hypervolume([(1, 1, 1), (2, 0.5, 0.5)], (0, 0, 0)) == pytest.approx(1.25)
    assert contributions([(2, 1, 1), (1, 2, 1), (1, 1, 2), (1, 1, 1)], (0, 0, 0)) == pytest.approx([1, 1, 1, 0])


def test_non_dominated_keeps_one_of_equal_points():
    mask = non_dominated([(1, 2), (1, 2), (0, 1), (2, 1)])
    assert mask.tolist() == [True, False, False, True]


def _brute_force(points, ref, grid=40):
    """Hypervolume by counting cells of a grid through every coordinate (exact for boxes)."""
    points = np.asarray(points, dtype=float)
    axes = [np.unique(np.concatenate(([r], points[:, i][points[:, i] > r]))) for i, r in enumerate(ref)]
    total = 0.0
    for cell in itertools.product(*[range(len(a) - 1) for a in axes]):
        upper = np.array([axes[i][c + 1] for i, c in enumerate(cell)])
        lower = np.array([axes[i][c] for i, c in enumerate(cell)])
        if np.any(np.all(points >= upper, axis=1)):
            total += float(np.prod(upper - lower))
    return total


coordinate = st.integers(min_value=-2, max_value=6).map(float)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 3).flatmap(lambda d: st.lists(st.tuples(*[coordinate] * d), min_size=0, max_size=7)),
       st.data())
def test_hypervolume_matches_brute_force_and_adds_up(points, data):
    dims = len(points[0]) if points else 2
    ref = tuple(data.draw(st.tuples(*[st.integers(-3, 1).map(float)] * dims)))
    candidate = data.draw(st.tuples(*[coordinate] * dims))
    hv = hypervolume(points, ref) if points else 0.0
    if points:
        assert hv == pytest.approx(_brute_force(points, ref))
    with_candidate = hypervolume(list(points) + [candidate], ref)
    gain = hv_improvement(points if points else np.zeros((0, dims)), [candidate], ref)[0]
    assert gain >= 0 and with_candidate == pytest.approx(hv + gain)  # what a point adds is the difference


def test_bad_points_are_named_errors():
    with pytest.raises(ValueError, match="2-d"):
        hypervolume([[[1, 2]]], (0, 0))
    with pytest.raises(ValueError, match="finite"):
        hypervolume([(1, float("nan"))], (0, 0))
    with pytest.raises(ValueError, match="objectives"):
        hypervolume([(1, 2, 3, 4)], (0, 0, 0, 0))


def test_fitness_ranks_layers_and_spread_order_covers_the_front():
    points = np.array([(1, 3), (2, 2), (3, 1), (1, 1), (2.5, 2.5)])
    fitness = pareto_fitness(points, np.zeros(2))
    assert min(fitness[[0, 2, 4]]) > max(fitness[[1, 3]])  # (2, 2) is dominated by (2.5, 2.5)
    order = spread_order(points, np.zeros(2))
    assert order[0] == 4 and set(order[:3]) == {0, 2, 4} and sorted(order) == list(range(5))


# -- objectives as classArgs give them -----------------------------------------------------------


def test_objectives_parse_both_spellings():
    listed = parse_objectives([{"accuracy": "max"}, {"latency_ms": "min"}])
    mapped = parse_objectives({"accuracy": "maximize", "latency_ms": "minimize"}, reference={"latency_ms": 25})
    assert listed.metrics == mapped.metrics == ("accuracy", "latency_ms")
    assert listed.describe() == [{"accuracy": "max"}, {"latency_ms": "min"}]
    assert listed.point({"accuracy": 0.9, "latency_ms": 3.0}).tolist() == [0.9, -3.0]
    assert listed.point({"accuracy": 0.9}) is None and listed.score({"latency_ms": 1.0}) is None
    assert mapped.reference_point(Requirements(), np.zeros((0, 2)))[1] == -25.0


@pytest.mark.parametrize("objectives, reference, named", [
    ("accuracy", None, "objectives"),
    ([{"accuracy": "max"}], None, "objectives"),
    ([{"a": "max"}, {"b": "max"}, {"c": "min"}, {"d": "min"}], None, "objectives"),
    ([{"accuracy": "up"}, {"latency_ms": "min"}], None, "objectives"),
    ([{"accuracy": "max", "latency_ms": "min"}], None, "objectives"),
    ([{"accuracy": "max"}, {"accuracy": "min"}], None, "objectives"),
    ([{"accuracy": "max"}, {"latency_ms": "min"}], {"energy_mj": 1}, "reference"),
    ([{"accuracy": "max"}, {"latency_ms": "min"}], {"latency_ms": float("nan")}, "reference"),
    ([{"accuracy": "max"}, {"latency_ms": "min"}], {"latency_ms": 10**400}, "reference"),
    ([{"accuracy": "max"}, {"latency_ms": "min"}], {"latency_ms": True}, "reference"),
    ([{"accuracy": "max"}, {"latency_ms": "min"}], [25], "reference"),
])
def test_bad_objectives_are_rejected_naming_the_argument(objectives, reference, named):
    with pytest.raises(ObjectivesError, match=named):
        parse_objectives(objectives, reference)


# -- the engine growing a front ------------------------------------------------------------------

SPACE = {f"w{i}": {"_type": "choice", "_value": [8, 16, 24, 32, 48, 64]} for i in range(4)}
SPACE["k"] = {"_type": "choice", "_value": [3, 5, 7]}
LIMIT_MS = 12.0


def latency(p: dict) -> float:
    return sum(p[f"w{i}"] for i in range(4)) * p["k"] / 60.0


def accuracy(p: dict) -> float:
    """Wider is better with diminishing returns, kernel 5 best: a trade-off against latency."""
    return float(sum(np.log(p[f"w{i}"]) for i in range(4)) / 17 + (p["k"] == 5) * 0.05 + 0.01 * (p["w2"] == 24))


def feasible_front_hv(trained: list[dict], reference=(0.0, -LIMIT_MS)) -> float:
    points = [(accuracy(p), -latency(p)) for p in trained if latency(p) <= LIMIT_MS]
    return hypervolume(points, reference) if points else 0.0


def run_multi(seed: int, budget: int):
    space = SearchSpace(SPACE)
    engine = GenSynth(space, parse_objectives([{"accuracy": "max"}, {"latency_ms": "min"}], {"accuracy": 0.0}),
                      Requirements({"latency_ms": {"max": LIMIT_MS}}), seed=seed, population_size=8,
                      profiler=lambda p: {"latency_ms": latency(p)})
    trained = []
    for _ in range(budget):
        arch = engine.ask()
        p = space.to_parameters(arch)
        trained.append(p)
        engine.tell(arch, {"accuracy": accuracy(p), "latency_ms": latency(p)})
    return engine, trained


def test_multi_objective_engine_grows_a_better_front_than_random_sampling():
    budget, seeds = 40, range(3)
    space = SearchSpace(SPACE)
    ours, theirs = [], []
    for seed in seeds:
        engine, trained = run_multi(seed, budget)
        ours.append(feasible_front_hv(trained))
        rng = np.random.default_rng(seed)
        theirs.append(feasible_front_hv([space.to_parameters(Generator(space).sample(rng)) for _ in range(budget)]))
        hv = [c.hypervolume for c in engine.cycles]
        assert all(v is not None for v in hv) and hv == sorted(hv)  # the reference is fixed: the front only grows
        assert engine.hypervolume() == pytest.approx(feasible_front_hv(trained))
    assert np.mean(ours) > np.mean(theirs), (ours, theirs)


def test_best_and_generate_give_the_front_spread_along_it():
    engine, trained = run_multi(0, 32)
    best = engine.best(4)
    points = np.array([(accuracy(engine.space.to_parameters(r.arch)), -latency(engine.space.to_parameters(r.arch)))
                       for r in best])
    assert non_dominated(points).all()  # the front comes first
    span = np.ptp([p[1] for p in points])
    all_front = [(accuracy(p), -latency(p)) for p in trained if latency(p) <= LIMIT_MS]
    front = np.array(all_front)[non_dominated(all_front)]
    assert span >= 0.5 * np.ptp(front[:, 1])  # four of them already cover half the latency range
    generated = engine.generate(6)
    assert len(set(generated)) == 6
    assert all(latency(engine.space.to_parameters(a)) <= LIMIT_MS for a in generated)


def test_multi_objective_state_round_trip_keeps_the_hypervolume():
    engine, _ = run_multi(1, 24)
    again = GenSynth(engine.space, engine.objective, engine.requirements, seed=1, population_size=8,
                     profiler=engine.profiler)
    again.load_state_dict(engine.state_dict())
    assert again.hypervolume() == pytest.approx(engine.hypervolume())
    assert [c.hypervolume for c in again.cycles] == [c.hypervolume for c in engine.cycles]
    assert again.ask() == engine.ask()  # learning resumes where it stopped


def test_a_result_missing_an_objective_is_a_failure():
    space = SearchSpace(SPACE)
    engine = GenSynth(space, parse_objectives({"accuracy": "max", "latency_ms": "min"}), seed=0, population_size=4)
    arch = engine.ask()
    engine.tell(arch, {"accuracy": 0.9})  # no latency, and no profiler measured it
    assert arch in engine.failed and engine.hypervolume() is None


# -- through the NNI tuner API --------------------------------------------------------------------


def test_multi_objective_mode_through_the_nni_tuner_api(tmp_path, monkeypatch):
    from nni_gensynth.tuner import GenSynthTuner

    tuner = GenSynthTuner(objectives=[{"accuracy": "max"}, {"latency_ms": "min"}], reference={"accuracy": 0.0},
                          constraints={"latency_ms": {"max": LIMIT_MS}}, profiler=lambda p: {"latency_ms": latency(p)},
                          population_size=4, seed=0)
    monkeypatch.setattr(tuner, "get_checkpoint_path", lambda: str(tmp_path))
    tuner.update_search_space(SPACE)
    for parameter_id in range(16):
        p = tuner.generate_parameters(parameter_id)
        tuner.receive_trial_result(parameter_id, p, {"default": accuracy(p), "accuracy": accuracy(p),
                                                     "latency_ms": latency(p)})
        tuner.trial_end(parameter_id, True)
    assert len(tuner.engine.cycles) == 4 and tuner.engine.cycles[-1].hypervolume > 0
    import json

    saved = json.loads((tmp_path / "gensynth" / "state.json").read_text())
    assert saved["tuner"]["objectives"] == [{"accuracy": "max"}, {"latency_ms": "min"}]
    assert saved["cycles"][-1]["hypervolume"] == pytest.approx(tuner.engine.hypervolume())


@pytest.mark.parametrize("kwargs, named", [
    ({"objectives": [{"accuracy": "up"}, {"latency_ms": "min"}]}, "objectives"),
    ({"objectives": [{"test_accuracy": "max"}, {"latency_ms": "min"}]}, "objectives"),
    ({"objectives": "accuracy"}, "objectives"),
    ({"reference": {"latency_ms": 25}}, "reference"),
    ({"objectives": [{"accuracy": "max"}, {"latency_ms": "min"}], "reference": {"latency_ms": 10**400}}, "reference"),
])
def test_bad_objectives_classargs_are_rejected(kwargs, named):
    from nni_gensynth.tuner import GenSynthTuner

    with pytest.raises(ValueError, match=named):
        GenSynthTuner(**kwargs)
