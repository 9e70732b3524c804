"""What the Snakefile asks of the package: validated config, trials, paths and targets."""

from __future__ import annotations

import os
from pathlib import Path

from mfsweep.io import check_zip, parquet_rows
from mfsweep.pipeline import config as configuration
from mfsweep.pipeline import paths
from mfsweep.halving import schedule
from mfsweep.pipeline.figures import EXPORTS, FIGURES, SUMMARY_FILES
from mfsweep.rounds import fold_thresholds, read_round
from mfsweep.rounds import round_units as units_of
from mfsweep.search import ADAPTIVE_METHODS, HALVING_METHODS, RUN_TIME_METHODS, batch
from mfsweep.trials import lower_is_better, model_metric, predicts_ratings


def validate(config: dict, schema_path: str | Path) -> dict[str, dict[str, dict]]:
    """Check ``config`` in place (defaults filled in) and return each model's trials.

    Also adds ``config["selection"]``: each model's selection metric and its direction,
    which the report's captions read (they see the config, not the package).
    """
    trials = configuration.validate(config, configuration.load_schema(schema_path))
    config["selection"] = selection(config)
    return trials


def selection(config: dict) -> dict[str, dict]:
    """``{model: {"metric": .., "lower_is_better": .., "rating_model": ..}}`` of every configured model."""
    out = {}
    for name, settings in config["models"].items():
        metric = model_metric(settings)
        out[name] = {"metric": metric, "lower_is_better": lower_is_better(metric),
                     "rating_model": predicts_ratings(settings["kind"], settings.get("params"))}
    return out


def reload_config(config: dict, files: list, overrides: dict) -> None:
    """Read the config ``files`` again with the package's YAML rules (see config.reload)."""
    configuration.reload(config, files, overrides)


def entry(config: dict, table: str, name: str) -> dict:
    """``config[table][name]``: a target naming a dataset, split or model the config lacks
    raises ConfigError listing those it has."""
    try:
        return config[table][name]
    except KeyError:
        raise configuration.ConfigError(
            f"{name!r} is not one of the {table} of this config; its {table}: {', '.join(config[table])}"
        ) from None


def units(config: dict, trials: dict[str, dict[str, dict]]) -> dict[str, dict[str, list[str]]]:
    """Each model's jobs: unit id -> the trial ids it trains.

    With ``batch: 1`` (the default) a unit is one trial and its id the trial's. With
    ``batch: n`` the trials, in search order, go n to a job; such a unit's id is ``b``
    and a hash of its members, so it changes only when its members do.
    """
    return {model: batch(list(model_trials), config["models"][model]["batch"]) for model, model_trials in trials.items()
            if not in_rounds(config, model)}


# ----- search in rounds ---------------------------------------------------------------------
# An adaptive search (tpe, gp), and any search with pruning, runs in rounds: a checkpoint
# `propose` per round writes the round's trials (paths.ROUND), so their train jobs are
# known only once the earlier rounds have finished. Grid and random search without
# pruning keep their trials known at parse time.
def in_rounds(config: dict, model: str) -> bool:
    settings = entry(config, "models", model)
    return settings["search"]["method"] in RUN_TIME_METHODS or settings["pruning"]["method"] != "none"


def round_sizes(config: dict, trials: dict, model: str) -> list[int]:
    """The number of trials each round proposes, first round first (a halving search: each rung's)."""
    settings = entry(config, "models", model)
    search = settings["search"]
    if search["method"] in HALVING_METHODS:
        return [rung.trials for rung in schedule(search, settings["max_epochs"])]
    total = search["trials"] if search["method"] in ADAPTIVE_METHODS else len(trials[model])
    size = search["round_size"]
    return [min(size, total - start) for start in range(0, total, size)]


def round_path(dataset: str, split: str, model: str, round_index: int) -> str:
    return paths.build(paths.ROUND, dataset=dataset, split=split, model=model, round=round_index)


def unit_pruning(round_file: str, fold: int) -> dict[int, float]:
    """The pruning reference (epoch -> value) of a train job's fold, from the round file of its unit."""
    with paths.advising():
        return fold_thresholds(read_round(round_file), fold)


def round_units(round_paths) -> list[str]:
    """The units (train jobs) of these round files, in order; a damaged one stops the plan, naming it."""
    with paths.advising():
        return units_of([read_round(path) for path in round_paths])


def propose_settings(config: dict, trials: dict, model: str, round_index: int) -> dict:
    """What a propose job needs: the search, the pruning and, for grid or random search, the round's trials."""
    settings = entry(config, "models", model)
    search, sizes = settings["search"], round_sizes(config, trials, model)
    if not 1 <= round_index <= len(sizes):
        raise configuration.ConfigError(f"models.{model}: round {round_index} is not one of its {len(sizes)} rounds")
    out = {"model": model, "kind": settings["kind"], "method": search["method"], "size": sizes[round_index - 1],
           "batch": settings["batch"], "max_epochs": settings["max_epochs"], "space": settings["params"],
           "early_stopping": settings["early_stopping"], "pruning": settings["pruning"]}
    if search["method"] in HALVING_METHODS:
        out["rung"] = schedule(search, settings["max_epochs"])[round_index - 1].to_json()
        out["sampler"] = search["sampler"]
    if search["method"] in RUN_TIME_METHODS:
        out["seed"] = search["seed"]
        if "sampler_options" in search:  # absent: Optuna's defaults, and the settings of configs without it
            out["sampler_options"] = search["sampler_options"]
    else:
        start = (round_index - 1) * search["round_size"]
        out["trials"] = [trials[model][trial] for trial in list(trials[model])[start:start + out["size"]]]  # in order
    return canonical(out)


