import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mfsweep import plots
from mfsweep import trials as trials_module
from mfsweep.pipeline.figures import FIGURES

#: The per-model figures drawn by mfsweep.plots (the tables are report_jobs' and tested with the report).
MODEL_PLOTS = [f.name for f in FIGURES if f.per_model and f.output.endswith(".svg")]

FOLDS = (0, 1)
# trial -> (embedding_size, learning_rate, regularization.user, valid RMSE per fold, stop reason per fold, epochs)
SPECS = {
    "t01": (4, 0.001, 0.01, (0.99, 0.97), ("plateau", "plateau"), (6, 5)),
    "t02": (8, 0.003, 0.1, (0.95, 0.93), ("plateau", "max_epochs"), (7, 10)),
    "t03": (8, 0.01, 1.0, (0.96, 0.98), ("max_epochs", "max_epochs"), (10, 10)),
    "t04": (16, 0.03, 0.01, (0.92, 0.96), ("plateau", "plateau"), (4, 8)),
    "t05": (32, 0.1, 0.1, (1.10, 0.99), ("plateau", "diverged"), (3, 2)),
    "t06": (64, 0.05, 1.0, (None, None), ("failed", "failed"), (0, 0)),
}
SPACE = {
    "embedding_size": [4, 8, 16, 32, 64],
    "learning_rate": {"loguniform": [0.001, 0.1]},
    "regularization.user": [0.01, 0.1, 1.0],
    "damping": 5,
}


def trial_rows(model="sgd-biased", specs=SPECS, folds=FOLDS):
    rows = []
    for trial, (size, rate, reg, valid, stops, epochs) in specs.items():
        for fold in folds:
            stop, value = stops[fold], valid[fold]
            usable = stop not in ("diverged", "failed")
            rows.append({
                "model": model, "kind": "sgd-biased", "trial": trial, "fold": fold,
                "epochs_completed": epochs[fold], "best_epoch": max(epochs[fold] - 1, 0), "stop_reason": stop,
                "error": "ValueError: boom" if stop == "failed" else None,
                "train_seconds": 0.0 if stop == "failed" else 0.01 * size * (epochs[fold] + (stop == "diverged")),
                "cpu_seconds": 0.0, "threads": 1,
                "param.embedding_size": size, "param.learning_rate": rate, "param.regularization.user": reg,
                "param.damping": 5,
                "valid.RMSE": np.nan if value is None else value, "valid.NDCG@10": np.nan if value is None else 0.1,
                "test.RMSE": value + 0.01 if usable else np.nan, "test.NDCG@10": 0.2 if usable else np.nan,
            })
    return pd.DataFrame(rows)


def history_rows(trials):
    rows = []
    for record in trials.itertuples():
        for epoch in range(1, record.epochs_completed + 1):
            rows.append({"trial": record.trial, "fold": record.fold, "epoch": epoch, "train_loss": 2.0 / epoch,
                         "seconds": 0.01, "cpu_seconds": 0.01, "eval_seconds": 0.001,
                         "RMSE": 1.2 - 0.2 * (1 - 1 / epoch), "NDCG@10": 0.1 * epoch / (epoch + 1)})
    return pd.DataFrame(rows)


@pytest.fixture
def trials():
    return trial_rows()


@pytest.fixture
def history(trials):
    return history_rows(trials)


def svg_text(path):
    """Parse an SVG; check it is one with drawn lines; return all of its text."""
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    assert any(el.tag.rsplit("}", 1)[-1] in ("path", "line", "polyline", "use") for el in root.iter())
    return " ".join(" ".join(root.itertext()).split())


# ----- best.json of a model ----------------------------------------------------------------
def best_json(model, trial, rmse, seconds, folds=2):
    if trial is None:
        test = {}
    else:
        test = {"RMSE": rmse, "MAE": rmse * 0.8, "NDCG": 0.3, "NDCG@10": 0.1, "Recall@10": 0.05}
    if trial is not None and folds > 1:
        test.update({f"{k}_min": v * 0.95 for k, v in list(test.items())})
        test.update({f"{k}_max": v * 1.05 for k, v in list(test.items()) if not k.endswith("_min")})
    return {"model": model, "kind": model, "trial": trial, "selection_metric": "RMSE",
            "objective": None if trial is None else rmse - 0.01, "trials": 4,
            "usable_trials": 0 if trial is None else 3,
            "epochs_completed": None if trial is None else 10, "train_seconds": seconds, "cpu_seconds": seconds,
            "test": test, "validation": {}}


