"""The round files, results and Optuna storage of a search in rounds (mfsweep.pipeline.search_jobs)."""

import pandas as pd

from mfsweep.pipeline.search_jobs import latest_histories, order_of, with_rung_rounds
from mfsweep.rounds import RoundFile


def rung(round_index, epochs, trials, resumed=()):
    entries = [{"trial": t, "proposed": n, "params": {}, **({"resume": "rx"} if t in resumed else {})}
               for n, t in enumerate(trials)]
    return RoundFile(round_index, entries, {"r": list(trials)}, {"method": "none"},
                     rung={"bracket": 0, "level": int(bool(resumed)), "trials": len(trials), "epochs": epochs})


def history(trial, epochs):
    return pd.DataFrame({"trial": trial, "epoch": range(1, epochs + 1), "RMSE": 1.0})


def test_a_later_units_history_of_a_trial_replaces_the_earlier_one_on_its_fold():
    pairs = [(0, pd.concat([history("a", 1), history("b", 1)])), (1, history("a", 1)), (0, history("a", 3))]
    kept = latest_histories(pairs)
    assert [fold for fold, _ in kept] == [0, 1, 0]
    assert kept[0][1]["trial"].tolist() == ["b"]                      # a on fold 0 went on in the third unit
    assert kept[1][1].equals(pairs[1][1]) and kept[2][1].equals(pairs[2][1])


def test_histories_of_units_without_a_trial_in_common_are_kept_as_they_are():
    pairs = [(0, history("a", 2)), (0, history("b", 2)), (0, pd.DataFrame({"trial": pd.Series([], dtype=str)}))]
    assert all(kept is given for (_, kept), (_, given) in zip(latest_histories(pairs), pairs))


def test_each_epoch_is_attributed_to_the_rung_that_trained_it():
    rounds = [rung(1, 1, ["a", "b"]), rung(2, 3, ["a"], resumed={"a"})]
    frame = with_rung_rounds(pd.concat([history("a", 3), history("b", 1)], ignore_index=True), rounds)
    assert list(frame.columns) == ["trial", "epoch", "round", "RMSE"]
    assert frame["round"].tolist() == [1, 2, 2, 1]


def test_a_promoted_trial_keeps_the_round_that_first_proposed_it():
    rounds = [rung(1, 1, ["a", "b"]), rung(2, 3, ["a"], resumed={"a"})]
    assert order_of(rounds) == {"a": [1, 0], "b": [1, 1]}
