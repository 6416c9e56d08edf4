"""benchmarks/demo_latency.py reads trial metrics from an experiment: hostile values never break it."""
from __future__ import annotations

from types import SimpleNamespace

from nni_gensynth.results.model import TrialRecord


def test_hostile_latencies_are_skipped_or_shown_as_missing():
    from benchmarks.demo_latency import bracketed, report, trial_rows

    record = SimpleNamespace(trials=[
        TrialRecord("huge", "SUCCEEDED", final={"latency_ms": 10**400, "latency_rse": 0.01}),
        TrialRecord("nan", "SUCCEEDED", final={"latency_ms": float("nan")}),
        TrialRecord("text", "SUCCEEDED", final={"latency_ms": "0.05", "latency_rse": "low"}),
        TrialRecord("none", "FAILED", final=None),
        TrialRecord("ok", "SUCCEEDED", final={"latency_ms": 0.047, "latency_rse": float("inf"),
                                               "latency_ms_upper": [1]}),
    ])
    rows = trial_rows(record)
    assert [r["trial"] for r in rows] == ["ok"]  # only a finite latency is a row
    assert rows[0]["latency_rse"] is None and rows[0]["latency_ms_upper"] is None
    assert bracketed(None, [0.046, 0.048]) is None
    assert bracketed(0.047, [0.046, 0.048]) is True and bracketed(0.05, [0.046, 0.048]) is False
    text = report({"experiment_id": "x", "profile": "host-cpu", "trials": rows, "rse_target": 0.03,
                   "trials_over_target": ["ok"],
                   "best": {"trial": "ok", "recorded_ms": None, "recorded_rse": None, "again_ms": [0.046, 0.048],
                            "again_median_ms": 0.047, "bracketed": None}})
    assert "NOT met: ok" in text and "no recorded latency to bracket" in text
