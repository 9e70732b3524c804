import copy
from pathlib import Path

import pytest
import yaml
from workflow_helpers import failed

from mfsweep.pipeline.config import ConfigError, load, read_yaml, validate

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "config" / "config.yaml"
TINY = ROOT / "tests" / "configs" / "tiny.yaml"


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
        # a dataset entry holds only the keys its source reads
        (lambda c: c["datasets"].update(mine={"source": "file", "path": "r.csv", "seperator": ";"}),
         "datasets.mine: 'seperator' is not allowed; allowed: source, path, sep, header, columns, duplicates, seed, "
         "min_rating, min_user_ratings"),
        (lambda c: c["datasets"]["synth"].update(userz=5), "datasets.synth: 'userz' is not allowed"),
        (lambda c: c["datasets"].update(ml={"source": "movielens", "path": "x.zip"}),
         "datasets.ml: 'path' is not allowed; allowed: source, name, duplicates, seed, min_rating, min_user_ratings"),
        (lambda c: c["datasets"]["synth"].update(min_user_ratings=0), "datasets.synth.min_user_ratings: 0 is less"),
        (lambda c: c["datasets"]["synth"].update(min_rating="4"), "datasets.synth.min_rating: '4' is not of type"),
        # NaN and infinity are refused wherever a number goes
        (lambda c: c["models"]["als"]["params"].update(regularization=float("nan")),
         "models.als.params.regularization: nan is not a finite number"),
        (lambda c: c["models"]["als"]["params"].update(damping=[5.0, float("inf")]),
         "models.als.params.damping.1: inf is not a finite number"),
        (lambda c: c["splits"]["random"].update(test_fraction=float("nan")),
         "splits.random.test_fraction: nan is not a finite number"),
        (lambda c: c.update(evaluation={"relevance_threshold": float("-inf")}),
         "evaluation.relevance_threshold: -inf is not a finite number"),
        (lambda c: c["models"]["als"].update(search={"method": "random"},
                                             params={"regularization": {"loguniform": [0.01, float("inf")]}}),
         "models.als.params.regularization.loguniform.1: inf is not a finite number"),
        # a number written as text is refused, saying how to write it
        (lambda c: c["models"]["als"]["params"].update(regularization="2e-2"),
         "regularization: expected a number, got the text '2e-2' (write numbers unquoted)"),
    ],
)
def test_bad_config_names_the_key(edit, message):
    with pytest.raises(ConfigError) as error:
        validate(broken(edit))
    assert message in str(error.value)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["models"]["als"].update(search={"method": "random", "trials": 4.0}),
         "models.als.search.trials: 4.0 is not an integer; write 4"),
        (lambda c: c["models"]["als"].update(search={"method": "tpe", "round_size": 2.0}),
         "models.als.search.round_size: 2.0 is not an integer; write 2"),
        (lambda c: c["models"]["als"].update(batch=2.0), "models.als.batch: 2.0 is not an integer; write 2"),
        (lambda c: c["models"]["als"].update(max_epochs=3.0), "models.als.max_epochs: 3.0 is not an integer; write 3"),
        (lambda c: c["datasets"]["synth"].update(ratings=3000.0),
         "datasets.synth.ratings: 3000.0 is not an integer; write 3000"),
        (lambda c: c["splits"]["random"].update(folds=2.0), "splits.random.folds: 2.0 is not an integer; write 2"),
        (lambda c: c.update(evaluation={"validation_users": 50.0}),
         "evaluation.validation_users: 50.0 is not an integer; write 50"),
        # a model parameter: the model refuses it, by the same rule
        (lambda c: c["models"]["als"]["params"].update(embedding_size=[4, 8.0]),
         "models.als: params.embedding_size: the value 8.0 is not valid: als-biased: embedding_size must be an "
         "integer >= 1, got 8.0 (write 8)"),
    ],
)
def test_whole_floats_are_refused_where_an_integer_goes(edit, message):
    with pytest.raises(ConfigError) as error:
        validate(broken(edit))
    assert message in str(error.value)


