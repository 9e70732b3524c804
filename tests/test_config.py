import copy
from pathlib import Path

import pytest
import yaml

from mfsweep.pipeline.config import ConfigError, load, validate

ROOT = Path(__file__).resolve().parents[1]


def minimal():
    return {
        "datasets": {"synth": {"source": "synthetic", "users": 50, "items": 40, "ratings": 500}},
        "splits": {"random": {"method": "random"}},
        "models": {"als": {"kind": "als-biased", "params": {"embedding_size": [4, 8]}}},
        "experiments": [{"dataset": "synth", "split": "random", "models": ["als"]}],
    }


def test_defaults_are_filled_in():
    config = minimal()
    trials = validate(config)
    assert list(trials) == list(config["models"]) and all(trials.values())
    assert config["splits"]["random"] == {
        "method": "random", "test_fraction": 0.2, "validation_fraction": 0.1, "folds": 1, "holdout": 5, "seed": 42,
    }
    model = config["models"]["als"]
    assert model["max_epochs"] == 30 and model["threads"] == 1
    assert model["search"] == {"method": "grid", "trials": 20, "round_size": 8, "seed": 1}
    assert model["pruning"] == {"method": "none", "percentile": 25, "min_epochs": 3}
    assert model["early_stopping"] == {"metric": None, "patience": 3, "min_delta": 0.001}
    assert config["evaluation"]["cutoffs"] == [10, 100]
    assert config["keep_models"] is True and config["fail_fast"] is False


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    config = load(path)
    assert config["experiments"]


def broken(edit):
    config = minimal()
    edit(config)
    return config


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["models"]["als"].update(kind="svd"), "models.als.kind: 'svd' is not allowed; allowed: als, als-biased"),
        (lambda c: c["datasets"]["synth"].update(source="web"), "datasets.synth.source: 'web' is not allowed"),
        (lambda c: c["splits"]["random"].update(method="leave-one-out"), "splits.random.method"),
        (lambda c: c["splits"]["random"].update(test_fraction=1.5), "splits.random.test_fraction"),
        (lambda c: c["splits"]["random"].update(folds=0), "splits.random.folds"),
        (lambda c: c["splits"]["random"].update(bogus=1), "splits.random: Additional properties are not allowed"),
        (lambda c: c["experiments"][0].update(dataset="ml-7"), "experiments.0.dataset: 'ml-7' is not defined"),
        (lambda c: c["experiments"][0].update(split="nope"), "experiments.0.split: 'nope' is not defined"),
        (lambda c: c["experiments"][0].update(models=["svd"]), "experiments.0.models: 'svd' is not defined"),
        (lambda c: c["models"]["als"]["params"].update(embedding_size=0), "embedding_size must be an integer >= 1"),
        (lambda c: c["models"]["als"]["params"].update(regularization=-1.0), "regularization must be >= 0"),
        (lambda c: c["models"]["als"]["params"].update(embedding_size=[]), "models.als: params.embedding_size: empty"),
        (lambda c: c["datasets"].update(ml={"source": "movielens", "name": "ml-5m"}), "datasets.ml.name"),
        (lambda c: c["datasets"].update(mine={"source": "file"}), "datasets.mine: 'path' is a required property"),
        (lambda c: c["splits"].update(t={"method": "temporal", "folds": 3}), "splits.t.folds: the temporal split"),
        (lambda c: c["evaluation"].update(cutoffs=[0]) if "evaluation" in c else c.update(evaluation={"cutoffs": [0]}),
         "evaluation.cutoffs.0"),
        (lambda c: c["models"]["als"].update(early_stopping={"metric": "NDCG@50"}),
         "models.als.early_stopping.metric: 'NDCG@50' is not a validation metric"),
    ],
)
def test_bad_config_names_the_key(edit, message):
    with pytest.raises(ConfigError) as error:
        validate(broken(edit))
    assert message in str(error.value)


def test_a_missing_ratings_file_is_named(tmp_path):
    config = minimal()
    config["datasets"]["mine"] = {"source": "file", "path": str(tmp_path / "ratings.csv")}
    with pytest.raises(ConfigError, match=r"datasets.mine.path: .*ratings.csv does not exist"):
        validate(config)


def test_unknown_top_level_key_is_named():
    config = minimal()
    config["modles"] = {}
    with pytest.raises(ConfigError, match="Additional properties are not allowed .'modles' was unexpected"):
        validate(config)


def test_load_names_a_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.yaml")


def test_user_split_defaults_to_five_folds():
    config = minimal()
    config["splits"]["user"] = {"method": "user"}
    validate(config)
    assert config["splits"]["user"]["folds"] == 5


def test_validate_does_not_need_a_copy():
    config = minimal()
    before = copy.deepcopy(config)
    validate(config)
    assert config["datasets"] == {**before["datasets"], "synth": {**before["datasets"]["synth"], "duplicates": "error", "seed": 7}}
    yaml.safe_dump(config)  # still plain data
