"""The report: the tables of every trial and of the best configuration (report_jobs), and
`snakemake --report` after a tiny sweep, opened in headless Chromium and clicked through."""

from __future__ import annotations

import html
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from workflow_helpers import ROOT, snakemake

from mfsweep.pipeline import report_jobs
from mfsweep.pipeline.figures import MODEL_FIGURES, SPLIT_FIGURES
from mfsweep.trials import select_best

TINY = ROOT / "tests" / "configs" / "tiny.yaml"
MODELS = ("als-biased", "sgd-biased")  # the models of tiny.yaml's experiment
TABLES = ("trials.html", "best.html")
#: The figures of the tuning analysis (parallel coordinates, importance, loss parts and fold bands).
TUNING_FIGURES = ("parallel_coordinates", "importance", "training_curves")


# ----- the tables, without a browser -------------------------------------------------------------
def trial_rows() -> pd.DataFrame:
    """Four trials x 2 folds: t1 and t3 tie on mean RMSE 0.9, t2 is best (0.8), t4 diverged in fold 1."""
    rows = []
    for trial, size, rmse in (("t1", 4, (0.95, 0.85)), ("t2", 8, (0.7, 0.9)), ("t3", 2, (0.9, 0.9)),
                              ("t4", 16, (0.5, math.nan))):
        for fold in (0, 1):
            diverged = trial == "t4" and fold == 1
            rows.append({"model": "m", "kind": "als", "trial": trial, "fold": fold,
                         "epochs_completed": 3, "best_epoch": 0 if diverged else 2,
                         "stop_reason": "diverged" if diverged else "plateau",
                         "error": "<script>alert(1)</script> & more" if diverged else None,
                         "train_seconds": 0.25, "cpu_seconds": 0.5,
                         "param.embedding_size": size, "param.regularization": 0.1,
                         "valid.RMSE": rmse[fold], "valid.NDCG": 0.25, "test.RMSE": rmse[fold] + 0.01})
    return pd.DataFrame(rows)


class Tables(HTMLParser):
    """Each table of a page: its headings, and its rows as (class, [(sort key, text)]); a cell's
    sort key is its data-sort where it has one, else its text (as the page's sorter reads it)."""

    def __init__(self, text: str):
        super().__init__()
        self.tables, self._cell = {}, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(attrs["id"], {"headings": [], "rows": []})
        elif tag == "tr":
            self._row = (attrs.get("class", ""), [])
        elif tag in ("th", "td"):
            self._cell = [attrs.get("data-sort"), ""]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def handle_endtag(self, tag):
        if tag == "th":
            self._table["headings"].append(self._cell[1])
            self._cell = None
        elif tag == "td":
            key, text = self._cell
            self._row[1].append((text if key is None else key, text))
            self._cell = None
        elif tag == "tr" and self._row[1]:
            self._table["rows"].append(self._row)


def column(table: dict, name: str) -> list:
    index = table["headings"].index(name)
    return [cells[index] for _, cells in table["rows"]]


def test_trials_are_ranked_like_select_best_with_unusable_trials_unranked_last():
    trials = trial_rows()
    frame = report_jobs.ranked_trials(trials, "RMSE")
    # means: t1 0.9, t2 0.8, t3 0.9 (tie with t1: trial-id order), t4 unusable
    assert list(frame["trial"]) == ["t2", "t2", "t1", "t1", "t3", "t3", "t4", "t4"]
    assert frame["rank"].tolist()[:6] == [1, 1, 2, 2, 3, 3] and frame["rank"].iloc[6:].isna().all()
    assert frame["trial"].iloc[0] == select_best(trials, "RMSE").trial
    assert frame["mean valid.RMSE"].tolist()[:6] == pytest.approx([0.8, 0.8, 0.9, 0.9, 0.9, 0.9])
    assert list(frame.columns[:6]) == ["rank", "trial", "fold", "mean valid.RMSE", "param.embedding_size",
                                       "param.regularization"]
    assert set(frame.columns) == set(trials.columns) | {"rank", "mean valid.RMSE"}
    ndcg = trials.assign(**{"valid.NDCG": 1 - trials["valid.RMSE"]})  # higher is better: t2, then t1 = t3
    higher = report_jobs.ranked_trials(ndcg, "NDCG")
    assert list(higher["trial"]) == ["t2", "t2", "t1", "t1", "t3", "t3", "t4", "t4"]
    assert higher["rank"].tolist()[:6] == [1, 1, 2, 2, 3, 3] and "mean valid.NDCG" in higher
    assert higher["trial"].iloc[0] == select_best(ndcg, "NDCG").trial


