# Wildcard patterns and the input functions the rules share.
import re

import mfsweep.pipeline.resources as res
from mfsweep.data import MOVIELENS as MOVIELENS_ARCHIVES
from mfsweep.io import parquet_rows
from mfsweep.pipeline.config import ConfigError


MOVIELENS = "|".join(re.escape(name) for name in MOVIELENS_ARCHIVES)


wildcard_constraints:
    **paths.WILDCARDS,


# A model searched in rounds (mf.in_rounds) learns the trials of round r only when the
# checkpoint `propose` of round r has run; the input functions below ask for it.
def round_files(dataset, split, model, last=None):
    """The round files of a model in rounds, first to ``last`` (default: every round), each
    asked for once the one before it is read (a generator: a caller may stop early)."""
    count = len(mf.round_sizes(config, TRIALS, model)) if last is None else last
    for r in range(1, count + 1):
        yield checkpoints.propose.get(dataset=dataset, split=split, model=model, round=r).output[0]


def unit_round(wildcards):
    """The round file that proposed a train job's unit ([] for a model not in rounds). Its
    time does not count (ancient): the job reruns when what it takes from the file changes
    (the trials in params.unit, the pruning reference in params.pruning), not when the
    file is written again with the same proposal."""
    if not mf.in_rounds(config, wildcards.model):
        return []
    for path in round_files(wildcards.dataset, wildcards.split, wildcards.model):
        if wildcards.trial in mf.round_units([path]):
            return [ancient(path)]
    raise ConfigError(f"trial {wildcards.trial!r} is in no round of model {wildcards.model!r}")


def unit_pruning(wildcards):
    """The pruning reference of a train job's fold: epoch -> value ({}: no pruning)."""
    rounds = unit_round(wildcards)
    return mf.unit_pruning(rounds[0], int(wildcards.fold)) if rounds else {}


def propose_input(wildcards):
    """The earlier rounds of a propose job, with the records and histories of their trials."""
    rounds = list(round_files(wildcards.dataset, wildcards.split, wildcards.model, last=int(wildcards.round) - 1))
    where = (config, wildcards.dataset, wildcards.split, wildcards.model, mf.round_units(rounds))
    return {"rounds": rounds, "records": mf.unit_files(*where, "record.json"),
            "histories": mf.unit_files(*where, "history.parquet")}


def model_rounds(wildcards):
    if not mf.in_rounds(config, wildcards.model):
        return []
    return list(round_files(wildcards.dataset, wildcards.split, wildcards.model))


def unit_sizes(wildcards):
    """Embedding size of each trial of a train job's unit (the kind's default where unset)."""
    unit = unit_settings(wildcards)
    return res.embedding_sizes(unit["kind"], unit["trials"].values())


def dataset_size(wildcards):
    """Ratings the dataset will have, known before prepare."""
    return mf.dataset_size(config, wildcards.dataset)


def split_part(part):
    return paths.file(paths.SPLIT, f"{part}.parquet")


def dataset_file(table):
    return paths.DATASET.replace("{table}", table)


def train_threads(wildcards):
    return mf.entry(config, "models", wildcards.model)["threads"]


def unit_settings(wildcards):
    rounds = unit_round(wildcards)
    return mf.unit_settings(config, TRIALS, UNITS, wildcards.model, wildcards.trial, rounds[0] if rounds else None)


def unit_resume(wildcards):
    """The checkpoints a rung's train job continues its promoted trials from ([] otherwise)."""
    return mf.resume_files(config, wildcards.dataset, wildcards.split, wildcards.model, int(wildcards.fold),
                           unit_settings(wildcards))


def model_units(wildcards):
    """The units (train jobs) of a model: those its round files list, when it is searched in rounds."""
    if mf.in_rounds(config, wildcards.model):
        return mf.round_units(model_rounds(wildcards))
    return list(UNITS[wildcards.model])


def model_files(name):
    def files(wildcards):
        return mf.unit_files(config, wildcards.dataset, wildcards.split, wildcards.model, model_units(wildcards), name)

    return files


def model_output():
    path = paths.file(paths.TRIAL, "model.npz")
    return path if config["keep_models"] else temp(path)


def split_model_files(name):
    def files(wildcards):
        return mf.split_model_files(config, wildcards.dataset, wildcards.split, name)

    return files


def model_settings(wildcards):
    return mf.canonical(mf.entry(config, "models", wildcards.model))


# Cluster resources (mfsweep.pipeline.resources): sized from the fold's ratings, users and items,
# the unit's embedding sizes and the model kind; doubled on each retry.
def fold_sizes(input):
    return mf.rows(input.train), mf.rows(input.users), mf.rows(input.catalog)


def train_mem_mb(wildcards, input, attempt):
    kind = mf.entry(config, "models", wildcards.model)["kind"]
    return attempt * res.train_mem_mb(*fold_sizes(input), unit_sizes(wildcards), kind)


def train_runtime(wildcards, input, attempt):
    model = mf.entry(config, "models", wildcards.model)
    ratings, users, items = fold_sizes(input)
    validation_users = config["evaluation"]["validation_users"] or users
    unit = unit_settings(wildcards)
    return attempt * res.train_runtime_min(ratings, unit_sizes(wildcards), model["max_epochs"], model["kind"],
                                           n_users=users, n_items=items, validation_users=validation_users,
                                           batch_size=res.smallest_batch(unit["kind"], unit["trials"].values()),
                                           negatives=res.most_negatives(unit["kind"], unit["trials"].values()))


def evaluate_mem_mb(wildcards, input, attempt):
    return attempt * res.evaluate_mem_mb(*fold_sizes(input), unit_sizes(wildcards))


def evaluate_runtime(wildcards, input, attempt):
    ratings, users, items = fold_sizes(input)
    return attempt * res.evaluate_runtime_min(ratings, unit_sizes(wildcards), users, items)


def prediction_settings(wildcards):
    return mf.prediction_settings(config, wildcards.dataset, wildcards.split, wildcards.model)
