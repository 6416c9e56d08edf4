"""Open NNI's web UI of a running GenSynth experiment in headless Chromium, save screenshots, and
check that GenSynth's metrics show: the default metric and the keys of its dict results.

    python scripts/webui_screenshot.py --out results/webui            # starts a small experiment
    python scripts/webui_screenshot.py --out results/webui --attach 8080   # an experiment already running

Without --attach it starts the small fixture experiment (tests/fixtures/report, GenSynth tuner,
latency constraint) on a free 127.0.0.1 port, waits for a few final results, and stops it at the end.
Writes oview.png, detail.png, detail-metrics.png (the metric selector open, listing the dict
keys), detail.html (the rendered DOM) and webui.json (what was checked). Exit status 1 when a
check fails.

Checks: the REST API's final metric data carry the dict keys; the rendered /detail page has a
row per trial with a final result, showing its id and default metric; the web UI's metric
selector lists the numeric dict keys; no console error other than NNI's web UI failing to
fetch its Fluent UI fonts from res.cdn.office.net (it always tries; this machine is offline).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from nni_gensynth.results.assemble import decode_metric  # noqa: E402
from nni_gensynth.results.rest_source import get_json  # noqa: E402
from scripts.headless_chromium import HeadlessChromium  # noqa: E402
from scripts import small_experiment  # noqa: E402

# Numeric keys of the trial's final dict that the web UI's metric selector should offer.
NUMERIC_KEYS = ("default", "accuracy", "latency_ms", "energy_mj", "peak_mem_mb", "params", "macs", "netscore")
REPORTED_KEYS = NUMERIC_KEYS + ("latency_p90_ms", "energy_source", "feasible")
OFFLINE_FONT_HOSTS = ("cdn.office.net",)
ROWS_JS = "document.querySelectorAll('.ms-DetailsRow')"
METRIC_DROPDOWN_JS = "Array.from(document.querySelectorAll('.ms-Dropdown')).find(e => e.textContent.startsWith('default'))"


@dataclass
class WebUIResult:
    """What the web UI showed, and which checks failed (empty `failures`: all passed)."""

    port: int
    experiment_id: str
    final_trials: list[str] = field(default_factory=list)
    rest_final_keys: list[str] = field(default_factory=list)
    dom_rows: int = 0
    dom_trial_ids: list[str] = field(default_factory=list)
    metric_options: list[str] = field(default_factory=list)
    screenshots: list[str] = field(default_factory=list)
    ignored_errors: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _final_metrics(port: int) -> dict[str, dict[str, Any]]:
    finals = {}
    for row in get_json(port, "metric-data"):
        if row.get("type") == "FINAL":
            decoded = decode_metric(row.get("data"))
            if decoded is not None:
                finals[row["trialJobId"]] = decoded
    return finals


def capture(port: int, out_dir: Path, min_results: int = 3, timeout_s: float = 60.0) -> WebUIResult:
    """Screenshot and check the web UI of the experiment whose manager listens on `port`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = WebUIResult(port=port, experiment_id=get_json(port, "experiment").get("id", "?"))
    finals = _final_metrics(port)
    result.final_trials = sorted(finals)
    result.rest_final_keys = sorted(set().union(*finals.values())) if finals else []
    missing = [k for k in REPORTED_KEYS if any(k not in m for m in finals.values())]
    if len(finals) < min_results:
        result.failures.append(f"only {len(finals)} final results over REST, wanted {min_results}")
    if missing:
        result.failures.append(f"final metric data lack keys {missing}")
    with HeadlessChromium() as browser:
        overview = browser.open(f"http://127.0.0.1:{port}/oview", settle_s=1.0)
        overview.wait_for("document.body.innerText.includes('GenSynth')", timeout_s)
        overview.pump(1.0)
        result.screenshots.append(str(overview.screenshot(out_dir / "oview.png")))
        detail = browser.open(f"http://127.0.0.1:{port}/detail", settle_s=1.0)
        detail.wait_for(f"{ROWS_JS}.length >= {min(len(finals), min_results) or 1}", timeout_s)
        detail.pump(1.0)
        result.screenshots.append(str(detail.screenshot(out_dir / "detail.png")))
        dom = detail.dump_dom()
        (out_dir / "detail.html").write_text(dom, encoding="utf-8")
        result.dom_rows = detail.evaluate(f"{ROWS_JS}.length")
        rows_text = detail.evaluate(f"Array.from({ROWS_JS}).map(r => r.innerText).join('\\n')")
        result.dom_trial_ids = sorted(t for t in finals if t in rows_text)
        for trial_id, metrics in finals.items():
            if trial_id not in rows_text:
                result.failures.append(f"trial {trial_id} (final result over REST) has no row in the /detail page")
            elif f"{metrics['default']:.6f}".rstrip("0")[:6] not in rows_text:
                result.failures.append(f"trial {trial_id}'s default metric {metrics['default']} not shown in its row")
        detail.click(METRIC_DROPDOWN_JS)
        detail.wait_for("document.querySelectorAll('[role=option]').length > 1", 10)
        detail.pump(0.8)  # let the menu's fade-in finish before the screenshot
        result.metric_options = detail.evaluate("Array.from(document.querySelectorAll('[role=option]')).map(e => e.textContent)")
        result.screenshots.append(str(detail.screenshot(out_dir / "detail-metrics.png")))
        absent = [k for k in NUMERIC_KEYS if k not in result.metric_options]
        if absent:
            result.failures.append(f"the web UI's metric selector lacks {absent} (offers {result.metric_options})")
        for page in (overview, detail):
            for error in page.errors:
                if any(host in error for host in OFFLINE_FONT_HOSTS):
                    result.ignored_errors.append(error)
                else:
                    result.failures.append(f"page error: {error}")
    (out_dir / "webui.json").write_text(json.dumps(asdict(result), indent=1) + "\n", encoding="utf-8")
    return result


def run_small_experiment(out_dir: Path, min_results: int = 3, port: Optional[int] = None,
                         working_dir: Optional[Path] = None) -> WebUIResult:
    """Start the small GenSynth experiment, capture its web UI after `min_results` results, stop it."""
    with tempfile.TemporaryDirectory(prefix="gensynth-webui-") as tmp:
        experiment = small_experiment.start(Path(working_dir or tmp), port=port, max_trials=min_results + 2)
        try:
            small_experiment.wait(experiment, lambda e: small_experiment.finished_trials(e) >= min_results)
            return capture(experiment.port, out_dir, min_results=min_results)
        finally:
            experiment.stop()
            small_experiment.forget(experiment)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/webui"), help="folder for the screenshots")
    parser.add_argument("--attach", type=int, default=None, metavar="PORT",
                        help="use the experiment already running on this port instead of starting one")
    parser.add_argument("--port", type=int, default=None, help="port for the started experiment (default: free)")
    parser.add_argument("--results", type=int, default=3, help="final results to wait for (default 3)")
    args = parser.parse_args()
    if args.attach is not None:
        result = capture(args.attach, args.out, min_results=args.results)
    else:
        result = run_small_experiment(args.out, min_results=args.results, port=args.port)
    print(f"web UI of {result.experiment_id} on port {result.port}: {result.dom_rows} trial rows, metric selector "
          f"offers {result.metric_options}; screenshots: {', '.join(result.screenshots)}")
    for failure in result.failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