# ----- figures -------------------------------------------------------------------------------
def test_embedding_size_figure(trials, tmp_path):
    path = tmp_path / "embedding_size.svg"
    plots.plot_embedding_size(trials, path, "RMSE", context="sgd-biased on synth/kfold")
    text = svg_text(path)
    assert "Embedding size: sgd-biased on synth/kfold" in text
    assert "best trial per size" in text and "selected trial t02" in text
    assert "diverged (1 trial" in text and "failed (1 trial" in text
    assert "log2 scale" in text and "lower is better" in text


def test_the_same_tables_give_the_same_file(trials, tmp_path):
    plots.plot_embedding_size(trials, tmp_path / "a.svg", "RMSE")
    plots.plot_embedding_size(trials, tmp_path / "b.svg", "RMSE")
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()


def test_learning_parameters_figure_has_a_panel_per_tuned_parameter(trials, tmp_path):
    path = tmp_path / "learning_parameters.svg"
    plots.plot_learning_parameters(trials, path, "RMSE", space=SPACE, context="sgd-biased")
    text = svg_text(path)
    assert "Learning parameters: sgd-biased" in text
    assert "learning_rate (log scale)" in text and "regularization.user (log scale)" in text
    assert "embedding_size" not in text.replace("Embedding", "")  # has its own figure
    assert "diverged" in text and "failed" in text


def test_learning_parameters_with_categorical_and_linear_axes(trials, tmp_path):
    trials = trials.assign(**{"param.solver": np.where(trials["trial"] < "t04", "cg", "cholesky"),
                              "param.init_std": np.where(trials["trial"] < "t03", 0.1, 0.2)})
    path = tmp_path / "learning_parameters.svg"
    plots.plot_learning_parameters(trials, path, "NDCG@10", space={"init_std": {"uniform": [0.05, 0.3]}})
    text = svg_text(path)
    assert "cholesky" in text and "init_std" in text and "init_std (log scale)" not in text
    assert "higher is better" in text


def test_learning_parameters_without_a_tuned_parameter_says_so(tmp_path):
    single = trial_rows(specs={"t01": SPECS["t01"]})
    path = tmp_path / "learning_parameters.svg"
    plots.plot_learning_parameters(single, path, "RMSE")
    text = svg_text(path)
    assert "No tuned learning parameter" in text and "1 trial" in text and "embedding_size=4" not in text
    only_size = trial_rows(specs={t: SPECS[t] for t in ("t01", "t04")}).assign(**{"param.learning_rate": 0.01,
                                                                              "param.regularization.user": 0.1})
    plots.plot_learning_parameters(only_size, path, "RMSE")
    assert "only embedding_size varies" in svg_text(path)


def test_iteration_completion_figure(trials, history, tmp_path):
    path = tmp_path / "iteration_completion.svg"
    plots.plot_iteration_completion(trials, history, path, "RMSE", best="t02", max_epochs=10, context="sgd-biased")
    text = svg_text(path)
    assert "Iteration completion: sgd-biased" in text
    # epochs completed: 6 5 | 7 10 | 10 10 | 4 8 | 3 2 | 0 0: mean 65 / 12, median (5 + 6) / 2
    assert "epochs completed (12 trial x fold runs; mean 5.4, median 5.5)" in text
    assert "mean over all runs: 5.4" in text
    assert "plateau (6; mean 5.5, median 5.5)" in text and "max_epochs (3; mean 10.0, median 10)" in text
    assert "diverged (1; mean 2.0, median 2)" in text and "failed (2; mean 0.0, median 0)" in text
    assert "max_epochs = 10" in text
    assert "selected trial t02" in text and "best epoch" in text
    assert "longest-running" in text and "t03 (10 epochs, max_epochs)" in text
    assert "diverged after this epoch" in text  # t05 is among the 5 longest runs