def test_trials_page_holds_every_row_and_column_with_full_sort_keys():
    trials = trial_rows()
    best = select_best(trials, "RMSE").to_json()
    page = report_jobs.trials_page(trials, best, "m on synth / kfold")
    table = Tables(page).tables["trials"]
    assert len(table["rows"]) == len(trials)
    assert set(table["headings"]) == set(trials.columns) | {"rank", "mean valid.RMSE"}
    assert [css for css, _ in table["rows"]] == ["best"] * 2 + [""] * 4 + ["unusable"] * 2
    assert column(table, "rank")[-1] == ("", "")  # blank: sorts last
    assert column(table, "mean valid.RMSE")[0] == ("0.8", "0.8")
    assert column(table, "valid.RMSE")[0] == ("0.7", "0.7")
    assert ("nan", "") not in column(table, "valid.RMSE") and ("", "") in column(table, "valid.RMSE")
    assert "<script>alert(1)</script>" not in page  # text is escaped...
    assert ("<script>alert(1)</script> & more", "<script>alert(1)</script> & more") in column(table, "error")
    assert page.count("<script>") == 1  # ...and the only script is the sorter
    assert "Trials of m on synth / kfold" in page and "highlighted" in page


def test_best_page_lists_the_selected_configuration_and_every_metric():
    trials = trial_rows()
    best = select_best(trials, "RMSE").to_json()
    best["params"]["regularization"] = {"user": 0.1, "item": 0.2}
    tables = Tables(report_jobs.best_page(best, "m on synth / kfold")).tables
    summary = [tuple(t for _, t in cells) for _, cells in tables["summary"]["rows"]]
    assert summary[:3] == [("trial", "t2"), ("kind", "als"), ("validation RMSE (mean over folds)", "0.8")]
    assert ("stop reason (most folds)", "plateau") in summary
    params = [tuple(t for _, t in cells) for _, cells in tables["params"]["rows"]]
    assert params == [("embedding_size", "8"), ("regularization.item", "0.2"), ("regularization.user", "0.1")]
    metrics = tables["metrics"]
    assert metrics["headings"] == ["metric", "validation mean", "validation min", "validation max", "test mean",
                                   "test min", "test max"]
    assert [t for _, t in column(metrics, "metric")] == ["RMSE", "NDCG"]  # rating metrics first
    rmse = [t for _, t in metrics["rows"][0][1]]
    assert rmse == ["RMSE", "0.8", "0.7", "0.9", "0.81", "0.71", "0.91"]


def test_best_page_without_a_usable_trial_says_why():
    trials = trial_rows().assign(stop_reason="failed")
    page = report_jobs.best_page(select_best(trials, "RMSE").to_json(), "m on synth / kfold")
    assert "No usable trial among 4" in page and "failed: 8" in page
    assert "<table" not in page


def test_cells_show_four_digits_and_sort_on_the_full_value():
    cell = report_jobs.cell_html
    assert cell(np.float32(0.123456)) == f'<td data-sort="{float(np.float32(0.123456))!r}">0.1235</td>'
    assert cell(np.int64(7)) == cell(7) == "<td>7</td>" and cell(0.25) == "<td>0.25</td>"
    assert cell(math.inf) == '<td data-sort="Infinity">inf</td>'
    assert cell(math.nan) == cell(None) == cell(pd.NA) == "<td></td>"
    assert cell(True) == "<td>True</td>" and cell("a<b") == "<td>a&lt;b</td>"
    long = "x" * 100
    assert cell(long) == f'<td data-sort="{long}">' + "x" * 79 + "\u2026</td>"