def trial_order(config: dict, trials: dict, model: str) -> dict[str, list[int]]:
    """Round (1) and position of each trial of a grid or random search not in rounds."""
    if in_rounds(config, model):
        return {}
    return {trial: [1, position] for position, trial in enumerate(trials[model])}


def folds(config: dict, split: str) -> list[int]:
    return list(range(entry(config, "splits", split)["folds"]))


def experiment_models(config: dict) -> list[tuple[str, str, str]]:
    """(dataset, split, model) for every model of every experiment, without repeats."""
    seen: dict[tuple[str, str, str], None] = {}
    for experiment in config["experiments"]:
        for model in experiment["models"]:
            seen[(experiment["dataset"], experiment["split"], model)] = None
    return list(seen)


def unit_files(config: dict, dataset: str, split: str, model: str, units, name: str,
               folds_of: list[int] | None = None) -> list[str]:
    """The file ``name`` of each of these units (train jobs) of one model on every fold
    (or on the folds ``folds_of``)."""
    entry(config, "models", model)
    return [
        paths.build(paths.file(paths.TRIAL, name), dataset=dataset, split=split, model=model, trial=unit, fold=fold)
        for unit in units
        for fold in (folds(config, split) if folds_of is None else folds_of)
    ]


def split_model_files(config: dict, dataset: str, split: str, name: str) -> list[str]:
    """The summary file ``name`` of every model an experiment runs on (dataset, split), in order."""
    return [
        paths.build(paths.file(paths.SUMMARY, name), dataset=dataset, split=split, model=model)
        for d, s, model in experiment_models(config)
        if (d, s) == (dataset, split)
    ]


def targets(config: dict) -> list[str]:
    """What ``snakemake`` with no target builds: each experiment's summaries and figures."""
    out = []
    for dataset, split, model in experiment_models(config):
        summary = paths.build(paths.SUMMARY, dataset=dataset, split=split, model=model)
        out += [paths.file(summary, name) for name in (*SUMMARY_FILES.values(), *EXPORTS)]
        out += [path for f in FIGURES if f.per_model for path in f.outputs(dataset=dataset, split=split, model=model)]
    for dataset, split in dict.fromkeys((d, s) for d, s, _ in experiment_models(config)):
        out += [path for f in FIGURES if not f.per_model for path in f.outputs(dataset=dataset, split=split)]
    out += [paths.build(paths.PREDICTIONS, dataset=d, split=s, model=m) for d, s, m in predicted_models(config)]
    return out


# ----- files to make again -------------------------------------------------------------------
# Snakemake makes a missing file again only when a job that needs it has to run. Once a
# model's sweep is collected, a deleted trial, round, split or data file would stay
# missing, and a round added by raising ``trials`` would never be proposed: collect waits
# on the round checkpoints, whose later rounds Snakemake does not look at while the
# collected files are up to date. The default target therefore also names every file a
# collected model lacks, which makes it again, and everything that depends on it.
def missing_files(config: dict, trials: dict, units: dict) -> list[str]:
    """The files the collected models of the experiments lack, in a stable order."""
    missing: dict[str, None] = {}
    for dataset, split, model in experiment_models(config):
        summary = paths.build(paths.SUMMARY, dataset=dataset, split=split, model=model)
        if os.path.exists(paths.file(summary, SUMMARY_FILES["trials"])):
            missing.update(dict.fromkeys(path for path in sweep_files(config, trials, units, dataset, split, model)
                                         if not os.path.exists(path)))
    return list(missing)


#: What the trial files of a collected sweep are: each unit's, on each fold.
TRIAL_FILES = ("record.json", "history.parquet", "metrics.json")


def sweep_files(config: dict, trials: dict, units: dict, dataset: str, split: str, model: str) -> list[str]:
    """Every file a model's collected sweep was made from: the data, the split, the round
    files (searches in rounds: as many as the config asks for now) and each unit's files
    (model.npz too where ``keep_models``)."""
    out = [paths.build(paths.DATASET, dataset=dataset, table=table) for table in ("ratings", "users", "items")]
    out += [paths.build(paths.file(paths.SPLIT, f"{part}.parquet"), dataset=dataset, split=split, fold=fold)
            for fold in folds(config, split) for part in ("train", "valid", "test")]
    if in_rounds(config, model):
        rounds = [round_path(dataset, split, model, r) for r in range(1, len(round_sizes(config, trials, model)) + 1)]
        out += rounds
        model_units = round_units(path for path in rounds if os.path.exists(path))
    else:
        model_units = list(units[model])
    names = TRIAL_FILES + (("model.npz",) if config["keep_models"] else ())
    return out + [path for name in names for path in unit_files(config, dataset, split, model, model_units, name)]