def test_iteration_completion_without_validation_uses_training_loss(trials, history, tmp_path):
    path = tmp_path / "iteration_completion.svg"
    plots.plot_iteration_completion(trials, history.drop(columns=["RMSE"]), path, "RMSE")
    assert "training loss (no validation metric recorded)" in svg_text(path)


def test_comparison_figure(tmp_path):
    frame = trials_module.compare([best_json("als-biased", "aaaaaaaaaa", 0.91, 3.0),
                           best_json("sgd-biased", "bbbbbbbbbb", 0.93, 12.0),
                           best_json("sgd", None, None, None)])
    path = tmp_path / "comparison.svg"
    plots.plot_comparison(frame, path, context="synth / kfold")
    text = svg_text(path)
    assert "Model comparison: synth / kfold" in text
    for title in ("RMSE (lower is better)", "NDCG@10 (higher is better)", "Recall@10", "fit time"):
        assert title in text
    assert "0.9100" in text and "12 s" in text and "no usable trial" in text
    assert "als-biased" in text and "sgd-biased" in text


def test_comparison_figure_with_one_fold_and_one_model(tmp_path):
    frame = trials_module.compare([best_json("als", "aaaaaaaaaa", 0.95, 1.0, folds=1)])
    path = tmp_path / "comparison.svg"
    plots.plot_comparison(frame, path, metrics=["RMSE", "NDCG@10"])
    text = svg_text(path)
    assert "RMSE (lower is better)" in text and "MAE" not in text and "fit time" in text


def test_cost_figure(trials, tmp_path):
    other = trial_rows("als-biased", specs={t: SPECS[t] for t in ("t01", "t02", "t04")})
    no_size = trial_rows("sgd").drop(columns=["param.embedding_size"])
    path = tmp_path / "cost.svg"
    plots.plot_cost({"sgd-biased": trials, "als-biased": other, "sgd": no_size}, path, context="synth / kfold")
    text = svg_text(path)
    assert "Training cost per epoch: synth / kfold" in text
    assert "sgd-biased (median per size; 9 runs)" in text and "als-biased (median per size" in text
    assert "sgd-biased: diverged (1 run)" in text
    assert "sgd-biased: 2 failed runs not shown" in text and "sgd: no embedding_size parameter" in text


def test_cost_runs_count_the_epoch_that_diverged(trials):
    runs = plots.models._cost_runs(trials).set_index(["trial", "fold"])
    assert runs.loc[("t05", 1), "per_epoch"] == pytest.approx(0.01 * 32)
    assert runs.loc[("t02", 0), "per_epoch"] == pytest.approx(0.01 * 8)
    assert ("t06", 0) not in runs.index


def test_folds_figure(trials, tmp_path):
    path = tmp_path / "folds.svg"
    plots.plot_folds(trials, path, "RMSE", top=3, context="sgd-biased")
    text = svg_text(path)
    assert "Spread across folds: sgd-biased" in text
    assert "top 3 trials by mean validation RMSE (2 folds: min to max)" in text
    assert "fold 0" in text and "fold 1" in text and "mean over folds" in text
    assert "diverged: 1 trial, not ranked" in text and "failed: 1 trial, not ranked" in text
    assert text.index("t02") < text.index("t04") < text.index("t03")  # ranked best first: 0.94, 0.94, 0.97
    assert "k=8 lr=0.003 reg.u=0.1" in text


def test_folds_figure_with_a_single_fold(tmp_path):
    single = trial_rows(folds=(0,))
    path = tmp_path / "folds.svg"
    plots.plot_folds(single, path, "RMSE")
    text = svg_text(path)
    assert "one fold: one point per trial, no spread" in text and "fold 0" in text


# ----- edge cases ----------------------------------------------------------------------------
def test_a_single_trial_model_draws_every_figure(tmp_path):
    single = trial_rows(specs={"t02": SPECS["t02"]})
    history = history_rows(single)
    plots.plot_embedding_size(single, tmp_path / "e.svg", "RMSE")
    plots.plot_iteration_completion(single, history, tmp_path / "i.svg", "RMSE")
    plots.plot_folds(single, tmp_path / "f.svg", "RMSE")
    plots.plot_cost({"m": single}, tmp_path / "c.svg")
    assert "selected trial t02" in svg_text(tmp_path / "e.svg")
    assert "selected trial t02" in svg_text(tmp_path / "i.svg")
    assert "top 1 trial by" in svg_text(tmp_path / "f.svg")
    assert "m (median per size; 2 runs)" in svg_text(tmp_path / "c.svg")