def test_a_float_where_a_boolean_goes_is_not_called_an_integer():
    with pytest.raises(ConfigError) as error:
        validate(broken(lambda c: c.update(keep_models=1.0)))
    assert "keep_models: 1.0 is not of type 'boolean'" in str(error.value)


@pytest.mark.parametrize(
    "edit, message",
    [
        # a negative seed is refused by numpy and Optuna: named at validation
        (lambda c: c["models"]["als"].update(search={"method": "random", "seed": -1}),
         "models.als.search.seed: -1 is less than the minimum of 0"),
        (lambda c: c["splits"]["random"].update(seed=-1), "splits.random.seed: -1 is less than the minimum of 0"),
        (lambda c: c["datasets"]["synth"].update(seed=-1), "datasets.synth.seed: -1 is less than the minimum of 0"),
        (lambda c: c["models"]["als"]["params"].update(seed=-1), "seed must be an integer >= 0, got -1"),
        # an adaptive search of a space with fewer points than trials
        (lambda c: c["models"]["als"].update(search={"method": "tpe", "trials": 4}, params={"embedding_size": 4}),
         "models.als.search.trials: 4 trials of a tpe search, but every parameter is fixed: there is nothing to "
         "search; give a list or a distribution, or set trials: 1 (or use method grid)"),
        (lambda c: c["models"]["als"].update(search={"method": "tpe", "trials": 5},
                                             params={"embedding_size": [4, 8], "damping": {"loguniform_int": [1, 2]}}),
         "models.als.search.trials: 5 trials of a tpe search, but its space holds only 4 distinct trials"),
        # pruning settings that mean nothing
        (lambda c: c["models"]["als"].update(pruning={"method": "median", "percentile": 10}),
         "models.als.pruning.percentile: pruning method 'median' does not read it; remove it, or set method: "
         "percentile"),
        (lambda c: c["models"]["als"].update(pruning={"percentile": 10}),
         "models.als.pruning.percentile: pruning method 'none' does not read it"),
        (lambda c: c["models"]["als"].update(pruning={"method": "median", "min_epochs": 6}, max_epochs=5),
         "models.als.pruning.min_epochs: 6 with max_epochs 5 prunes nothing"),
        (lambda c: c["models"]["als"].update(pruning={"method": "percentile"}, max_epochs=3),
         "models.als.pruning.min_epochs: 3 with max_epochs 3 prunes nothing"),
        # a halving search stops trials itself, and needs a rung below max_epochs
        (lambda c: c["models"]["als"].update(search={"method": "hyperband"}, pruning={"method": "median"}),
         "models.als.pruning.method: a hyperband search stops trials at its rungs itself; set pruning method none"),
        (lambda c: c["models"]["als"].update(search={"method": "sha", "min_epochs": 2, "eta": 3}, max_epochs=5),
         "models.als.search.min_epochs: 2 epochs times eta 3 exceeds max_epochs 5, so there is no rung"),
        (lambda c: c["models"]["als"].update(search={"method": "hyperband", "eta": 1}),
         "models.als.search.eta: 1 is less than the minimum of 2"),
        (lambda c: c["models"]["als"].update(search={"method": "hyperband", "sampler": "gp"}),
         "models.als.search.sampler: 'gp' is not allowed; allowed: random, tpe"),
        (lambda c: c["models"]["als"].update(search={"method": "tpe", "eta": 2}),
         "models.als.search.eta: search method 'tpe' does not read it; remove it, or set method: hyperband or sha"),
    ],
)
def test_settings_that_cannot_be_honoured_are_refused(edit, message):
    with pytest.raises(ConfigError) as error:
        validate(broken(edit))
    assert message in str(error.value)


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c["models"]["als"].update(search={"method": "tpe", "trials": 1}, params={"embedding_size": 4}),
        lambda c: c["models"]["als"].update(search={"method": "tpe", "trials": 2}),
        lambda c: c["models"]["als"].update(pruning={"method": "percentile", "percentile": 10}),
        lambda c: c["models"]["als"].update(pruning={"method": "median"}, max_epochs=4),   # min_epochs 3 (default)
        lambda c: c["models"]["als"].update(max_epochs=2),   # min_epochs 3 (default), but no pruning
        lambda c: c["models"]["als"].update(search={"method": "random", "seed": 0}),
        lambda c: c["models"]["als"].update(search={"method": "hyperband", "min_epochs": 2, "eta": 2}, max_epochs=4),
        lambda c: c["models"]["als"].update(search={"method": "sha", "trials": 9, "sampler": "tpe"}, max_epochs=3),
    ],
)
def test_settings_that_can_be_honoured_pass(edit):
    assert "als" in validate(broken(edit))   # no ConfigError