def predicted_models(config: dict) -> dict[tuple[str, str, str], dict]:
    """(dataset, split, model) -> the predictions settings of the experiment that asks for them."""
    out: dict[tuple[str, str, str], dict] = {}
    for experiment in config["experiments"]:
        if experiment.get("predictions") is not None:
            for model in experiment["models"]:
                out.setdefault((experiment["dataset"], experiment["split"], model), experiment["predictions"])
    return out


def prediction_settings(config: dict, dataset: str, split: str, model: str) -> dict:
    """The pairs file and how to read it, for a model no experiment predicts: ConfigError."""
    try:
        return canonical(predicted_models(config)[(dataset, split, model)])
    except KeyError:
        raise configuration.ConfigError(
            f"no experiment asks for predictions of model {model!r} on {dataset} / {split}; "
            f"add predictions: {{pairs: FILE}} to an experiment that runs it"
        ) from None


def prediction_models(config: dict, dataset: str, split: str, model: str, units) -> list[str]:
    """The fold-0 model.npz of every unit of a model: the best trial is among them (which
    one is known only once best.json is written)."""
    return unit_files(config, dataset, split, model, units, "model.npz", folds_of=[0])


def prepare_input(config: dict, dataset: str) -> list[str]:
    """The raw file a dataset is prepared from (none for synthetic data)."""
    source = entry(config, "datasets", dataset)
    if source["source"] == "movielens":
        return [paths.build(paths.RAW, name=source.get("name", dataset))]
    if source["source"] == "file":
        return [source["path"]]
    return []


def dataset_size(config: dict, dataset: str) -> int:
    """Ratings a dataset will have, known before prepare (prepare's resources)."""
    from mfsweep.pipeline.resources import dataset_ratings

    source = dataset_source(config, dataset)
    path = prepare_input(config, dataset)[0] if source["source"] == "file" else None
    with paths.advising():
        return dataset_ratings(source, path=path)


def rows(path: str) -> int:
    """Rows of a parquet file a job is sized from; a damaged one stops the plan, naming it."""
    with paths.advising():
        return parquet_rows(path)


def intact_model(wildcards) -> str:
    """A trial unit's model.npz, checked when it exists: a damaged one stops the plan
    before evaluate would delete the metrics.json made from it (a job's outputs are
    removed when it starts)."""
    path = paths.build(paths.file(paths.TRIAL, "model.npz"), **dict(wildcards.items()))
    if os.path.exists(path):
        with paths.advising():
            check_zip(path, "a model archive")
    return path


def canonical(value):
    """``value`` with every mapping's keys sorted, so that Snakemake sees the same params
    whatever order a config file lists them in (params are compared as text)."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def dataset_source(config: dict, dataset: str) -> dict:
    return canonical({"name": dataset, **entry(config, "datasets", dataset)})


def split_settings(config: dict, split: str) -> dict:
    return canonical(entry(config, "splits", split))


def unit_settings(config: dict, trials: dict, units: dict, model: str, unit: str, round_file: str | None = None) -> dict:
    """Everything a train job needs: the model's settings and its unit's trials
    (for a model in rounds, as its round file lists them)."""
    settings = entry(config, "models", model)
    if round_file is not None:
        with paths.advising():
            proposed = read_round(round_file)
        units = {model: proposed.units}
        trials = {model: {item["trial"]: item["params"] for item in proposed.trials}}
    try:
        members = units[model][unit]
    except KeyError:
        where = f"round file {round_file}" if round_file else "the search space"
        raise configuration.ConfigError(f"trial {unit!r} is not in {where} of model {model!r} in the current config") from None
    out = {
        "model": model,
        "kind": settings["kind"],
        "max_epochs": settings["max_epochs"],
        "early_stopping": canonical(settings["early_stopping"]),
        "trials": {trial: canonical(trials[model][trial]) for trial in members},
    }
    if round_file is not None and proposed.rung:  # a rung: its epochs, and where its promoted trials continue from
        out["epochs"] = proposed.rung["epochs"]
        out["resume"] = {trial: unit for trial, unit in proposed.resumed().items() if trial in members}
    return out


def resume_files(config: dict, dataset: str, split: str, model: str, fold: int, settings: dict) -> list[str]:
    """The checkpoints (state.npz) on ``fold`` of the units a rung's unit (``settings``:
    unit_settings) continues trials from."""
    sources = sorted(set(settings.get("resume", {}).values()))
    return unit_files(config, dataset, split, model, sources, "state.npz", [fold])


def validation_settings(config: dict) -> dict:
    """The evaluation settings a train job uses (test cutoffs excluded: changing them reruns evaluate only)."""
    evaluation = config["evaluation"]
    return canonical({key: evaluation[key] for key in ("validation_cutoffs", "relevance_threshold", "validation_users")})


def test_settings(config: dict) -> dict:
    evaluation = config["evaluation"]
    return canonical({key: evaluation[key] for key in ("cutoffs", "relevance_threshold")})
