"""GenSynthStrategy end to end on NNI's default NAS engine: a real NNI manager, trial processes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytorch_lightning")  # nni.nas imports it

from nni_experiments import _env, free_port  # noqa: E402

TESTS = Path(__file__).parent


def test_a_training_service_experiment_learns_every_trial_from_the_reported_dict(tmp_path):
    code = ("import json, nas_support; "
            f"print('RESULT ' + json.dumps(nas_support.run_training_service({free_port()}, {str(tmp_path)!r})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=TESTS, capture_output=True, text=True, timeout=300,
                         env=_env())
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert out.returncode == 0 and lines, f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["jobs"] == ["SUCCEEDED"] * 4, result
    trained = [r for r in result["records"] if r["trained"]]
    assert len(trained) == 4
    for record in trained:
        sample = record["sample"]
        assert sample["toy/width"] * sample["toy/depth"] <= 16  # constraint honoured
        assert record["metrics"]["latency_ms"] <= 2.0 and record["metrics"]["default"] == 0.0
        assert record["metrics"]["accuracy"] > 0.5  # read from the event dict, not model.metric
    assert result["state"]["in_flight"] == []  # every result came back through the callbacks
