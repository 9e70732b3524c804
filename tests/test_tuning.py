"""The tuning figures and what they plot: parallel coordinates, importance (and the Optuna
study behind it), loss parts and fold bands, iteration completion by stop reason, and the
embedding size against every metric."""

import math
import re

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from test_plots import SPACE, SPECS, history_rows, svg_text, trial_rows

from mfsweep import plots
from mfsweep.plots.style import REASON_COLORS
from mfsweep.plots.sweep import embedding_metrics
from mfsweep.plots.tuning import UNUSABLE_Y, parallel_coordinates
from mfsweep.studies import (
    ImportanceError,
    distribution,
    importance_table,
    study_from_trials,
)
from mfsweep.trials import completion_summary, fold_band, trial_table


@pytest.fixture
def trials():
    return trial_rows()


# ----- parallel coordinates --------------------------------------------------------------------
def test_each_line_runs_through_its_trials_values_to_its_metric(trials):
    frame, scales = parallel_coordinates(trials, "RMSE", SPACE)
    assert [s.name for s in scales] == ["param.embedding_size", "param.learning_rate", "param.regularization.user",
                                        "RMSE"]
    assert [s.kind for s in scales] == ["log", "log", "log", "linear"]  # the grid 4..64 spans 16x: log
    table = trial_table(trials, "RMSE").set_index("trial")
    for trial in ("t01", "t02", "t03", "t04"):  # the usable ones end at their mean validation RMSE
        assert scales[-1].value(frame.loc[trial, "RMSE"]) == pytest.approx(table.loc[trial, "mean"])
        for scale in scales[:-1]:
            assert scale.value(frame.loc[trial, scale.name]) == pytest.approx(table.loc[trial, scale.name])
    # t02 (0.94) and t04 (0.94) are the best: at the bottom of the metric axis; t01 (0.98) at the top
    assert frame.loc["t02", "RMSE"] == frame.loc["t04", "RMSE"] == 0 and frame.loc["t01", "RMSE"] == 1
    # learning rate on a log axis: 0.01 sits halfway (in logs) between 0.001 and 0.1
    assert frame.loc["t03", "param.learning_rate"] == pytest.approx(0.5)
    assert frame.loc["t05", "RMSE"] == frame.loc["t06", "RMSE"] == UNUSABLE_Y
    assert list(frame.loc[["t05", "t06"], "status"]) == ["diverged", "failed"]


def test_categorical_parameters_are_ticks(trials):
    trials = trials.assign(**{"param.solver": np.where(trials["trial"] < "t03", "cg", "cholesky")})
    frame, scales = parallel_coordinates(trials, "RMSE")
    solver = next(s for s in scales if s.name == "param.solver")
    assert solver.kind == "category" and solver.ticks() == [(0.0, "cg"), (1.0, "cholesky")]
    assert list(frame["param.solver"]) == [0, 0, 1, 1, 1, 1]


def test_parallel_coordinates_figure_draws_every_trial_and_the_selected_on_top(trials, tmp_path):
    path = tmp_path / "parallel_coordinates.svg"
    plots.plot_parallel_coordinates(trials, path, "RMSE", SPACE, context="sgd-biased")
    text = svg_text(path)
    ids = set(re.findall(r'id="(trial-t\d+)"', path.read_text()))
    assert ids == {f"trial-t0{i}" for i in range(1, 7)}
    assert 'id="selected"' in path.read_text() and "selected trial t02" in text
    assert "Parallel coordinates: sgd-biased" in text and "learning_rate (log)" in text
    assert "diverged: 1 trial" in text and "failed: 1 trial" in text and "lower is better" in text


def test_parallel_coordinates_without_a_tuned_parameter_says_so(tmp_path):
    single = trial_rows(specs={"t01": SPECS["t01"]})
    plots.plot_parallel_coordinates(single, tmp_path / "p.svg", "RMSE")
    assert "No tuned parameter" in svg_text(tmp_path / "p.svg")


