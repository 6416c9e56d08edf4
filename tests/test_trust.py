"""θ_I's trust in probe responses: responses that predicted well gain weight, misleading ones lose it."""
from __future__ import annotations

import numpy as np

from nni_gensynth.engine import GenSynth, Objective, Requirements, SearchSpace
from nni_gensynth.engine.inquisitor import Inquisitor, Record
from nni_gensynth.engine.trust import ProbeTrust, decision_kind

N = 4
SPACE = SearchSpace({**{f"s{i}_width": {"_type": "choice", "_value": [8, 16, 32, 64]} for i in range(1, N + 1)},
                     **{f"b{i}_block": {"_type": "choice", "_value": ["keep", "skip"]} for i in range(1, N + 1)}})
PARENT = {**{f"s{i}_width": 32 for i in range(1, N + 1)}, **{f"b{i}_block": "keep" for i in range(1, N + 1)}}


def record(accuracy: float, responses: dict = None, **values) -> Record:
    return Record(SPACE.from_parameters({**PARENT, **values}), score=accuracy, metrics={"accuracy": accuracy},
                  responses=responses)


# The probes of a 32-wide parent say: every width can shrink to 16, every block can go.
RESPONSES = {**{f"s{i}_width": {"target": 16, "weight": 0.9} for i in range(1, N + 1)},
             **{f"b{i}_block": {"target": "skip", "weight": 0.9} for i in range(1, N + 1)}}


def stream(width_right: bool, block_right: bool, n: int = N) -> list[Record]:
    """A probed parent, then children that each follow one response: a narrower layer (which
    keeps accuracy when the width responses are right) or a skipped block (which keeps accuracy
    when the block responses are right)."""
    records = [record(0.95, RESPONSES)]
    for i in range(1, n + 1):
        records.append(record(0.95 if width_right else 0.80, RESPONSES, **{f"s{i}_width": 16}))
        records.append(record(0.95 if block_right else 0.80, RESPONSES, **{f"b{i}_block": "skip"}))
    return records


def test_responses_that_predicted_well_gain_trust_and_misleading_ones_lose_it():
    trust = ProbeTrust(SPACE)
    trust.learn(stream(width_right=True, block_right=False))
    assert trust.trust("s1_width") > 0.8 and trust.trust("b2_block") < 0.2
    assert set(trust.summary()) == {"block", "width"}
    again = ProbeTrust(SPACE)
    again.learn(stream(width_right=False, block_right=True))
    assert again.trust("s1_width") < 0.2 and again.trust("b1_block") > 0.8


def test_a_keep_response_is_right_when_changing_the_decision_costs_accuracy():
    keep = {"b1_block": {"target": "keep", "weight": 1.0}}
    records = [record(0.95, keep)] + [record(0.70, None, b1_block="skip", s1_width=w) for w in (8, 16, 64)]
    trust = ProbeTrust(SPACE)
    trust.learn(records)
    assert trust.trust("b1_block") > 0.6


def test_without_evidence_trust_is_half_and_each_network_is_judged_once():
    trust = ProbeTrust(SPACE)
    assert trust.trust("s1_width") == 0.5 and decision_kind("b3_expansion") == "expansion"
    records = stream(width_right=True, block_right=True, n=2)
    trust.learn(records)
    before = trust.state_dict()
    trust.learn(records)  # the same records again (every cycle sees all of them): no double count
    assert trust.state_dict() == before
    restored = ProbeTrust(SPACE)
    restored.load_state_dict(before)
    assert restored.summary() == trust.summary()
    restored.load_state_dict({"kinds": {"width": [float("nan"), 1], "x": "junk"}, "judged": [3]})  # damage ignored
    assert restored.summary() == trust.summary()
    for hostile in (10**400, -1, True, float("nan"), "3", [1]):  # more tests than judged networks, or not a count
        restored.load_state_dict({"tested": hostile})
        assert restored.tested == trust.tested


def test_distrusted_kinds_are_left_out_of_the_suggested_network():
    inquisitor = Inquisitor(SPACE, Requirements())
    records = stream(width_right=True, block_right=False)
    inquisitor.trust.learn(records)
    arch, confidence = inquisitor.suggested_architecture(records[0])
    values = SPACE.to_parameters(arch)
    assert all(values[f"s{i}_width"] == 16 for i in range(1, N + 1))  # trusted: followed
    assert all(values[f"b{i}_block"] == "keep" for i in range(1, N + 1))  # distrusted: ignored
    assert 0 < confidence <= 0.9