def test_script_bodies_write_both_pages_and_log(tmp_path):
    from types import SimpleNamespace

    from mfsweep.io import write_json, write_parquet

    trials = trial_rows()
    write_parquet(trials, tmp_path / "trials.parquet")
    write_json(select_best(trials, "RMSE").to_json(), tmp_path / "best.json")
    wildcards = SimpleNamespace(dataset="synth", split="kfold", model="m")
    for name, body in (("trials", report_jobs.trials_table), ("best", report_jobs.best_table)):
        out, log = tmp_path / "out" / f"{name}.html", tmp_path / f"{name}.log"
        snakemake = SimpleNamespace(input=SimpleNamespace(trials=str(tmp_path / "trials.parquet"),
                                                          best=str(tmp_path / "best.json")),
                                    output=[str(out)], log=[str(log)], wildcards=wildcards)
        body(snakemake)
        assert out.read_text().startswith("<!doctype html>") and "m on synth / kfold" in out.read_text()
        assert str(out) in log.read_text()
    assert len(Tables((tmp_path / "out" / "trials.html").read_text()).tables["trials"]["rows"]) == 8


# ----- the report in a browser -----------------------------------------------------------------
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
ALLOWED_CONSOLE = ("cdn.tailwindcss.com should not be used in production",)  # the report's own notice

# Injected first into a copy of the report: records console errors, uncaught exceptions and rejected
# promises, then clicks through the app as a reader would (each results category, each subcategory,
# each row's view and info buttons, each value of a row toggle), recording for every view the file
# the content pane shows (img or iframe, from its data URI's filename), the image's decoded width,
# and the caption its info pane shows; the record ends up in <pre id="mfsweep-probe">.
PROBE = r"""
(function () {
  const probe = {errors: [], menu: [], views: []};
  const consoleError = console.error;
  console.error = function (...args) {
    probe.errors.push("console.error: " + args.map(String).join(" "));
    consoleError.apply(console, args);
  };
  window.addEventListener("error", event => probe.errors.push("uncaught: " + event.message));
  window.addEventListener("unhandledrejection", event => probe.errors.push("unhandled rejection: " + event.reason));
  const pause = () => new Promise(resolve => setTimeout(resolve, 100));
  const navbar = () => document.querySelector("#app nav");
  const links = () => Array.from(navbar().querySelectorAll("a")).filter(a => a.querySelector("span"));
  const linkNamed = name => links().find(a => a.textContent.trim() === name);
  const rows = () => Array.from(navbar().querySelectorAll("table tbody tr"));
  const toggles = () => Array.from(navbar().querySelectorAll("fieldset input[type=radio]"));
  function shown() {
    const content = document.querySelector("#app > div").lastElementChild;  // the pane beside the navbar
    const img = content.querySelector("img[src^='data:']");
    const element = img || content.querySelector("iframe[src^='data:']");
    if (!element) return {kind: "none"};
    const match = /filename=([^;]*);/.exec(element.getAttribute("src"));
    return {kind: element.tagName.toLowerCase(), file: match ? match[1] : "", width: img ? img.naturalWidth : null};
  }
  async function open(category, subcategory) {
    app.setView({navbarMode: "menu"});
    await pause();
    const single = Object.keys(categories).length === 1;
    const link = linkNamed(category) || (single ? linkNamed("Results") : null);
    if (!link) return false;
    link.click();
    await pause();
    if (Object.keys(categories[category]).length > 1) {
      const sublink = linkNamed(subcategory);
      if (!sublink) return false;
      sublink.click();
      await pause();
    }
    return true;
  }
  async function walk() {
    await pause();
    probe.menu = links().map(a => a.textContent.trim());
    for (const category of Object.keys(categories)) {
      for (const subcategory of Object.keys(categories[category])) {
        if (!await open(category, subcategory)) {
          probe.views.push({category, subcategory, missing: "no link to it"});
          continue;
        }
        const count = rows().length, values = Math.max(toggles().length, 1);
        for (let r = 0; r < count; r++) {
          for (let t = 0; t < values; t++) {
            await open(category, subcategory);
            const toggle = toggles()[t];
            if (toggle) { toggle.click(); await pause(); }
            const row = rows()[r];
            const labels = Array.from(row.cells).slice(0, -1).map(cell => cell.textContent.trim());
            const buttons = row.cells[row.cells.length - 1].querySelectorAll("a");
            buttons[0].click();
            await pause();
            const view = {category, subcategory, labels, toggle: toggle ? toggle.value : null, ...shown()};
            buttons[1].click();
            await pause();
            view.caption = navbar().textContent.replace(/\s+/g, " ").slice(0, 400);
            probe.views.push(view);
          }
        }
      }
    }
  }
  window.addEventListener("load", () => {
    walk().catch(error => probe.errors.push("probe: " + error)).finally(() => {
      const out = document.createElement("pre");
      out.id = "mfsweep-probe";
      out.textContent = JSON.stringify(probe);
      document.body.appendChild(out);
    });
  });
})();
"""