# ----- importance ----------------------------------------------------------------------------------
def driven_trials(count=30, folds=(0, 1), seed=0):
    """``count`` trials of three parameters; the validation RMSE depends on the learning rate only."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        rate = float(np.exp(rng.uniform(math.log(1e-3), math.log(1e-1))))
        size, solver = int(rng.choice([8, 16, 32, 64])), ["cg", "cholesky"][i % 2]
        for fold in folds:
            rows.append({"model": "m", "kind": "sgd", "trial": f"t{i:02d}", "fold": fold, "stop_reason": "plateau",
                         "epochs_completed": 5, "param.learning_rate": rate, "param.embedding_size": size,
                         "param.solver": solver, "valid.RMSE": 0.9 + (math.log10(rate) + 2) ** 2 + 0.001 * fold})
    return pd.DataFrame(rows)


DRIVEN_SPACE = {"learning_rate": {"loguniform": [1e-3, 1e-1]}, "embedding_size": [8, 16, 32, 64],
                "solver": ["cg", "cholesky"]}


def test_importance_ranks_the_parameter_that_alone_drives_the_metric_first():
    frame = importance_table(driven_trials(), "RMSE", DRIVEN_SPACE)
    assert frame["parameter"].iloc[0] == "learning_rate" and frame["importance"].iloc[0] > 0.8
    assert frame["importance"].sum() == pytest.approx(1.0)
    # the metric is a parabola in log(rate) around 0.01, so the rank correlation is weak; size is unrelated
    by_name = frame.set_index("parameter")
    assert math.isnan(by_name.loc["solver", "spearman"])
    trials = driven_trials()
    ok = trial_table(trials, "RMSE")
    from scipy.stats import spearmanr
    expected = spearmanr(ok["param.embedding_size"], ok["mean"]).statistic
    assert by_name.loc["embedding_size", "spearman"] == pytest.approx(expected)


def test_importance_is_reproducible_and_seeded():
    first = importance_table(driven_trials(), "RMSE", DRIVEN_SPACE, seed=0)
    again = importance_table(driven_trials(), "RMSE", DRIVEN_SPACE, seed=0)
    pd.testing.assert_frame_equal(first, again)


def test_importance_of_a_monotone_parameter_has_a_perfect_rank_correlation():
    trials = driven_trials()
    trials["valid.RMSE"] = 1 - 0.1 * np.log10(trials["param.learning_rate"])
    frame = importance_table(trials, "RMSE", DRIVEN_SPACE).set_index("parameter")
    assert frame.loc["learning_rate", "spearman"] == pytest.approx(-1.0)
    assert frame["importance"].idxmax() == "learning_rate"


def test_importance_explains_why_it_cannot_be_computed(tmp_path):
    with pytest.raises(ImportanceError, match="at least two tuned parameters; tuned here: learning_rate"):
        importance_table(driven_trials().drop(columns=["param.embedding_size", "param.solver"]), "RMSE")
    with pytest.raises(ImportanceError, match="at least 4 usable trials .* there are 3"):
        importance_table(driven_trials(count=3), "RMSE")
    with pytest.raises(ImportanceError, match="same validation RMSE"):
        importance_table(driven_trials().assign(**{"valid.RMSE": 0.9}), "RMSE")
    plots.plot_importance(driven_trials(count=3), tmp_path / "i.svg", "RMSE", context="m")
    text = svg_text(tmp_path / "i.svg")
    assert "Parameter importance: m" in text and "at least 4 usable trials" in text and "3 trials, 3 usable" in text


def test_importance_figure_shows_each_parameter_its_share_and_rho(tmp_path):
    path = tmp_path / "importance.svg"
    plots.plot_importance(driven_trials(), path, "RMSE", DRIVEN_SPACE, context="m")
    text = svg_text(path)
    frame = importance_table(driven_trials(), "RMSE", DRIVEN_SPACE)
    assert f"{frame['importance'].iloc[0]:.2f}" in text and "30 usable trials, seed 0" in text
    assert "not a number: no rank" in text  # solver
    assert text.index("learning_rate") < text.index("embedding_size")  # most important first
    plots.plot_importance(driven_trials(), tmp_path / "again.svg", "RMSE", DRIVEN_SPACE, context="m")
    assert (tmp_path / "again.svg").read_bytes() == path.read_bytes()


def test_the_study_holds_one_trial_per_trial_with_the_spaces_distributions(trials):
    study = study_from_trials(trials, "RMSE", SPACE)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert len(study.trials) == 6
    states = {t.user_attrs["trial"]: t.state for t in study.trials}
    assert states["t05"] == states["t06"] == optuna.trial.TrialState.FAIL
    complete = {t.user_attrs["trial"]: t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    means = trial_table(trials, "RMSE").set_index("trial")["mean"]
    assert {k: t.value for k, t in complete.items()} == pytest.approx(means.dropna().to_dict())
    t02 = complete["t02"]
    assert t02.params == {"embedding_size": 8, "learning_rate": 0.003, "regularization.user": 0.1}
    assert t02.distributions["learning_rate"] == FloatDistribution(0.001, 0.1, log=True)
    assert t02.distributions["embedding_size"] == CategoricalDistribution([4, 8, 16, 32, 64])
    ndcg = study_from_trials(trials, "NDCG@10", SPACE)
    assert ndcg.direction == optuna.study.StudyDirection.MAXIMIZE


def test_pruned_trials_are_pruned_with_their_value_and_count_in_the_importance():
    trials = driven_trials()
    pruned = trials.assign(stop_reason=np.where(trials["trial"].isin(["t01", "t07", "t12"]) & (trials["fold"] == 1),
                                                "pruned", "plateau"))
    study = study_from_trials(pruned, "RMSE", DRIVEN_SPACE)
    states = {t.user_attrs["trial"]: (t.state, t.value) for t in study.trials}
    means = trial_table(pruned, "RMSE").set_index("trial")["mean"]
    assert states["t07"] == (optuna.trial.TrialState.PRUNED, pytest.approx(means["t07"]))
    assert sum(state == optuna.trial.TrialState.PRUNED for state, _ in states.values()) == 3
    # ranked like any other trial, so explained like any other: the same importance as unpruned
    pd.testing.assert_frame_equal(importance_table(pruned, "RMSE", DRIVEN_SPACE),
                                  importance_table(trials, "RMSE", DRIVEN_SPACE))


@pytest.mark.parametrize("entry, values, expected", [
    ({"loguniform_int": [4, 512]}, [8, 600], IntDistribution(4, 600, log=True)),  # widened to the values
    ({"uniform": [0.0, 1.0]}, [0.5], FloatDistribution(0.0, 1.0)),
    (["a", "b"], ["b"], CategoricalDistribution(["a", "b"])),
    (None, [0.001, 0.1], FloatDistribution(0.001, 0.1, log=True)),
    (None, [4, 8], IntDistribution(4, 8)),
    (None, ["cg", "cholesky"], CategoricalDistribution(["cg", "cholesky"])),
])
def test_distributions_follow_the_search_space(entry, values, expected):
    space = {"x": entry} if entry is not None else None
    assert distribution("x", pd.Series(values), space) == expected


# ----- iteration completion ------------------------------------------------------------------------
def test_completion_summary_is_the_tables_mean_and_median_by_reason(trials):
    trials = trials.copy()
    trials.loc[trials["trial"] == "t01", "stop_reason"] = "pruned"  # any reason a search records
    summary = completion_summary(trials).set_index("stop_reason")
    assert list(summary.index) == ["plateau", "max_epochs", "pruned", "failed", "diverged", "all"]
    assert summary.loc["all", "mean"] == pytest.approx(trials["epochs_completed"].mean())
    assert summary.loc["all", "median"] == trials["epochs_completed"].median() == 5.5
    assert summary.loc["pruned", "runs"] == 2 and summary.loc["pruned", "mean"] == 5.5  # 6 and 5 epochs
    for reason, part in trials.groupby("stop_reason"):
        assert summary.loc[reason, "mean"] == pytest.approx(part["epochs_completed"].mean())
        assert summary.loc[reason, "median"] == part["epochs_completed"].median()


def test_iteration_completion_colors_and_answers_pruned_runs(trials, tmp_path):
    trials = trials.copy()
    trials.loc[trials["trial"] == "t01", "stop_reason"] = "pruned"
    path = tmp_path / "iteration_completion.svg"
    plots.plot_iteration_completion(trials, history_rows(trials), path, "RMSE", max_epochs=10)
    text = svg_text(path)
    assert "pruned (2; mean 5.5, median 5.5)" in text and "plateau (4; mean 5.5, median 5.5)" in text
    assert "fill: #ff7f0e" in path.read_text() and REASON_COLORS["pruned"] == "tab:orange"


# ----- fold bands and loss parts ---------------------------------------------------------------------
def test_fold_band_is_the_min_mean_and_max_of_the_fold_curves():
    history = pd.DataFrame({"trial": "a", "fold": [0, 0, 0, 1, 1, 2, 2, 2],
                            "epoch": [1, 2, 3, 1, 2, 1, 2, 3],
                            "RMSE": [1.0, 0.9, 0.8, 1.2, 0.7, 1.1, 1.0, np.nan]})
    other = history.assign(trial="b", RMSE=5.0)
    band = fold_band(pd.concat([history, other]), "a", "RMSE")
    assert band["epoch"].tolist() == [1, 2, 3]
    assert band["mean"].tolist() == pytest.approx([1.1, 2.6 / 3, 0.8])
    assert band["min"].tolist() == [1.0, 0.7, 0.8] and band["max"].tolist() == [1.2, 1.0, 0.8]
    assert band["folds"].tolist() == [3, 3, 1]


def test_training_curves_draw_every_loss_part_and_the_fold_band(trials, tmp_path):
    history = history_rows(trials)
    history = history.assign(loss_data=history["train_loss"] * 0.6, loss_l2=history["train_loss"] * 0.3,
                             loss_gramian=history["train_loss"] * 0.1)
    path = tmp_path / "training_curves.svg"
    plots.plot_training_curves(trials, history, path, "RMSE", best="t02", context="sgd-biased")
    text = svg_text(path)
    assert "Training curves of the selected trial: sgd-biased" in text
    assert "trial t02: validation RMSE by epoch over 2 folds" in text
    assert "mean over folds" in text and "min to max over folds" in text
    assert "from epoch 8: fewer folds (stopped early)" in text  # t02 ran 7 and 10 epochs
    assert "data part" in text and "l2 part" in text and "gramian part" in text
    assert "validation RMSE (right axis)" in text and "only the total" not in text


def test_training_curves_say_when_only_the_total_loss_is_recorded(trials, tmp_path):
    path = tmp_path / "training_curves.svg"
    plots.plot_training_curves(trials, history_rows(trials), path, "RMSE")
    text = svg_text(path)
    assert "trial t02" in text and "only the total is recorded" in text and "part" not in text.replace("parts", "")


def test_training_curves_without_a_usable_trial_say_so(trials, tmp_path):
    failed = trials.assign(stop_reason="failed")
    plots.plot_training_curves(failed, history_rows(trials), tmp_path / "t.svg", "RMSE")
    assert "No usable trial" in svg_text(tmp_path / "t.svg")


# ----- embedding size against every metric -------------------------------------------------------
def test_embedding_size_has_a_panel_for_every_codex_metric(trials, tmp_path):
    scored = trials.assign(**{"valid.NDCG": 0.3, "valid.RecipRank": 0.2, "valid.RBP": 0.1})
    assert embedding_metrics(scored, "RMSE") == ["RMSE", "NDCG", "RecipRank", "RBP"]
    assert embedding_metrics(scored, "NDCG@10") == ["NDCG@10", "RMSE", "NDCG", "RecipRank", "RBP"]
    assert embedding_metrics(scored.assign(kind="wals"), "NDCG") == ["NDCG", "RecipRank", "RBP"]
    assert embedding_metrics(trials, "RMSE") == ["RMSE"]  # no other metric recorded
    path = tmp_path / "embedding_size.svg"
    plots.plot_embedding_size(scored, path, "RMSE")
    text = svg_text(path)
    assert "validation RMSE (selection metric) against embedding size" in text
    for metric in ("NDCG", "RecipRank", "RBP"):
        assert f"validation {metric} against embedding size" in text
    plots.plot_embedding_size(scored.assign(kind="wals"), path, "NDCG")
    assert "validation RMSE" not in svg_text(path)
