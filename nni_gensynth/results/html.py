"""index.html: both plots and a sortable table of every trial, in one self-contained page.

No CDN and no external script: the table is rendered here with every string escaped, and a
few lines of vanilla JS sort it when a header is clicked (numbers by their `data-value`,
missing values last). Works without JS too (the table is plain HTML).
"""
from __future__ import annotations

import html
import json
from typing import Any, Optional, Sequence

from .analysis import METRIC_COLUMNS, best_feasible, is_feasible, utility
from ..engine.metrics import finite_float
from ..engine.objective import UPPER_SUFFIX
from .model import ExperimentRecord, TrialRecord

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
.plots img { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; white-space: nowrap; }
td.text { text-align: left; font-family: monospace; font-size: 0.9em; }
td.params { white-space: normal; min-width: 28em; max-width: 48em; }
th { background: #f0f0f0; cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " \\25B2"; } th[aria-sort=descending]::after { content: " \\25BC"; }
tr.feasible td:first-child { border-left: 4px solid #1b7837; }
tr.infeasible td:first-child { border-left: 4px solid #b2182b; }
tr.best { background: #eef7ee; }
.emulated { color: #b35806; font-weight: bold; }
.warnings { border-left: 4px solid #e08214; padding-left: 0.8em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; } dt { font-weight: bold; }
"""

# Sorting: numbers by data-value (missing last in both directions), text by locale order.
_SCRIPT = """
(function () {
  "use strict";
  var table = document.getElementById("trials");
  if (!table) { return; }
  var headers = table.tHead.rows[0].cells;
  function keyOf(row, index) {
    var cell = row.cells[index];
    var raw = cell.getAttribute("data-value");
    if (raw === null) { return cell.textContent; }
    return raw === "" ? null : Number(raw);
  }
  function sortBy(index) {
    var header = headers[index];
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    for (var i = 0; i < headers.length; i++) { headers[i].removeAttribute("aria-sort"); }
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var ka = keyOf(a, index), kb = keyOf(b, index);
      if (ka === null || kb === null) { return (ka === null) - (kb === null); }
      var order = typeof ka === "number" ? ka - kb : String(ka).localeCompare(String(kb));
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  Array.prototype.forEach.call(headers, function (header, index) {
    header.addEventListener("click", function () { sortBy(index); });
    header.title = "sort by " + header.textContent;
  });
})();
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num_cell(value: Any, digits: int = 4) -> str:
    number = finite_float(value)
    if number is None:
        return '<td data-value="">–</td>'
    text = f"{int(number):,}" if float(number).is_integer() and abs(number) >= 1000 else f"{number:.{digits}g}"
    return f'<td data-value="{number!r}">{_esc(text)}</td>'


def _text_cell(value: Any) -> str:
    return f'<td class="text">{_esc(value)}</td>'


def _parameters_text(trial: TrialRecord) -> str:
    arch = (trial.final or {}).get("arch")
    if isinstance(arch, str) and arch:
        return arch
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={json.dumps(v)}"
                     for k, v in trial.parameters.items())


def _emulated(trial: TrialRecord) -> bool:
    """Whether the trial's figures come from an emulated device (``emulated``, or a second
    profile's ``<backend>_emulated``): a plumbing check, never a figure."""
    return any(v is True and (k == "emulated" or k.endswith("_emulated")) for k, v in (trial.final or {}).items())


def _accuracy_cell(final: dict[str, Any], key: str) -> str:
    """An accuracy with its 95% interval and the number of examples, when the trial reported them."""
    value, low, high, n = (finite_float(final.get(k)) for k in (key, f"{key}_low", f"{key}_high", f"{key}_n"))
    if value is None:
        return _num_cell(None)
    text = f"{value:.4f}"
    if low is not None and high is not None:
        text += f" [{low:.3f}, {high:.3f}]" + (f" n={int(n)}" if n is not None else "")
    return f'<td data-value="{value!r}">{_esc(text)}</td>'


def _latency_cell(final: dict[str, Any]) -> str:
    """A median latency, with the upper end of its 95% interval when the measurement was noisy
    (the end a `max` requirement was judged on)."""
    value, upper = finite_float(final.get("latency_ms")), finite_float(final.get("latency_ms" + UPPER_SUFFIX))
    if value is None or upper is None:
        return _num_cell(final.get("latency_ms"))
    text = f"{value:.4g} (noisy: up to {upper:.4g})"
    return f'<td data-value="{value!r}" title="95% upper bound of the median">{_esc(text)}</td>'


def _cell(final: dict[str, Any], key: str) -> str:
    if key.endswith("accuracy"):
        return _accuracy_cell(final, key)
    return _latency_cell(final) if key == "latency_ms" else _num_cell(final.get(key))


def _row(record: ExperimentRecord, trial: TrialRecord, best_id: Optional[str]) -> str:
    feasible = is_feasible(record, trial)
    has_final = trial.final is not None
    classes = ["feasible" if feasible else ("infeasible" if has_final else "pending")]
    if trial.trial_id == best_id:
        classes.append("best")
    cells = [f'<td class="text">{_esc(trial.trial_id)}</td>', _text_cell(trial.status),
             _text_cell("yes" if feasible else ("no" if has_final else "–")),
             _num_cell(utility(record, trial))]
    final = trial.final or {}
    cells += [_cell(final, key) for key, _, _ in METRIC_COLUMNS]
    source = _text_cell(final.get("energy_source", "–"))
    if _emulated(trial):
        source = f'<td class="text">{_esc(final.get("energy_source", "–"))} <span class="emulated">EMULATED</span></td>'
    if final.get("device_drifted") is True:  # a pool device whose medians drift from its peers'
        drift = finite_float(final.get("device_drift"))
        title = f"{final.get('device', '?')} drifts {drift:+.0%} from its pool peers" if drift is not None else ""
        source = source.replace("</td>", f' <span class="emulated" title="{_esc(title)}">DRIFT</span></td>')
    cells += [source,
              f'<td class="text params">{_esc(_parameters_text(trial))}</td>']
    return f'<tr class="{" ".join(classes)}">{"".join(cells)}</tr>'


def _requirements_text(record: ExperimentRecord) -> str:
    parts = []
    for metric, bound in record.constraints.items():
        if "min" in bound:
            parts.append(f"{metric} ≥ {bound['min']:g}")
        if "max" in bound:
            parts.append(f"{metric} ≤ {bound['max']:g}")
    return ", ".join(parts) or "none"


def _warnings_section(summary: dict[str, Any]) -> str:
    """What makes the search learn nothing (an objective or constraint no trial reports)."""
    warnings = summary.get("warnings") or []
    if not warnings:
        return ""
    items = "".join(f"<li>{_esc(w)}</li>" for w in warnings)
    return f'<div class="warnings"><h2>Warnings</h2><ul>{items}</ul></div>'


def _prototype_section(summary: dict[str, Any]) -> str:
    """Prototype against the best feasible network, with the ratios prototype / best."""
    comparison = summary.get("prototype")
    if not comparison:
        return ""
    from .analysis import COMPARED, RATIOS

    best = comparison.get("best") or {}
    ratios = comparison.get("ratios") or {}
    head = "".join(f"<th scope=\"col\">{_esc(k)}</th>" for k in COMPARED)
    proto_row = "".join(_num_cell(comparison["prototype"].get(k)) for k in COMPARED)
    best_row = "".join(_num_cell(best.get(k)) for k in COMPARED) if best else f'<td colspan="{len(COMPARED)}">none feasible yet</td>'
    ratio_row = "".join(_num_cell(ratios.get(k), 3) if k in RATIOS else "<td></td>" for k in COMPARED)
    change = comparison.get("accuracy_change_points")
    note = (f"accuracy {change:+.2f} points against the prototype" if isinstance(change, (int, float)) else "")
    return f"""<h2>Prototype vs best feasible</h2>
<p>The prototype was evaluated by the tuner first (its figures define the relative requirements). {_esc(note)}</p>
<table id="prototype">
<thead><tr><th scope="col">network</th>{head}</tr></thead>
<tbody>
<tr><td class="text">prototype</td>{proto_row}</tr>
<tr><td class="text">best feasible {_esc(best.get("trial_id", ""))}</td>{best_row}</tr>
<tr><td class="text">prototype / best</td>{ratio_row}</tr>
</tbody>
</table>
"""


IMAGES = (("pareto.png", "Accuracy against measured latency"), ("cycles.png", "Generator cycles"))


def render_index(record: ExperimentRecord, summary: dict[str, Any],
                 images: Sequence[tuple[str, str]] = IMAGES) -> str:
    """The report page (a complete HTML document as a string)."""
    best = best_feasible(record)
    counts = summary["counts"]
    headers = ["trial", "status", "feasible", f"U ({record.objective.metric})"]
    headers += [f"{header} ({unit})" if unit not in ("count", "NNI default metric") else header
                for _, header, unit in METRIC_COLUMNS]
    headers += ["energy source", "architecture / parameters"]
    head = "".join(f"<th scope=\"col\">{_esc(h)}</th>" for h in headers)
    rows = "\n".join(_row(record, t, best.trial_id if best else None) for t in record.trials)
    plots = "".join(f'<figure><img src="{_esc(src)}" alt="{_esc(alt)}"><figcaption>{_esc(alt)}</figcaption></figure>'
                    for src, alt in images)
    best_text = (f"{_esc(best.trial_id)} — U {utility(record, best):.4g}, accuracy "
                 f"{_esc(best.final.get('accuracy'))}, latency {_esc(best.final.get('latency_ms'))} ms"
                 if best else "none yet")
    facts = [("experiment", f"{record.experiment_id} {record.name}".strip()),
             ("status", f"{record.status} (read from {'the running NNI manager' if record.source == 'rest' else 'its database'})"),
             ("tuner", f"{record.tuner_name or 'unknown'}; U = {record.objective.metric} ({record.objective.mode})"),
             ("requirements", _requirements_text(record)),
             ("trials", f"{counts['trials']} ({', '.join(f'{k} {v}' for k, v in counts['by_status'].items()) or 'none'}); "
                        f"{counts['feasible']} feasible, {counts['infeasible']} infeasible"),
             ("generator cycles", str(counts["cycles"]))]
    emulated = sum(_emulated(t) for t in record.trials)
    if emulated:
        facts.append(("device", f"EMULATED: {emulated} trial(s) measured on an emulated device (qemu-user); their "
                                f"latency and energy are the emulator's, not the real board's"))
    fact_html = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in facts)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GenSynth report — {_esc(record.experiment_id)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>GenSynth report — experiment {_esc(record.experiment_id)}</h1>
<dl>{fact_html}<dt>best feasible</dt><dd>{best_text}</dd></dl>
{_warnings_section(summary)}
{_prototype_section(summary)}<h2>Plots</h2>
<div class="plots">{plots}</div>
<h2>Trials</h2>
<p>Click a column header to sort. Green edge: meets the requirements; red: does not. Details in summary.json.</p>
<table id="trials">
<thead><tr>{head}</tr></thead>
<tbody>
{rows}
</tbody>
</table>
<script>{_SCRIPT}</script>
</body>
</html>
"""