def test_a_halving_search_has_its_defaults_and_no_other_search_gets_them():
    config = broken(lambda c: c["models"]["als"].update(search={"method": "hyperband"}))
    validate(config)
    assert config["models"]["als"]["search"] == {"method": "hyperband", "trials": 20, "round_size": 8, "seed": 1,
                                                 "min_epochs": 1, "eta": 3, "iterations": 1, "sampler": "random"}
    config = broken(lambda c: c["models"]["als"].update(search={"method": "tpe", "trials": 2}))
    validate(config)
    assert not {"min_epochs", "eta", "iterations", "sampler"} & set(config["models"]["als"]["search"])


BATCH_TPE = {"constant_liar": True, "multivariate": False, "n_startup_trials": 8}


def test_sampler_options_of_a_tpe_search_reach_its_rounds():
    from mfsweep.pipeline import workflow

    config = broken(lambda c: c["models"]["als"].update(search={"method": "tpe", "trials": 2, "sampler_options": BATCH_TPE}))
    trials = validate(config)
    assert workflow.propose_settings(config, trials, "als", 1)["sampler_options"] == BATCH_TPE
    plain = broken(lambda c: c["models"]["als"].update(search={"method": "tpe", "trials": 2}))
    assert "sampler_options" not in plain["models"]["als"]["search"]  # no default: Optuna's own
    assert "sampler_options" not in workflow.propose_settings(plain, validate(plain), "als", 1)


@pytest.mark.parametrize(
    "search, message",
    [
        ({"method": "random", "sampler_options": BATCH_TPE},
         "models.als.search.sampler_options: search method 'random' does not read it (only tpe does); remove it, "
         "or set method: tpe"),
        ({"method": "gp", "trials": 2, "sampler_options": {"n_startup_trials": 8}},
         "models.als.search.sampler_options: search method 'gp' does not read it"),
        ({"sampler_options": {"constant_liar": True}}, "models.als.search.sampler_options: search method 'grid'"),
        ({"method": "tpe", "trials": 2, "sampler_options": {"gamma": 0.1}},
         "models.als.search.sampler_options: Additional properties are not allowed ('gamma' was unexpected); "
         "allowed keys: constant_liar, multivariate, n_startup_trials"),
        ({"method": "tpe", "trials": 2, "sampler_options": {"n_startup_trials": -1}},
         "models.als.search.sampler_options.n_startup_trials: -1 is less than the minimum of 0"),
        ({"method": "tpe", "trials": 2, "sampler_options": {"n_startup_trials": 8.0}},
         "models.als.search.sampler_options.n_startup_trials: 8.0 is not an integer; write 8"),
        ({"method": "tpe", "trials": 2, "sampler_options": {"constant_liar": "yes"}},
         "models.als.search.sampler_options.constant_liar: 'yes' is not of type 'boolean'"),
        ({"method": "tpe", "trials": 2, "sampler_options": [8]},
         "models.als.search.sampler_options: [8] is not of type 'object'"),
    ],
)
def test_sampler_options_other_than_tpes_are_refused(search, message):
    with pytest.raises(ConfigError) as error:
        validate(broken(lambda c: c["models"]["als"].update(search=search)))
    assert message in str(error.value)


def test_dataset_settings_of_each_source_validate(tmp_path):
    ratings = tmp_path / "r.csv"
    ratings.write_text("1,2,4\n")
    config = minimal()
    config["datasets"] = {
        "synth": {**config["datasets"]["synth"], "min_rating": 4, "min_user_ratings": 5},
        "ml": {"source": "movielens", "name": "ml-20m", "min_rating": 4.0, "min_user_ratings": 5},
        # header: false was refused by the schema, though prepare reads it
        "mine": {"source": "file", "path": str(ratings), "header": False, "columns": {"user": 0, "item": 1, "rating": 2},
                 "min_rating": 3.5},
    }
    validate(config)
    assert config["datasets"]["mine"]["header"] is False
    assert (config["datasets"]["ml"]["min_rating"], config["datasets"]["ml"]["min_user_ratings"]) == (4.0, 5)


