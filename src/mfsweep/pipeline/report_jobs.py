"""The bodies of the report table rules' scripts: each takes ``snakemake``.

Snakemake's HTML report shows an ``.html`` result inside the page (a ``.csv`` only
gets a download button), so the tables are small self-contained HTML files: a
sortable table (click a column heading; numbers sort as numbers, blanks last), with
no external resource. Per model (wildcards dataset, split, model):

- ``trials.html``: every row of ``trials.parquet`` (one a trial x fold), ranked by
  the trial's mean validation metric, the selected trial highlighted;
- ``best.html``: the selected configuration from ``best.json``: its parameters and
  its validation and test metrics (mean, min and max over folds).
"""

from __future__ import annotations

import html
import logging
import math

import pandas as pd

from mfsweep.io import atomic_path, read_json, read_parquet
from mfsweep.pipeline.job import job
from mfsweep.trials import PARAM, TEST, VALID, flatten_params, metric_order, ranked_rows
from mfsweep.values import is_float, is_number, missing, number_text

log = logging.getLogger("mfsweep.report")

#: Columns of trials.parquet shown first (then params, stop, metrics, costs), in this order.
LEAD_COLUMNS = ("rank", "trial", "fold")
STOP_COLUMNS = ("stop_reason", "epochs_completed", "best_epoch")
COST_COLUMNS = ("train_seconds", "cpu_seconds", "validation_seconds", "evaluate_seconds", "threads")
SIGNIFICANT = 4  # digits shown for a float; the full value sorts and shows on hover
LONG_TEXT = 80  # characters of a text cell shown (an error message); the whole on hover

STYLE = """
body { font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 12px; color: #1e293b; }
h1 { font-size: 16px; margin: 0 0 4px; }
h2 { font-size: 14px; margin: 16px 0 4px; }
p { margin: 4px 0 8px; color: #475569; }
.scroll { overflow: auto; max-height: 85vh; width: fit-content; max-width: 100%; border: 1px solid #cbd5e1; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e2e8f0; white-space: nowrap; }
th { position: sticky; top: 0; background: #f1f5f9; text-align: left; cursor: pointer; user-select: none; }
th:hover { background: #e2e8f0; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
tr.best td { background: #fef3c7; }
tr.unusable td { color: #b91c1c; }
input[type=search] { margin: 4px 0 8px; padding: 3px 6px; width: 260px; }
"""

# Sorting: on a cell's data-sort (its full value, where the text shows less) or else its text;
# numbers compare as numbers, text as text; blanks go last either way. Hovering a shortened cell
# shows its full value. Filtering: rows whose text contains every word typed.
SCRIPT = """
function cellKey(row, col, numeric) {
  const cell = row.cells[col];
  const text = cell.dataset.sort ?? cell.textContent;
  if (text === "") return null;
  return numeric ? parseFloat(text) : text.toLowerCase();
}
function sortTable(table, col, th) {
  const numeric = th.dataset.type === "number";
  const ascending = th.getAttribute("aria-sort") !== "ascending";
  table.querySelectorAll("th").forEach(h => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows).map((row, i) => [cellKey(row, col, numeric), i, row]);
  rows.sort((a, b) => {
    if (a[0] === null || b[0] === null) return (a[0] === null) - (b[0] === null) || a[1] - b[1];
    const order = a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
    return (ascending ? order : -order) || a[1] - b[1];
  });
  rows.forEach(entry => body.appendChild(entry[2]));
}
function filterTable(table, query, counter) {
  const words = query.toLowerCase().split(/\\s+/).filter(Boolean);
  let shown = 0;
  Array.from(table.tBodies[0].rows).forEach(row => {
    const text = row.textContent.toLowerCase();
    const keep = words.every(word => text.includes(word));
    row.hidden = !keep;
    shown += keep;
  });
  counter.textContent = shown + " of " + table.tBodies[0].rows.length + " rows";
}
document.querySelectorAll("table.sortable").forEach(table => {
  table.querySelectorAll("th").forEach((th, col) => th.addEventListener("click", () => sortTable(table, col, th)));
});
document.addEventListener("mouseover", event => {
  const cell = event.target.closest ? event.target.closest("td[data-sort]") : null;
  if (cell && !cell.title) cell.title = cell.dataset.sort;
});
document.querySelectorAll("input[data-filters]").forEach(input => {
  const table = document.getElementById(input.dataset.filters);
  const counter = document.getElementById(input.dataset.counter);
  input.addEventListener("input", () => filterTable(table, input.value, counter));
});
"""


