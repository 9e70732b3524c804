"""Experiment configuration: schema validation with defaults, then cross-checks.

Every problem is reported before any job runs, naming the key and what is allowed.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import jsonschema
import yaml

from mfsweep.models.base import whole_float

SCHEMA = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


class ConfigLoader(yaml.SafeLoader):
    """YAML as a config is read: a key given twice in one mapping is an error (not
    last-wins), and ``2e-2`` is a number as in YAML 1.2 (YAML 1.1 wants ``2.0e-2``)."""

    def construct_mapping(self, node, deep=False):
        lines: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in lines:
                raise ConfigError(
                    f"{node.start_mark.name}: key {key!r} is given twice in one mapping, on lines "
                    f"{lines[key]} and {line}; keep one"
                )
            lines[key] = line
        return super().construct_mapping(node, deep=deep)


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(path: str | Path):
    """A config file's contents, read with ConfigLoader (see there)."""
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=ConfigLoader)


def reload(config: dict, files: list, overrides: dict) -> None:
    """Replace ``config`` (as Snakemake read it) by ``files`` read with ConfigLoader and
    merged in order, then ``overrides`` (``--config``): Snakemake's own reading lets a
    repeated key win silently and takes ``2e-2`` for text."""
    from snakemake.utils import update_config

    merged: dict = {}
    for path in files:
        content = read_yaml(path)
        if not isinstance(content, dict):
            raise ConfigError(f"config file {path} does not hold a mapping")
        update_config(merged, content)
    update_config(merged, overrides)
    config.clear()
    config.update(merged)


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = _copy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _is_integer(checker, instance) -> bool:
    """``integer`` in the schema is an int: ``4.0`` is refused (jsonschema's default takes it)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


def _validator_class():
    """Draft 2020-12 with defaults filled in and integers that are ints (one rule for every key)."""
    base = jsonschema.Draft202012Validator
    strict = jsonschema.validators.extend(base, type_checker=base.TYPE_CHECKER.redefine("integer", _is_integer))
    return _with_defaults(strict)


def _copy(value):
    return yaml.safe_load(yaml.safe_dump(value))


def load_schema(path: str | Path = SCHEMA) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _key(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"{error.instance!r} is not allowed; allowed: {allowed}"
    if error.validator == "type" and "integer" in _types(error.validator_value) and whole_float(error.instance):
        return f"{error.instance!r} is not an integer; write {int(error.instance)}"
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"{error.message}; allowed keys: {allowed}"
    return error.message


def _types(value) -> list:
    return [value] if isinstance(value, str) else list(value)


def validate(config: dict, schema: dict | None = None) -> dict[str, dict[str, dict]]:
    """Fill in defaults and check ``config`` in place; return each model's trials
    (``{model: {trial_id: params}}``). Raise ConfigError on the first problems."""
    schema = load_schema() if schema is None else schema
    refuse([f"{key}: {value!r} is not a finite number" for key, value in _non_finite(config)])
    unread = _unread_keys(config)  # before the defaults are filled in
    validator = _validator_class()(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    refuse([f"{_key(e)}: {_describe(e)}" for e in errors])
    refuse(unread)
    fill_halving_defaults(config)
    check_references(config)
    trials = expand_models(config)
    refuse(_check_adaptive_trials(config))  # on spaces expand_models found well formed
    refuse(_check_halving(config))
    return trials


def refuse(problems: list[str]) -> None:
    """Raise ConfigError listing the (first ten) ``problems``, if there are any."""
    if problems:
        raise ConfigError("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems[:10]))


def _unread_keys(config: dict) -> list[str]:
    """Keys the user wrote that their setting never reads (the schema's defaults are not
    filled in yet, so a key here is one the config file gives)."""
    problems = []
    models = config.get("models")
    for name, model in (models.items() if isinstance(models, dict) else ()):
        pruning = model.get("pruning") if isinstance(model, dict) else None
        if isinstance(pruning, dict) and "percentile" in pruning and pruning.get("method", "none") != "percentile":
            problems.append(f"models.{name}.pruning.percentile: pruning method {pruning.get('method', 'none')!r} "
                            f"does not read it; remove it, or set method: percentile")
        problems += _search_keys_unread(name, model.get("search") if isinstance(model, dict) else None)
    return problems


#: The settings of a halving search (hyperband, sha) with their defaults: filled in for those
#: methods only, so that the validated config of another search stays as it was.
HALVING_DEFAULTS = {"min_epochs": 1, "eta": 3, "iterations": 1, "sampler": "random"}


def fill_halving_defaults(config: dict) -> None:
    from mfsweep.search import HALVING_METHODS

    for model in config["models"].values():
        if model["search"]["method"] in HALVING_METHODS:
            model["search"] = {**HALVING_DEFAULTS, **model["search"]}


def _search_keys_unread(name: str, search) -> list[str]:
    """The keys of ``models.<name>.search`` that only other search methods read."""
    if not isinstance(search, dict):
        return []
    method = search.get("method", "grid")
    problems = []
    for key, readers in _search_key_readers().items():
        if key in search and method not in readers:
            only = f" (only {readers[0]} does)" if len(readers) == 1 else ""
            problems.append(f"models.{name}.search.{key}: search method {method!r} does not read it{only}; "
                            f"remove it, or set method: {' or '.join(readers)}")
    return problems


def _search_key_readers() -> dict[str, tuple[str, ...]]:
    """The search keys that only some methods read, with those methods."""
    from mfsweep.search import HALVING_METHODS

    return {"sampler_options": ("tpe",), **{key: HALVING_METHODS for key in HALVING_DEFAULTS}}


def _non_finite(value, key: str = ""):
    """(dotted key, value) of every NaN or infinite number in ``value``."""
    if isinstance(value, float) and not math.isfinite(value):
        yield key or "(top level)", value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _non_finite(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _non_finite(item, f"{key}.{n}")


def check_references(config: dict) -> None:
    """Experiments name datasets, splits and models that exist; model settings are sound."""
    problems = []
    for n, experiment in enumerate(config["experiments"]):
        for key, table in (("dataset", "datasets"), ("split", "splits")):
            if experiment[key] not in config[table]:
                problems.append(
                    f"experiments.{n}.{key}: {experiment[key]!r} is not defined; "
                    f"defined {table}: {', '.join(config[table])}"
                )
        for model in experiment["models"]:
            if model not in config["models"]:
                problems.append(
                    f"experiments.{n}.models: {model!r} is not defined; defined models: {', '.join(config['models'])}"
                )
    problems += _check_splits(config)
    for name, dataset in config["datasets"].items():
        if dataset["source"] == "file" and not Path(dataset["path"]).is_file():
            problems.append(f"datasets.{name}.path: {dataset['path']} does not exist (relative to {Path.cwd()})")
        if dataset["source"] == "movielens":
            dataset.setdefault("name", name)  # the schema checks a given name; a missing one is the dataset's
    problems += _check_stopping_metrics(config)
    problems += _check_pruning(config)
    problems += _check_samplers(config)
    problems += _check_predictions(config)
    refuse(problems)


def _check_stopping_metrics(config: dict) -> list[str]:
    from mfsweep.trials import metric_names

    allowed = ["train_loss", *metric_names(config["evaluation"]["validation_cutoffs"])]
    return [
        f"models.{name}.early_stopping.metric: {model['early_stopping']['metric']!r} is not a validation metric; "
        f"allowed: {', '.join(allowed)} (evaluation.validation_cutoffs sets the k of @k)"
        for name, model in config["models"].items()
        if model["early_stopping"]["metric"] not in (None, *allowed)
    ]


def _check_pruning(config: dict) -> list[str]:
    """Pruning can stop a trial from epoch min_epochs to max_epochs - 1 (at the last it would save nothing)."""
    return [
        f"models.{name}.pruning.min_epochs: {model['pruning']['min_epochs']} with max_epochs "
        f"{model['max_epochs']} prunes nothing (a trial is pruned from epoch min_epochs to max_epochs - 1); "
        f"set min_epochs below {model['max_epochs']}, or pruning method none"
        for name, model in config["models"].items()
        if model["pruning"]["method"] != "none" and model["pruning"]["min_epochs"] >= model["max_epochs"]
    ]


def _check_adaptive_trials(config: dict) -> list[str]:
    """An adaptive search can propose no more distinct trials than its space holds."""
    from mfsweep.search import ADAPTIVE_METHODS, distinct_points

    problems = []
    for name, model in config["models"].items():
        method, trials = model["search"]["method"], model["search"]["trials"]
        if method not in ADAPTIVE_METHODS or trials == 1:
            continue
        points = distinct_points(model["params"])
        if points == 1:
            problems.append(f"models.{name}.search.trials: {trials} trials of a {method} search, but every "
                            f"parameter is fixed: there is nothing to search; give a list or a distribution, "
                            f"or set trials: 1 (or use method grid)")
        elif points < trials:
            problems.append(f"models.{name}.search.trials: {trials} trials of a {method} search, but its space "
                            f"holds only {points} distinct trials; set trials: {points} or fewer, or widen the "
                            f"space (method grid runs every one)")
    return problems


def _check_halving(config: dict) -> list[str]:
    """A halving search has a rung before max_epochs, and stops trials itself (no pruning)."""
    from mfsweep.search import HALVING_METHODS

    problems = []
    for name, model in config["models"].items():
        search = model["search"]
        if search["method"] not in HALVING_METHODS:
            continue
        if model["pruning"]["method"] != "none":
            problems.append(f"models.{name}.pruning.method: a {search['method']} search stops trials at its rungs "
                            f"itself; set pruning method none")
        if search["min_epochs"] * search["eta"] > model["max_epochs"]:
            problems.append(f"models.{name}.search.min_epochs: {search['min_epochs']} epochs times eta "
                            f"{search['eta']} exceeds max_epochs {model['max_epochs']}, so there is no rung to "
                            f"promote to; lower min_epochs or eta, or raise max_epochs")
    return problems


def _check_samplers(config: dict) -> list[str]:
    """Search method gp needs torch (Optuna's GPSampler); say so before any job."""
    if not any(model["search"]["method"] == "gp" for model in config["models"].values()):
        return []
    try:
        import torch  # noqa: F401
    except ImportError:
        return [f"models.{name}.search.method: gp needs torch; install it with pip install torch==2.13.0"
                for name, model in config["models"].items() if model["search"]["method"] == "gp"]
    return []


def _check_predictions(config: dict) -> list[str]:
    """A pairs file exists; one model of a dataset and split is predicted for one pairs file."""
    problems, settings = [], {}
    for n, experiment in enumerate(config["experiments"]):
        predictions = experiment.get("predictions")
        if predictions is None:
            continue
        if not Path(predictions["pairs"]).is_file():
            problems.append(f"experiments.{n}.predictions.pairs: {predictions['pairs']} does not exist "
                            f"(relative to {Path.cwd()}); give the file of (user, item) pairs to predict")
        for model in experiment["models"]:
            key = (experiment["dataset"], experiment["split"], model)
            if settings.setdefault(key, (n, predictions))[1] != predictions:
                problems.append(f"experiments.{n}.predictions: model {model!r} on {key[0]} / {key[1]} is given other "
                                f"predictions in experiments.{settings[key][0]}; give them once")
    return problems


def _check_splits(config: dict) -> list[str]:
    from mfsweep.splits import SplitError, n_folds

    problems = []
    for name, split in config["splits"].items():
        if split["method"] == "temporal" and split.get("folds", 1) != 1:
            problems.append(f"splits.{name}.folds: the temporal split has exactly one fold, got {split['folds']}")
            continue
        try:
            split["folds"] = n_folds(split)
        except SplitError as error:
            problems.append(f"splits.{name}: {error}")
    return problems


def expand_models(config: dict) -> dict[str, dict[str, dict]]:
    """Every model's trials; a bad search space or parameter raises ConfigError naming the model."""
    from mfsweep.search import expand

    trials, problems = {}, []
    for name, model in config["models"].items():
        try:
            trials[name] = expand(model)
        except ValueError as error:
            problems.append(f"models.{name}: {error}")
    refuse(problems)
    return trials


def load(path: str | Path) -> dict:
    """Read and validate a config file."""
    try:
        config = read_yaml(path)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    if not isinstance(config, dict):
        raise ConfigError(f"config file {path} does not hold a mapping")
    validate(config)
    return config