# Appended to a trials table: sorts and filters it as clicks and typing would, recording the trial
# column after each step.
TABLE_PROBE = r"""
<script>
(function () {
  const table = document.getElementById("trials");
  const headings = Array.from(table.querySelectorAll("th"));
  const trials = () => Array.from(table.tBodies[0].rows).filter(r => !r.hidden)
    .map(r => r.cells[1].textContent + "/" + r.cells[0].textContent);  // trial/rank
  const steps = {};
  const click = name => headings.find(h => h.textContent === name).click();
  click("rank"); steps.rank_ascending = trials();
  click("rank"); steps.rank_descending = trials();
  click("trial"); steps.trial_ascending = trials();
  click("valid.RMSE"); click("valid.RMSE"); steps.rmse_descending = trials();
  const input = document.querySelector("input[data-filters]");
  input.value = "plateau  T1"; input.dispatchEvent(new Event("input"));
  steps.filtered = trials(); steps.counter = document.getElementById("trials-count").textContent;
  const cell = table.querySelector("td[data-sort]");
  cell.dispatchEvent(new MouseEvent("mouseover", {bubbles: true}));
  steps.hover = [cell.title, cell.dataset.sort];
  const out = document.createElement("pre");
  out.id = "mfsweep-probe";
  out.textContent = JSON.stringify(steps);
  document.body.appendChild(out);
})();
</script>
"""


@pytest.fixture(scope="module")
def chromium():
    """Debian's chromium, installed with apt-get when missing (as root only)."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip("chromium is not installed and installing it needs root: apt-get install -y chromium")
    install = subprocess.run("apt-get update && apt-get install -y chromium", shell=True, capture_output=True,
                             text=True, timeout=1800, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    found = shutil.which("chromium")
    if install.returncode != 0 or not found:
        pytest.skip(f"could not install chromium (apt-get exit {install.returncode}): {install.stderr[-800:]}")
    return found


def browse(chromium: str, url: str, scratch, *flags: str) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=scratch)  # new and empty each time
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
               *flags, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def console_messages(stderr: str) -> list[str]:
    """Every console message Chromium logged (any frame, any level: its log does not say which)."""
    return re.findall(r':CONSOLE[^\]]*\] "(.*)", source: ', stderr)


def probe_record(dom: str, stderr: str) -> dict:
    found = re.search(r'<pre id="mfsweep-probe">(.*?)</pre>', dom, re.S)
    assert found, f"the probe did not finish; chromium said:\n{stderr[-3000:]}"
    return json.loads(html.unescape(found.group(1)))


def walk_report(chromium: str, report, scratch) -> tuple[dict, list[str]]:
    """Click through a copy of ``report`` with the probe; its record and the console messages."""
    text = report.read_text()
    assert "<head>" in text
    probed = scratch / f"probed-{report.name}"
    probed.write_text(text.replace("<head>", f"<head>\n<script>{PROBE}</script>", 1))
    result = browse(chromium, probed.as_uri(), scratch, "--virtual-time-budget=60000", "--dump-dom")
    return probe_record(result.stdout, result.stderr), console_messages(result.stderr)


def missing_views(record: dict, expected: Counter) -> Counter:
    """Files expected in the report that no click showed."""
    return expected - Counter(view.get("file") for view in record["views"])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A tiny sweep and its report; (workdir, report path, seconds to build the report)."""
    workdir = tmp_path_factory.mktemp("report")
    snakemake(workdir, "--cores", "2", config=TINY)
    path = workdir / "results" / "report.html"
    started = time.perf_counter()
    snakemake(workdir, "--report", str(path), config=TINY)
    return workdir, path, time.perf_counter() - started


def expected_files(workdir) -> Counter:
    """Every figure the workflow drew, and the two tables of each model, by file name."""
    names = Counter(path.name for path in (workdir / "results").rglob("*.svg"))
    names.update({name: len(MODELS) for name in TABLES})
    return names