# ----- script bodies ---------------------------------------------------------------------------
def trials_table(snakemake) -> None:
    with job(snakemake):
        trials = read_parquet(snakemake.input.trials)
        best = read_json(snakemake.input.best)
        write_html(trials_page(trials, best, context(snakemake.wildcards)), snakemake.output[0])
        log.info("%s: %d trial x fold rows, %d columns", snakemake.output[0], len(trials), trials.shape[1])


def best_table(snakemake) -> None:
    with job(snakemake):
        best = read_json(snakemake.input.best)
        write_html(best_page(best, context(snakemake.wildcards)), snakemake.output[0])
        log.info("%s: best trial %s", snakemake.output[0], best.get("trial"))


def context(wildcards) -> str:
    return f"{wildcards.model} on {wildcards.dataset} / {wildcards.split}"


def write_html(text: str, path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


# ----- the trials table ------------------------------------------------------------------------
def ranked_trials(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``trials`` ranked (``mfsweep.trials.ranked_rows``), columns in reading order: rank,
    trial, fold, the mean, params, stop, validation and test metrics, costs, then the rest."""
    frame = ranked_rows(trials, metric)
    return frame[column_order(frame, f"mean {VALID}{metric}")]


def column_order(frame: pd.DataFrame, mean_column: str) -> list[str]:
    columns = list(frame.columns)

    def metrics(prefix: str) -> list[str]:
        return sorted((c for c in columns if c.startswith(prefix)), key=lambda c: metric_order(c[len(prefix):]))

    first = [*LEAD_COLUMNS, mean_column, *(c for c in columns if c.startswith(PARAM)), *STOP_COLUMNS,
             *metrics(VALID), *metrics(TEST), *COST_COLUMNS]
    first = [c for c in dict.fromkeys(first) if c in columns]
    return first + [c for c in columns if c not in first]


def trials_page(trials: pd.DataFrame, best: dict, title_context: str) -> str:
    metric = best["selection_metric"]
    frame = ranked_trials(trials, metric)
    classes = ["best" if trial == best.get("trial") else "unusable" if pd.isna(rank_) else ""
               for trial, rank_ in zip(frame["trial"], frame["rank"])]
    n_trials = frame["trial"].nunique()
    picked = (f"the selected trial <code>{escape(best['trial'])}</code> (rank 1) is highlighted"
              if best.get("trial") else "no trial is usable")
    intro = (f"{len(frame)} rows: {n_trials} trials &times; their folds, the content of <code>trials.parquet</code>. "
             f"Ranked by the trial's mean validation {escape(metric)} over folds; {picked}; trials that diverged "
             f"or failed in any fold have no rank (red). Click a heading to sort; type to filter rows.")
    body = (f'<input type="search" placeholder="filter rows (e.g. a trial id, plateau)" '
            f'data-filters="trials" data-counter="trials-count"> <span id="trials-count">{len(frame)} rows</span>'
            + table_html(frame, "trials", classes))
    return page(f"Trials of {title_context}", intro, body)


# ----- the best configuration ------------------------------------------------------------------
def best_page(best: dict, title_context: str) -> str:
    title = f"Best configuration of {title_context}"
    metric = best.get("selection_metric")
    if not best.get("trial"):
        reasons = ", ".join(f"{escape(k)}: {v}" for k, v in sorted((best.get("reasons") or {}).items()))
        intro = (f"No usable trial among {best.get('trials')}: every trial diverged or failed in some fold, "
                 f"or has no validation {escape(metric)} (stop reasons of the trial &times; fold runs: {reasons}).")
        return page(title, intro, "")
    intro = (f"The trial with the best mean validation {escape(metric)} over {best.get('folds')} fold(s), "
             f"among {best.get('usable_trials')} usable of {best.get('trials')} trials (<code>best.json</code>). "
             "Click a heading to sort.")
    summary = pd.DataFrame([
        ("trial", best["trial"]), ("kind", best.get("kind")),
        (f"validation {metric} (mean over folds)", best.get("objective")),
        ("epochs completed (most over folds)", best.get("epochs_completed")),
        ("stop reason (most folds)", best.get("stop_reason")),
        ("train seconds (mean over folds)", best.get("train_seconds")),
        ("cpu seconds (mean over folds)", best.get("cpu_seconds")),
    ], columns=["setting", "value"])
    params = pd.DataFrame(sorted(flatten_params(best.get("params") or {}, prefix="").items()), columns=["parameter", "value"])
    body = ("<h2>Selected trial</h2>" + table_html(summary, "summary")
            + "<h2>Parameters</h2>" + table_html(params, "params")
            + "<h2>Metrics</h2><p>Mean over folds, with the minimum and maximum where there are several folds.</p>"
            + table_html(metric_table(best), "metrics"))
    return page(title, intro, body)


def metric_table(best: dict) -> pd.DataFrame:
    """One row a metric: validation and test mean, min and max over folds (blank where absent)."""
    parts = {"validation": best.get("validation") or {}, "test": best.get("test") or {}}
    names = {name for values in parts.values() for name in values if not name.endswith(("_min", "_max"))}
    rows = []
    for name in sorted(names, key=metric_order):
        row = {"metric": name}
        for part, values in parts.items():
            for suffix, label in (("", "mean"), ("_min", "min"), ("_max", "max")):
                row[f"{part} {label}"] = values.get(name + suffix, math.nan)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["metric"] + [f"{p} {s}" for p in parts for s in ("mean", "min", "max")])
    return frame.dropna(axis=1, how="all")


# ----- HTML ------------------------------------------------------------------------------------
def page(title: str, intro: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{escape(title)}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n<h1>{escape(title)}</h1>\n<p>{intro}</p>\n{body}\n"
            f"<script>{SCRIPT}</script>\n</body>\n</html>\n")


def table_html(frame: pd.DataFrame, table_id: str, row_classes: list[str] | None = None) -> str:
    """A sortable table: a heading per column (``data-type`` number or text) and a row per
    row of ``frame``; a cell whose text shows less than its value (four digits of a float, the
    start of a long text) keeps the full value in ``data-sort``. Number columns align right."""
    types = [column_type(frame[c]) for c in frame.columns]
    head = "".join(f'<th data-type="{t}" title="sort by {escape(c)}">{escape(c)}</th>'
                   for c, t in zip(frame.columns, types))
    numbers = ", ".join(f"#{table_id} td:nth-child({i + 1})" for i, t in enumerate(types) if t == "number")
    style = f"<style>{numbers} {{ text-align: right; }}</style>" if numbers else ""
    rows = []
    for index, values in enumerate(frame.itertuples(index=False, name=None)):
        css = row_classes[index] if row_classes else ""
        cells = "".join(cell_html(value) for value in values)
        rows.append(f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    return (f'{style}<div class="scroll"><table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead>'
            f'<tbody>\n' + "\n".join(rows) + "\n</tbody></table></div>")


def column_type(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values):
        return "text"
    if pd.api.types.is_numeric_dtype(values):
        return "number"
    present = [v for v in values if not missing(v)]
    return "number" if present and all(is_number(v) for v in present) else "text"


def cell_html(value) -> str:
    if missing(value):
        return "<td></td>"
    if is_number(value):
        key, shown = number_key(value), number_text(value, SIGNIFICANT)
    else:
        key = str(value)
        shown = key if len(key) <= LONG_TEXT else key[:LONG_TEXT - 1] + "\u2026"
    full = f' data-sort="{escape(key)}"' if shown != key else ""
    return f"<td{full}>{escape(shown)}</td>"


def number_key(value) -> str:
    """The full value, as JavaScript's parseFloat reads it."""
    if not is_float(value):
        return str(int(value))
    value = float(value)
    return repr(value) if math.isfinite(value) else ("Infinity" if value > 0 else "-Infinity")


def escape(value) -> str:
    return html.escape(str(value), quote=True)