def test_all_trials_diverged_are_marked_not_dropped(tmp_path):
    specs = {t: (size, rate, reg, valid, ("diverged", "diverged"), epochs)
             for t, (size, rate, reg, valid, _, epochs) in SPECS.items() if t != "t06"}
    diverged = trial_rows(specs=specs)
    history = history_rows(diverged)
    for plot in (plots.plot_embedding_size, plots.plot_learning_parameters, plots.plot_folds):
        plot(diverged, tmp_path / "x.svg", "RMSE")
        text = svg_text(tmp_path / "x.svg")
        assert "all 5 trials diverged or failed (5 diverged)" in text or "diverged: 5 trials" in text
    plots.plot_iteration_completion(diverged, history, tmp_path / "i.svg", "RMSE")
    text = svg_text(tmp_path / "i.svg")
    assert "No usable trial" in text and "diverged (10;" in text and "diverged after this epoch" in text
    plots.plot_cost({"m": diverged}, tmp_path / "c.svg")
    assert "m: diverged (10 runs)" in svg_text(tmp_path / "c.svg")


def test_a_missing_embedding_size_column_is_explained(trials, history, tmp_path):
    no_size = trials.drop(columns=["param.embedding_size"])
    plots.plot_embedding_size(no_size, tmp_path / "e.svg", "RMSE")
    assert "No embedding_size parameter" in svg_text(tmp_path / "e.svg")
    plots.plot_learning_parameters(no_size, tmp_path / "l.svg", "RMSE")
    assert "learning_rate" in svg_text(tmp_path / "l.svg")
    plots.plot_cost({"m": no_size}, tmp_path / "c.svg")
    assert "m: no embedding_size parameter" in svg_text(tmp_path / "c.svg")


def test_a_missing_metric_column_is_explained(trials, tmp_path):
    plots.plot_embedding_size(trials, tmp_path / "e.svg", "Recall@5")
    assert "No usable trial has a validation Recall@5" in svg_text(tmp_path / "e.svg")


def test_missing_required_columns_are_named(trials, tmp_path):
    with pytest.raises(ValueError, match="trials: missing column.*stop_reason"):
        plots.plot_folds(trials.drop(columns=["stop_reason"]), tmp_path / "f.svg", "RMSE")


# ----- the rules' script bodies --------------------------------------------------------------
class Files(list):
    """Snakemake's input/output: positional and named at once."""

    def __init__(self, *paths, **named):
        super().__init__([*map(str, paths), *(str(p) for p in named.values() if not isinstance(p, list))])
        for name, value in named.items():
            setattr(self, name, [str(v) for v in value] if isinstance(value, list) else str(value))


def fake_snakemake(tmp_path, name, inputs, outputs, settings=None, **wildcards):
    from types import SimpleNamespace

    return SimpleNamespace(input=inputs, output=outputs, params=SimpleNamespace(settings=settings),
                           log=[str(tmp_path / f"{name}.log")], threads=1, config={},
                           wildcards=SimpleNamespace(dataset="synth", split="kfold", **wildcards))


