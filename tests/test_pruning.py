"""Pruning: the reference of each fold from the earlier rounds, and the decision during training."""

import numpy as np
import pandas as pd
import pytest

from mfsweep.models.base import EpochState
from mfsweep.pruning import Pruner, prune_reference
from mfsweep.train import Plateau, run_trial


def histories_of(curves, metric="RMSE", fold=0):
    return pd.DataFrame([{"trial": trial, "fold": fold, "epoch": e + 1, metric: v}
                         for trial, values in curves.items() for e, v in enumerate(values)])


CURVES = {"a": [1.0, 0.9, 0.8, 0.7], "b": [1.2, 1.1, 1.0, 0.95], "c": [1.4, 1.3, 1.25, 1.2], "d": [1.1, 1.2]}


def test_median_reference_uses_best_so_far_and_carries_stopped_trials():
    reference = prune_reference(histories_of(CURVES), "RMSE", "median", min_epochs=1)[0]
    # epoch 2 best-so-far: a 0.9, b 1.1, c 1.3, d 1.1 -> median 1.1; epoch 4: 0.7, 0.95, 1.2, 1.1 -> 1.025
    assert reference == pytest.approx({1: 1.15, 2: 1.1, 3: 1.05, 4: 1.025})


def test_percentile_reference_and_min_epochs():
    reference = prune_reference(histories_of(CURVES), "RMSE", "percentile", percentile=25, min_epochs=3)[0]
    assert set(reference) == {3, 4}
    assert reference[3] == pytest.approx(np.percentile([0.8, 1.0, 1.25, 1.1], 25))


def test_higher_is_better_takes_the_upper_percentile():
    curves = {t: [2 - v for v in values] for t, values in CURVES.items()}
    reference = prune_reference(histories_of(curves, "NDCG@10"), "NDCG@10", "percentile", percentile=25, min_epochs=1)[0]
    assert reference[3] == pytest.approx(np.percentile([1.2, 1.0, 0.75, 0.9], 75))
    median = prune_reference(histories_of(curves, "NDCG@10"), "NDCG@10", "median", min_epochs=1)[0]
    assert median[4] == pytest.approx(2 - 1.025)


def test_reference_is_per_fold_and_empty_without_earlier_rounds():
    frame = pd.concat([histories_of(CURVES, fold=0), histories_of({"a": [5.0, 5.0]}, fold=1)])
    reference = prune_reference(frame, "RMSE", "median", min_epochs=2, max_epochs=3)
    assert reference[1] == {2: 5.0, 3: 5.0} and set(reference[0]) == {2, 3}
    assert prune_reference(pd.DataFrame(), "RMSE", "median") == {}
    assert prune_reference(histories_of(CURVES), "RMSE", "none") == {}


def test_pruner_decides_on_the_best_value_so_far_lower_and_higher_is_better():
    lower = Pruner("RMSE", {2: 1.0, 3: 0.9})
    assert not lower.prune(1, 1.5)  # no threshold at epoch 1 (min_epochs)
    assert not lower.prune(2, 0.95)  # best 0.95 <= 1.0
    assert lower.prune(3, 0.97)  # best 0.95 > 0.9
    higher = Pruner("NDCG@10", {2: 0.3})
    assert not higher.prune(1, 0.1)
    assert not higher.prune(2, 0.3)  # equal is not worse
    assert Pruner("NDCG@10", {2: 0.3}).prune(2, 0.29)


class Steps:
    """A model stand-in whose epochs give a fixed sequence of validation values."""

    def __init__(self, values):
        self.values = values
        self.user_factors = self.item_factors = np.zeros((1, 1))

    def fit_epochs(self, train, n_users, n_items, resume=None):
        for epoch, _ in enumerate(self.values, start=1):
            yield EpochState(epoch, 1.0, self)

    def state(self):
        return {}

    def training_state(self):
        return {}


def test_run_trial_stops_a_pruned_trial_and_keeps_its_best_epoch():
    values = iter([1.0, 0.95, 0.99, 0.8, 0.7])
    result = run_trial(Steps([0] * 5), None, lambda model: {"RMSE": next(values)}, Plateau("RMSE", patience=10),
                       pruner=Pruner("RMSE", {3: 0.9, 4: 0.9}))
    assert result.stop_reason == "pruned" and result.epochs_completed == 3 and result.best_epoch == 2
    unpruned = iter([1.0, 0.95, 0.99, 0.8, 0.7])
    result = run_trial(Steps([0] * 5), None, lambda model: {"RMSE": next(unpruned)}, Plateau("RMSE", patience=10))
    assert result.stop_reason == "max_epochs" and result.epochs_completed == 5