@pytest.mark.report
@pytest.mark.workflow
def test_report_opens_without_errors_and_shows_every_figure_and_table(report, chromium, tmp_path):
    workdir, path, seconds = report
    assert path.stat().st_size > 100_000
    print(f"report: {path.stat().st_size} bytes, built in {seconds:.1f} s")
    record, console = walk_report(chromium, path, tmp_path)
    assert record["errors"] == [], record["errors"]
    uncaught = [message for message in console if message.startswith("Uncaught")]  # frames included
    assert uncaught == [], f"uncaught errors: {uncaught}; console: {console}"
    assert [m for m in console if not m.startswith(ALLOWED_CONSOLE)] == [], console

    expected = expected_files(workdir)
    per_model = len(MODEL_FIGURES)  # the figures and the two tables of each model
    assert sum(expected.values()) == len(MODELS) * per_model + len(SPLIT_FIGURES)  # comparison, cost, progress
    assert {f"{name}.svg" for name in TUNING_FIGURES} <= set(expected)
    assert missing_views(record, expected) == Counter(), record["views"]
    assert not [view for view in record["views"] if "missing" in view or view["kind"] == "none"]
    for view in record["views"]:
        if view["file"].endswith(".svg"):
            assert view["kind"] == "img" and view["width"] > 300, view  # decoded and drawn
        else:
            assert view["kind"] == "iframe", view
    for model in MODELS:
        shown = {view["file"]: view for view in record["views"] if view["subcategory"] == model}
        assert set(TABLES) <= set(shown), f"{model}: {sorted(shown)}"
        for name in TUNING_FIGURES:  # every new figure, drawn and captioned, for every model
            view = shown[f"{name}.svg"]
            assert view["kind"] == "img" and view["width"] > 300, view
            assert model in view["caption"], view
        assert f"Every trial of {model} as a table" in shown["trials.html"]["caption"]
        assert f"Best configuration of {model}" in shown["best.html"]["caption"]
    assert all("How to read it" in view["caption"] for view in record["views"])  # every caption renders


@pytest.mark.report
@pytest.mark.workflow
def test_report_check_notices_a_missing_figure(report, chromium, tmp_path):
    _, path, _ = report
    text = path.read_text()
    categories = re.search(r"var categories = (\{.*\});\n", text)
    data = json.loads(categories.group(1))
    dropped = [p for sub in data.values() for paths in sub.values() for p in paths if p.endswith("comparison.svg")]
    assert len(dropped) == 1
    for sub in data.values():
        for paths in sub.values():
            paths[:] = [p for p in paths if p != dropped[0]]
    tampered = tmp_path / "tampered.html"
    tampered.write_text(text[:categories.start(1)] + json.dumps(data) + text[categories.end(1):])
    record, _ = walk_report(chromium, tampered, tmp_path)
    assert missing_views(record, expected_files(report[0])) == Counter({"comparison.svg": 1})


@pytest.mark.report
def test_trials_table_sorts_and_filters_in_a_browser(chromium, tmp_path):
    trials = trial_rows()
    page = report_jobs.trials_page(trials, select_best(trials, "RMSE").to_json(), "m on synth / kfold")
    path = tmp_path / "trials.html"
    path.write_text(page.replace("</body>", TABLE_PROBE + "</body>"))
    result = browse(chromium, path.as_uri(), tmp_path, "--dump-dom")
    steps = probe_record(result.stdout, result.stderr)
    assert console_messages(result.stderr) == []
    assert steps["rank_ascending"] == ["t2/1", "t2/1", "t1/2", "t1/2", "t3/3", "t3/3", "t4/", "t4/"]
    assert steps["rank_descending"] == ["t3/3", "t3/3", "t1/2", "t1/2", "t2/1", "t2/1", "t4/", "t4/"]
    assert steps["trial_ascending"] == ["t1/2", "t1/2", "t2/1", "t2/1", "t3/3", "t3/3", "t4/", "t4/"]
    # valid.RMSE descending: 0.95, 0.9 (t2 fold 1, t3 x2 in the current order), 0.85, 0.7, 0.5; blank last
    assert steps["rmse_descending"] == ["t1/2", "t2/1", "t3/3", "t3/3", "t1/2", "t2/1", "t4/", "t4/"]
    assert steps["filtered"] == ["t1/2", "t1/2"] and steps["counter"] == "2 of 8 rows"
    assert steps["hover"][0] and steps["hover"][0] == steps["hover"][1]  # a shortened cell shows its value