def test_plot_jobs_write_every_figure_and_the_comparison_table(trials, history, tmp_path):
    from mfsweep.io import write_json, write_parquet
    from mfsweep.pipeline import paths, plot_jobs
    from mfsweep.trials import select_best

    summaries = {}
    for model, frame in (("sgd-biased", trials), ("als", trial_rows("als", specs={"t02": SPECS["t02"]}))):
        folder = tmp_path / paths.build(paths.SUMMARY, dataset="synth", split="kfold", model=model)
        write_parquet(frame.assign(model=model), folder / "trials.parquet")
        write_parquet(history_rows(frame), folder / "history.parquet")
        write_json(select_best(frame.assign(model=model), "RMSE").to_json(), folder / "best.json")
        summaries[model] = folder
    settings = {"kind": "sgd-biased", "max_epochs": 10, "early_stopping": {"metric": None}, "params": SPACE}
    folder = summaries["sgd-biased"]
    for name in MODEL_PLOTS:
        inputs = Files(trials=folder / "trials.parquet", history=folder / "history.parquet", best=folder / "best.json")
        out = tmp_path / "plots" / f"{name}.svg"
        job = fake_snakemake(tmp_path, name, inputs, Files(out), settings, model="sgd-biased")
        job.params.figure = name
        plot_jobs.draw(job)
        assert "sgd-biased on synth / kfold" in svg_text(out)
        assert "12 trial x fold rows" in (tmp_path / f"{name}.log").read_text()
    assert "selected trial t02" in svg_text(tmp_path / "plots" / "iteration_completion.svg")
    table, figure = tmp_path / "comparison.parquet", tmp_path / "comparison.svg"
    bests = Files(best=[f / "best.json" for f in summaries.values()])
    plot_jobs.plot_comparison(fake_snakemake(tmp_path, "compare", bests, Files(table=table, figure=figure)))
    comparison = pd.read_parquet(table)
    assert list(comparison["model"]) == ["sgd-biased", "als"] and list(comparison["trial"]) == ["t02", "t02"]
    assert "Model comparison: synth / kfold" in svg_text(figure)
    cost = tmp_path / "cost.svg"
    tables = Files(trials=[f / "trials.parquet" for f in summaries.values()])
    plot_jobs.plot_cost(fake_snakemake(tmp_path, "cost", tables, Files(cost)))
    assert "als (median per size; 2 runs)" in svg_text(cost)
    with pytest.raises(ValueError, match="no experiment runs a model on synth / kfold"):
        plot_jobs.plot_comparison(fake_snakemake(tmp_path, "none", Files(best=[]), Files(table=table, figure=figure)))


# ----- report captions -----------------------------------------------------------------------
REPORTS = Path(__file__).resolve().parents[1] / "reports"
SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def render_caption(name, config, **wildcards):
    """A caption as ``snakemake --report`` renders it: Jinja2 over ``snakemake``, then reStructuredText."""
    from types import SimpleNamespace

    from docutils.core import publish_parts
    from jinja2 import Environment, StrictUndefined

    env = Environment(trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined)
    snakemake = SimpleNamespace(config=config, wildcards=SimpleNamespace(**wildcards))
    text = env.from_string((REPORTS / f"{name}.rst").read_text()).render(snakemake=snakemake)
    # halt_level 2: any reStructuredText warning fails the test instead of showing in the report
    parts = publish_parts(text, writer="html", settings_overrides={"halt_level": 2, "report_level": 5})
    return " ".join(html.unescape(parts["html_body"]).split())


@pytest.fixture(scope="module")
def report_config():
    import yaml

    from mfsweep.pipeline.workflow import validate

    config = yaml.safe_load((Path(__file__).parent / "configs" / "tiny.yaml").read_text())
    config["datasets"]["ml-100k"] = {"source": "movielens"}
    config["splits"]["by-user"] = {"method": "user", "folds": 3}
    config["models"]["sgd-biased"]["early_stopping"] = {"metric": "NDCG@10"}
    config["experiments"].append({"dataset": "ml-100k", "split": "by-user", "models": ["als-biased"]})
    config["evaluation"]["relevance_threshold"] = 4.0
    validate(config, SCHEMA)
    return config


@pytest.mark.parametrize("name", MODEL_PLOTS)
def test_model_captions_render_with_the_config(name, report_config):
    text = render_caption(name, report_config, dataset="synth", split="kfold", model="sgd-biased")
    assert "sgd-biased" in text and "synth" in text
    assert "NDCG@10" in text and "higher" in text.lower() and "lower is better" not in text.lower()
    assert "mailto:" not in text  # a bare NDCG@10 would become an e-mail link


def test_split_captions_list_the_models_of_the_split(report_config):
    for name in ("comparison", "cost"):
        text = render_caption(name, report_config, dataset="synth", split="kfold")
        assert "als-biased" in text and "sgd-biased" in text and "mailto:" not in text
    assert "test ratings >= 4.0" in render_caption("comparison", report_config, dataset="ml-100k", split="by-user")


