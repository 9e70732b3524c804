import math

import numpy as np
import pandas as pd
import pytest
from conftest import make_ratings

from mfsweep.models import create
from mfsweep.models.base import MFModel
from mfsweep.pruning import Pruner
from mfsweep.train import Plateau, run_trial
from mfsweep.trials import selection_metric


class Scripted(MFModel):
    """A model whose epochs follow a script of losses; factors record the epoch number."""

    kind = "scripted"
    defaults = {"losses": ()}

    def _setup(self, matrix, rng):
        self.user_factors = np.zeros((matrix.n_users, 2), np.float32)
        self.item_factors = np.zeros((matrix.n_items, 2), np.float32)

    def _epoch(self, epoch):
        self.user_factors[:] = epoch
        return self.params["losses"][epoch - 1]


TRAIN = pd.DataFrame({"user": [0, 1, 2], "item": [0, 1, 2], "rating": [1.0, 2.0, 3.0]})


def trial(losses, metric="train_loss", patience=2, min_delta=0.01, evaluate=None):
    model = Scripted(losses=tuple(losses), epochs=len(losses))
    return run_trial(model, TRAIN, evaluate, Plateau(metric, patience, min_delta))


def test_runs_to_max_epochs_while_improving():
    result = trial([5.0, 4.0, 3.0, 2.0])
    assert result.stop_reason == "max_epochs"
    assert result.epochs_completed == 4 and result.best_epoch == 4
    assert list(result.history["epoch"]) == [1, 2, 3, 4]
    assert list(result.history["train_loss"]) == [5.0, 4.0, 3.0, 2.0]
    assert (result.history["seconds"] >= 0).all() and (result.history["cpu_seconds"] >= 0).all()


def test_plateau_stops_after_patience_epochs_without_relative_improvement():
    # 4.0 -> 3.99 is a 0.25 % gain, under min_delta 1 %: no improvement
    result = trial([5.0, 4.0, 3.99, 3.98, 1.0, 0.5])
    assert result.stop_reason == "plateau"
    assert result.epochs_completed == 4
    assert result.best_epoch == 2
    assert np.all(result.best_state["user_factors"] == 2)  # the model as it was at the best epoch


def test_non_finite_loss_marks_the_trial_diverged_and_keeps_only_finite_epochs():
    result = trial([5.0, 4.0, math.inf, 1.0])
    assert result.stop_reason == "diverged"
    assert result.epochs_completed == 2
    assert np.isfinite(result.history["train_loss"]).all()
    assert result.best_epoch == 2


def test_divergence_at_the_first_epoch_leaves_no_best_state():
    result = trial([math.nan, 1.0])
    assert result.stop_reason == "diverged"
    assert result.best_state is None and result.best_epoch == 0
    assert result.history.empty
    assert result.checkpoint is None     # a diverged trial is not to be continued


def test_validation_metrics_drive_stopping_and_land_in_history():
    ndcg = iter([0.10, 0.20, 0.21, 0.19, 0.30])

    def evaluate(model):
        return {"NDCG": next(ndcg), "RMSE": 1.0}

    result = trial([5.0, 4.0, 3.0, 2.0, 1.0], metric="NDCG", patience=2, min_delta=0.1, evaluate=evaluate)
    assert result.stop_reason == "plateau"  # 0.21 is < 10 % better than 0.20, 0.19 worse
    assert result.best_epoch == 2
    assert result.validation == {"NDCG": 0.20, "RMSE": 1.0}
    assert list(result.history.columns[:5]) == ["epoch", "train_loss", "seconds", "cpu_seconds", "eval_seconds"]
    assert list(result.history["NDCG"]) == [0.10, 0.20, 0.21, 0.19]


# ----- continuation ----------------------------------------------------------------------------------
def test_a_continued_trial_keeps_its_history_best_state_and_timings():
    losses = (5.0, 4.0, 3.0, 3.5, 2.0)
    straight = trial(losses, patience=3)
    split = run_trial(Scripted(losses=losses, epochs=2), TRAIN, None, Plateau("train_loss", 3, 0.01))
    resumed = run_trial(Scripted(losses=losses, epochs=5), TRAIN, None, Plateau("train_loss", 3, 0.01),
                        resume=split.checkpoint)
    timings = ["seconds", "cpu_seconds", "eval_seconds"]
    assert resumed.history.drop(columns=timings).equals(straight.history.drop(columns=timings))
    assert list(resumed.history["train_loss"]) == list(losses)
    assert (resumed.stop_reason, resumed.best_epoch) == (straight.stop_reason, straight.best_epoch) == ("max_epochs", 5)
    assert resumed.history.iloc[:2].equals(split.history)     # the checkpoint's rows, timings and all
    assert np.all(resumed.best_state["user_factors"] == 5)
    assert resumed.train_seconds >= split.train_seconds and resumed.cpu_seconds >= split.cpu_seconds
    assert resumed.train_seconds == pytest.approx(split.train_seconds + resumed.history["seconds"].iloc[2:].sum())
    assert int(resumed.checkpoint.training["epoch"]) == 5