def test_the_engine_logs_trust_per_cycle_and_keeps_it_across_a_restart():
    engine = GenSynth(SPACE, Objective("accuracy"), population_size=3, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(9):
        arch = engine.ask()
        params = SPACE.to_parameters(arch)
        engine.tell(arch, {"default": 0.9, "accuracy": 0.9 - 0.1 * (params["b1_block"] == "skip") + 0.01 * rng.random(),
                           "responses": RESPONSES})
    assert len(engine.cycles) == 3 and set(engine.cycles[-1].trust) <= {"width", "block"}
    state = engine.state_dict()
    resumed = GenSynth(SPACE, Objective("accuracy"), population_size=3, seed=0)
    resumed.load_state_dict(state)
    assert resumed.inquisitor.trust.summary() == engine.inquisitor.trust.summary()
    assert resumed.cycles[-1].trust == engine.cycles[-1].trust


def test_a_keep_response_suggests_no_network_and_does_not_dilute_the_advice_of_the_others():
    """A response whose target is the network's own value changes nothing: a network whose probes
    all say "keep" gives no suggestion (it would join the elite twice), and the confidence of a
    suggestion is that of the responses that changed it."""
    inquisitor = Inquisitor(SPACE, Requirements())
    all_keep = {**{f"s{i}_width": {"target": 32, "weight": 1.0} for i in range(1, N + 1)},
                **{f"b{i}_block": {"target": "keep", "weight": 1.0} for i in range(1, N + 1)}}
    assert inquisitor.suggested_architecture(record(0.95, all_keep)) is None
    one_change = dict(all_keep, s2_width={"target": 16, "weight": 0.4})
    arch, confidence = inquisitor.suggested_architecture(record(0.95, one_change))
    assert SPACE.to_parameters(arch) == {**PARENT, "s2_width": 16}
    assert confidence == 0.4 * inquisitor.trust.trust("s2_width")


def test_a_network_that_follows_all_of_its_sources_advice_is_evidence_at_any_distance():
    """A child that changed 8 decisions, each toward the target its probed parent's response gave
    (the suggestion itself), tests that advice even though it is beyond `max_distance`; a child as
    far away that also changed a decision no response asked to change is no evidence."""
    parent = record(0.95, RESPONSES)
    advice = {**{f"s{i}_width": 16 for i in range(1, N + 1)}, **{f"b{i}_block": "skip" for i in range(1, N + 1)}}
    assert len(advice) > ProbeTrust(SPACE).max_distance
    for accuracy, kept in ((0.95, True), (0.80, False)):
        trust = ProbeTrust(SPACE)
        trust.learn([parent, record(accuracy, None, **advice)])
        assert (trust.trust("s1_width") > 0.5) is kept and (trust.trust("b1_block") > 0.5) is kept
        assert trust.tested == 1
        restored = ProbeTrust(SPACE)
        restored.load_state_dict(trust.state_dict())
        assert restored.tested == 1 and restored.summary() == trust.summary()
    wandering = ProbeTrust(SPACE)
    wandering.learn([parent, record(0.95, None, **dict(advice, s1_width=64))])  # 64: away from 16
    assert wandering.summary() == {} and wandering.tested == 0


def test_the_engine_offers_the_probes_suggestion_for_screening_and_the_ablation_does_not():
    def engine_after_one_probed_result(use_responses: bool) -> GenSynth:
        engine = GenSynth(SPACE, Objective("accuracy"), population_size=3, seed=0, use_responses=use_responses)
        arch = SPACE.from_parameters(PARENT)
        engine.tell(arch, {"default": 0.95, "accuracy": 0.95, "responses": RESPONSES})
        return engine

    suggestion = SPACE.from_parameters(
        {**{f"s{i}_width": 16 for i in range(1, N + 1)}, **{f"b{i}_block": "skip" for i in range(1, N + 1)}})
    suggested = SPACE.values_row(suggestion).tobytes()
    probing = engine_after_one_probed_result(True)
    assert suggested in {row.tobytes() for row in probing._pool_rows()}
    probing._exclude(suggestion)
    assert suggested not in {row.tobytes() for row in probing._pool_rows()}  # once tried, never again
    ablation = engine_after_one_probed_result(False)
    assert ablation._suggested_rows() == []


def test_advice_that_breaks_the_accuracy_requirement_did_not_keep_accuracy():
    """With a bar of 0.98 a "shrink" claim holds while the child stays within the parent's headroom
    above the bar: 0.9889 -> 0.9833 kept it; 0.9833 -> 0.9749 lost 0.84 points and the requirement,
    though 1 point (the tolerance without a bar) would have judged it held. The inquisitor takes
    the bar from the requirements; a trial reporting percent is judged on the same scale."""
    def judged(bar, parent_acc, child_acc):
        trust = ProbeTrust(SPACE, accuracy_bar=bar)
        trust.learn([record(parent_acc, RESPONSES), record(child_acc, None, s1_width=16)])
        return trust.trust("s1_width")

    assert judged(0.98, 0.9889, 0.9833) > 0.5 and judged(None, 0.9889, 0.9833) > 0.5
    assert judged(0.98, 0.9833, 0.9749) < 0.5 and judged(None, 0.9833, 0.9749) > 0.5
    assert judged(98.0, 98.33, 97.49) < 0.5 and judged(98.0, 98.89, 98.33) > 0.5
    assert judged(0.99, 0.9833, 0.9833) > 0.5  # a parent below the bar: only no loss keeps it
    assert judged(0.99, 0.9833, 0.9830) < 0.5
    for hostile in (10**400, float("nan"), float("inf"), 1e308, 150.0, -5.0, "0.9", [1], None):  # no evidence
        trust = ProbeTrust(SPACE, accuracy_bar=0.98)
        child = Record(SPACE.from_parameters({**PARENT, "s1_width": 16}), score=0.9, metrics={"accuracy": hostile})
        trust.learn([record(0.99, RESPONSES), child])
        assert trust.summary() == {} and trust.tested == 0
    assert Inquisitor(SPACE, Requirements({"accuracy": {"min": 0.98}, "latency_ms": {"max": 5}})).trust.accuracy_bar == 0.98
    assert Inquisitor(SPACE, Requirements({"latency_ms": {"max": 5}})).trust.accuracy_bar is None


def test_a_network_that_missed_the_requirements_gets_deeper_shrinking_rungs():
    """Under a strict bound one step of the probes' advice is too short: a probed network that
    missed the requirements also suggests rungs that take each decision its probes asked to shrink
    1, 2, ... options past the target (never past the smallest), grows stay at their target, and
    "keep" decisions and a continuous one follow the same rule; a feasible network gets one rung."""
    from nni_gensynth.engine.inquisitor import SHRINK_RUNGS
    space = SearchSpace({"s1_width": {"_type": "choice", "_value": [8, 16, 24, 32, 64]},
                         "s2_width": {"_type": "choice", "_value": [8, 16, 32]},
                         "b1_expansion": {"_type": "choice", "_value": [1, 2, 3, 4, 6]},
                         "b1_block": {"_type": "choice", "_value": ["keep", "skip"]},
                         "drop": {"_type": "uniform", "_value": [0.0, 1.0]}})
    values = {"s1_width": 64, "s2_width": 16, "b1_expansion": 6, "b1_block": "keep", "drop": 0.9}
    responses = {"s1_width": {"target": 32, "weight": 1.0}, "s2_width": {"target": 32, "weight": 1.0},
                 "b1_expansion": {"target": 6, "weight": 1.0}, "b1_block": {"target": "skip", "weight": 1.0},
                 "drop": {"target": 0.7, "weight": 1.0}}
    inquisitor = Inquisitor(space, Requirements({"macs": {"max": 1e6}}))

    def suggestions(feasible):
        probed = Record(space.from_parameters(values), score=0.9, metrics={"accuracy": 0.9, "macs": 2e6},
                        feasible=feasible, responses=responses)
        return [space.to_parameters(a) for a in inquisitor.probe_suggestions([probed])]

    rungs = suggestions(feasible=False)
    assert len(rungs) == SHRINK_RUNGS == 4
    assert [r["s1_width"] for r in rungs] == [32, 24, 16, 8]  # shrunk, then further
    assert all(r["s2_width"] == 32 and r["b1_expansion"] == 6 and r["b1_block"] == "skip" for r in rungs)
    assert [round(r["drop"], 6) for r in rungs] == [0.7, 0.5, 0.3, 0.1]
    assert suggestions(feasible=True) == rungs[:1]  # it met them: the advice as it is
    values["s1_width"], responses["s1_width"] = 16, {"target": 8, "weight": 1.0}
    deep = suggestions(feasible=False)  # nothing below 8: rungs past the smallest are one network
    assert [r["s1_width"] for r in deep] == [8, 8, 8, 8][:len(deep)] and len(deep) == 4  # drop keeps going