def test_workflow_description_renders_with_the_config(report_config):
    text = render_caption("workflow", report_config)
    assert "2-fold cross-validation over the ratings" in text and "users in 3 partitions" in text
    assert "synthetic ratings, 120 users" in text and "MovieLens archive" in text
    assert "random search of 3 trials" in text and "mailto:" not in text


@pytest.mark.parametrize("kind", ["wals", "bpr"])
def test_comparison_leaves_implicit_models_out_of_rating_panels(tmp_path, kind):
    frame = trials_module.compare([best_json("als-biased", "aaaaaaaaaa", 0.91, 3.0),
                                   best_json(kind, "cccccccccc", 3.2, 1.0)])
    path = tmp_path / "comparison.svg"
    plots.plot_comparison(frame, path, metrics=["RMSE", "NDCG"])
    text = svg_text(path)
    assert text.count("not a rating model") == 1  # the RMSE panel only
    assert "3.2" not in text and "0.9100" in text


def test_comparison_shows_the_rmse_of_explicit_wals(tmp_path):
    explicit = {**best_json("wals", "cccccccccc", 0.97, 1.0), "params": {"target": "rating"}}
    frame = trials_module.compare([best_json("als-biased", "aaaaaaaaaa", 0.91, 3.0), explicit])
    assert frame["rating_model"].tolist() == [True, True]
    path = tmp_path / "comparison.svg"
    plots.plot_comparison(frame, path, metrics=["RMSE", "NDCG"])
    text = svg_text(path)
    assert "not a rating model" not in text and "0.9700" in text


def test_captions_take_the_selection_metric_from_the_package():
    import yaml

    from mfsweep.pipeline.workflow import validate

    config = yaml.safe_load((Path(__file__).parent / "configs" / "tiny.yaml").read_text())
    config["models"]["explicit"] = {"kind": "wals", "params": {"embedding_size": 4, "target": "rating"}}
    config["models"]["implicit"] = {"kind": "wals", "params": {"embedding_size": 4}}
    config["models"]["ranker"] = {"kind": "bpr", "params": {"embedding_size": 4}}
    validate(config, SCHEMA)
    assert config["selection"]["ranker"] == {"metric": "NDCG", "lower_is_better": False, "rating_model": False}
    assert config["selection"]["explicit"] == {"metric": "RMSE", "lower_is_better": True, "rating_model": True}
    assert config["selection"]["implicit"] == {"metric": "NDCG", "lower_is_better": False, "rating_model": False}
    def text(model):
        return re.sub(r"<[^>]+>", "", render_caption("embedding_size", config, dataset="synth", split="kfold",
                                                     model=model))

    explicit, implicit = text("explicit"), text("implicit")
    assert "selection metric RMSE (lower is better), then RMSE" in explicit and "no RMSE" not in explicit
    assert "selection metric NDCG (higher is better), then NDCG" in implicit and "no RMSE" in implicit


def in_rounds(trials, size=2):
    """``trials`` with proposal order t01, t02, ... in rounds of ``size``."""
    position = trials["trial"].str[1:].astype(int) - 1
    return trials.assign(round=position // size + 1, proposed=position)


def test_search_progress_figure_marks_rounds(trials, tmp_path):
    path = tmp_path / "search_progress.svg"
    other = in_rounds(trial_rows("als-biased", specs={t: SPECS[t] for t in ("t01", "t02")}), size=8)
    plots.plot_search_progress({"sgd-biased": (in_rounds(trials), "RMSE"), "als-biased": (other, "RMSE")}, path,
                               context="synth / kfold")
    text = svg_text(path)
    assert "Search progress: synth / kfold" in text
    assert "sgd-biased (6 trials, 3 rounds)" in text and "als-biased (2 trials, 1 round)" in text
    ndcg = in_rounds(trial_rows("wals", specs={t: SPECS[t] for t in ("t01", "t02")}), size=8)
    path = tmp_path / "two_rows.svg"
    plots.plot_search_progress({"sgd-biased": (in_rounds(trials), "RMSE"), "wals": (ndcg, "NDCG@10")}, path)
    assert "wals (2 trials, 1 round)" in svg_text(path)  # the second row's models are in the legend too
    assert "end of a round" in text and "training seconds, summed over trials and folds" in text