def test_dataset_filters_have_no_default():
    # a dataset without them validates to the same mapping as before they existed (prepare reruns for nothing)
    config = minimal()
    validate(config)
    assert config["datasets"]["synth"] == {"source": "synthetic", "users": 50, "items": 40, "ratings": 500,
                                           "duplicates": "error", "seed": 7}


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


def test_the_schema_allows_every_model_kind():
    from mfsweep.models import KINDS
    from mfsweep.pipeline.config import SCHEMA

    schema = read_yaml(SCHEMA)
    kinds = schema["properties"]["models"]["additionalProperties"]["properties"]["kind"]["enum"]
    assert kinds == list(KINDS)


def test_create_refuses_non_finite_parameters_of_every_kind():
    from mfsweep.models import ParameterError, create

    for kind, name in [("sgd", "regularization"), ("als-biased", "damping"), ("wals", "alpha"),
                       ("sgd-gramian", "gravity"), ("adam", "weight_decay"), ("sgd", "learning_rate"),
                       ("bpr", "learning_rate"), ("bpr", "init_std")]:
        for bad in (float("nan"), float("inf")):
            with pytest.raises(ParameterError, match=f"{name}.*(finite|must be)"):
                create(kind, **{name: bad})


def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("models:\n  sgd-biased:\n    kind: sgd\n  sgd-biased:\n    kind: sgd-biased\n")
    with pytest.raises(ConfigError, match=f"{path}: key 'sgd-biased' is given twice in one mapping, on lines 2 and 4"):
        read_yaml(path)
    path.write_text("models:\n  m:\n    max_epochs: 4\n    kind: sgd\n    max_epochs: 5\n")
    with pytest.raises(ConfigError, match="key 'max_epochs' is given twice in one mapping, on lines 3 and 5"):
        load(path)


