"""index.html: both plots and a sortable table of every trial, in one self-contained page.

No CDN and no external script: the table is rendered here with every string escaped, and a
few lines of vanilla JS sort it when a header is clicked (numbers by their `data-value`,
missing values last). Works without JS too (the table is plain HTML).
"""
from __future__ import annotations

import html
import json
import math
from typing import Any, Optional, Sequence

from .analysis import METRIC_COLUMNS, best_feasible, is_feasible, utility
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


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _num_cell(value: Any, digits: int = 4) -> str:
    number = _number(value)
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
    cells += [_num_cell(final.get(key)) for key, _, _ in METRIC_COLUMNS]
    cells += [_text_cell(final.get("energy_source", "–")),
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


def render_index(record: ExperimentRecord, summary: dict[str, Any],
                 images: Sequence[tuple[str, str]] = (("pareto.png", "Accuracy against measured latency"),
                                                      ("cycles.png", "Generator cycles"))) -> str:
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
<h2>Plots</h2>
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