def test_a_continued_trial_is_pruned_on_the_best_of_all_its_epochs():
    def evaluate(model):        # NDCG by epoch: the best (0.5) comes before the split
        return {"NDCG": {1: 0.5, 2: 0.1, 3: 0.1}[int(model.user_factors[0, 0])]}

    def run(epochs, resume=None):
        return run_trial(Scripted(losses=(3.0, 2.0, 1.0), epochs=epochs), TRAIN, evaluate, Plateau("NDCG", 5, 0.01),
                         pruner=Pruner("NDCG", {3: 0.3}), resume=resume)

    straight = run(3)
    assert straight.stop_reason == "max_epochs"     # its best, 0.5, beats the reference 0.3 at epoch 3
    assert run(3, resume=run(2).checkpoint).stop_reason == "max_epochs"


def test_a_checkpoint_of_a_trial_stopped_on_a_plateau_is_not_continued():
    stopped = trial([5.0, 4.0, 4.0, 4.0, 1.0], patience=2)
    assert stopped.stop_reason == "plateau" and stopped.checkpoint.stop_reason == "plateau"
    again = Scripted(losses=(5.0, 4.0, 4.0, 4.0, 1.0), epochs=5)
    with pytest.raises(ValueError, match=r"stopped on a plateau of train_loss at epoch 4 .*cannot be continued"):
        run_trial(again, TRAIN, None, Plateau("train_loss", 2, 0.01), resume=stopped.checkpoint)


def test_resume_refuses_another_kind_of_training_or_fewer_epochs():
    model = Scripted(losses=(3.0, 2.0, 1.0), epochs=2)
    with pytest.raises(ValueError, match="fit_epochs has not set up"):
        model.training_state()
    saved = model.fit(TRAIN).training_state()
    other = Scripted(losses=(3.0, 2.0, 0.5), epochs=3)
    with pytest.raises(ValueError, match=r"only epochs may differ"):
        list(other.fit_epochs(TRAIN, resume=saved))
    with pytest.raises(ValueError, match=r"2 epochs done, more than this model's epochs \(1\)"):
        list(Scripted(losses=(3.0, 2.0, 1.0), epochs=1).fit_epochs(TRAIN, resume=saved))
    partial = {name: value for name, value in saved.items() if name != "item_factors"}
    with pytest.raises(ValueError, match=r"lacks 'item_factors'"):
        list(Scripted(losses=(3.0, 2.0, 1.0), epochs=3).fit_epochs(TRAIN, resume=partial))
    continued = [s.epoch for s in Scripted(losses=(3.0, 2.0, 1.0), epochs=3).fit_epochs(TRAIN, resume=saved)]
    assert continued == [3]


def test_selection_metric_by_kind():
    assert selection_metric("wals") == "NDCG"
    assert selection_metric("wals", {"target": "preference"}) == "NDCG"
    assert selection_metric("wals", {"target": "rating"}) == "RMSE"
    assert selection_metric("als-biased") == "RMSE"
    assert selection_metric("adam") == "RMSE"


@pytest.mark.parametrize("metric, values, best", [("RMSE", [1.0, 0.9, 0.95], 2), ("NDCG", [0.1, 0.3, 0.2], 2)])
def test_plateau_direction(metric, values, best):
    plateau = Plateau(metric, patience=5, min_delta=0.0)
    for epoch, value in enumerate(values, 1):
        plateau.improved(epoch, value)
    assert plateau.best_epoch == best


# ----- loss parts ------------------------------------------------------------------------------------
LOSS_PART_CASES = [
    ("als", {}), ("als-biased", {"regularization_scaling": "none"}), ("wals", {}),
    ("wals", {"target": "rating", "weighting": "item_frequency", "alpha": 20.0, "unobserved_weight": 0.01}),
    ("wals", {"regularization_scaling": "frequency", "unobserved_weight": 0.1, "regularization_exponent": 0.8}),
    ("sgd", {}), ("sgd-biased", {"regularization_bias": 0.3}), ("sgd-gramian", {"gravity": 0.05}),
    ("adam", {}), ("adam", {"biased": False, "decoupled": False}),
]


@pytest.mark.parametrize("kind, params", LOSS_PART_CASES)
def test_loss_parts_add_up_to_the_training_loss(kind, params):
    frame = make_ratings(40, 30, 10, seed=2)
    model = create(kind, embedding_size=6, epochs=3, regularization=0.2, **params)
    result = run_trial(model, frame, None, Plateau("train_loss", patience=5))
    history = result.history
    parts = ["loss_data", "loss_l2"] + (["loss_gramian"] if kind == "sgd-gramian" else [])
    assert [c for c in history.columns if c.startswith("loss_")] == parts
    assert (history[parts] > 0).all().all()
    np.testing.assert_allclose(history[parts].sum(axis=1), history["train_loss"], rtol=1e-12)
    # the parts are what the model's own loss is made of: the data part alone is its error term
    assert (history["loss_data"] < history["train_loss"]).all()