def test_numbers_with_an_exponent_and_no_dot_are_numbers(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("a: 2e-2\nb: 1E3\nc: -5e+1\nd: 2.0e-2\ne: 12\nf: '2e-2'\ng: 1.5\nh: e5\n")
    assert read_yaml(path) == {"a": 0.02, "b": 1000.0, "c": -50.0, "d": 0.02, "e": 12, "f": "2e-2", "g": 1.5,
                               "h": "e5"}
    assert [type(v) for v in read_yaml(path).values()][:5] == [float, float, float, float, int]


def test_trial_ids_of_the_shipped_configs_do_not_change():
    tiny = validate(read_yaml(ROOT / "tests" / "configs" / "tiny.yaml"))
    assert list(tiny["als-biased"]) == ["e91099897b", "3b1d387844", "aae7283da2"]
    assert list(tiny["sgd-biased"]) == ["d26886cbff", "e8773d2f5a", "121f042913"]
    default = validate(read_yaml(ROOT / "config" / "config.yaml"))
    assert list(default["sgd-biased"])[:2] == ["7120b0af61", "0e752dbc2f"]


def test_bpr_in_the_default_config_leaves_the_other_models_trials_as_they_were():
    config = read_yaml(ROOT / "config" / "config.yaml")
    without = copy.deepcopy(config)
    del without["models"]["bpr"]
    without["experiments"][0]["models"].remove("bpr")
    with_bpr, before = validate(config), validate(without)
    assert {name: trials for name, trials in with_bpr.items() if name != "bpr"} == before
    assert len(with_bpr["bpr"]) == 12 and config["models"]["bpr"]["kind"] == "bpr"


def test_an_exponent_number_gives_the_trial_of_the_same_decimal(tmp_path):
    written = tmp_path / "exp.yaml"
    written.write_text((ROOT / "tests" / "configs" / "tiny.yaml").read_text().replace(
        "regularization: 0.02", "regularization: 2e-2"))
    assert "2e-2" in written.read_text()
    assert validate(read_yaml(written)) == validate(read_yaml(ROOT / "tests" / "configs" / "tiny.yaml"))


def test_predictions_are_checked(tmp_path, monkeypatch):
    from mfsweep.pipeline.workflow import predicted_models, prediction_settings, targets

    monkeypatch.chdir(tmp_path)
    config = minimal()
    config["experiments"][0]["predictions"] = {"pairs": "pairs.csv"}
    with pytest.raises(ConfigError, match=r"experiments.0.predictions.pairs: pairs.csv does not exist"):
        validate(copy.deepcopy(config))
    (tmp_path / "pairs.csv").write_text("user,item\n1,2\n")
    checked = copy.deepcopy(config)
    validate(checked)
    assert predicted_models(checked) == {("synth", "random", "als"): {"pairs": "pairs.csv"}}
    assert "results/predictions/synth/random/als.csv" in targets(checked)
    assert "results/predictions/synth/random/als.csv" not in targets(validate_copy(minimal()))
    with pytest.raises(ConfigError, match="no experiment asks for predictions of model 'als' on synth / other"):
        prediction_settings(checked, "synth", "other", "als")
    twice = copy.deepcopy(config)
    twice["experiments"].append({**config["experiments"][0], "predictions": {"pairs": "pairs.csv", "sep": ";"}})
    with pytest.raises(ConfigError, match="experiments.1.predictions: model 'als' on synth / random is given other "
                                          "predictions in experiments.0"):
        validate(twice)
    config["experiments"][0]["predictions"] = {"pairs": "pairs.csv", "column": {"user": "u"}}
    with pytest.raises(ConfigError, match="experiments.0.predictions: Additional properties are not allowed"):
        validate(config)


def validate_copy(config):
    validate(config)
    return config


# ----- the config file, end to end ---------------------------------------------------------
@pytest.mark.workflow
def test_the_workflow_refuses_a_key_given_twice_in_its_config_file(tmp_path):
    text = TINY.read_text()
    twice = tmp_path / "twice.yaml"
    twice.write_text(text.replace("models:\n", "models:\n  sgd-biased: {kind: sgd}\n", 1))
    output = failed(tmp_path, "-n", config=twice)
    assert f"{twice}: key 'sgd-biased' is given twice in one mapping, on lines 7 and 12; keep one" in output


@pytest.mark.workflow
def test_the_workflow_refuses_whole_floats_and_a_text_choice_naming_the_key(tmp_path):
    # batch: 2.0 used to end in a TypeError in the Snakefile; 'a' among tpe's choices in collect
    config = yaml.safe_load(TINY.read_text())
    config["models"]["sgd-biased"]["batch"] = 2.0
    config["models"]["als-biased"].update(search={"method": "tpe", "trials": 4})
    config["models"]["als-biased"]["params"]["regularization"] = [0.05, "a"]
    path = tmp_path / "floats.yaml"
    path.write_text(yaml.safe_dump(config))
    output = failed(tmp_path, "-n", config=path)
    assert "models.sgd-biased.batch: 2.0 is not an integer; write 2" in output
    config["models"]["sgd-biased"]["batch"] = 2
    path.write_text(yaml.safe_dump(config))
    output = failed(tmp_path, "-n", config=path)
    assert "models.als-biased: params.regularization: the value 'a' is not valid" in output
    assert not (tmp_path / "results").exists()


@pytest.mark.workflow
@pytest.mark.parametrize("target, message", [
    ("results/data/ml-1m/ratings.parquet", "'ml-1m' is not one of the datasets of this config; its datasets: ml-100k"),
    ("results/splits/ml-100k/temporal/fold0/train.parquet",
     "'temporal' is not one of the splits of this config; its splits: random"),
    ("results/summary/ml-100k/random/svd/trials.parquet",
     "'svd' is not one of the models of this config; its models: als, als-biased, wals, sgd"),
])
def test_a_target_outside_the_config_names_what_the_config_has(tmp_path, target, message):
    assert message in failed(tmp_path, "-n", target, config=DEFAULT)
