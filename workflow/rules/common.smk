# Wildcard patterns and the input functions the rules share.
import re

import mfsweep.pipeline.resources as res
from mfsweep.data import MOVIELENS as MOVIELENS_ARCHIVES


MOVIELENS = "|".join(re.escape(name) for name in MOVIELENS_ARCHIVES)


wildcard_constraints:
    **paths.WILDCARDS,


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
    return mf.unit_settings(config, TRIALS, UNITS, wildcards.model, wildcards.trial)


def model_files(name):
    def files(wildcards):
        return mf.trial_files(config, UNITS, wildcards.dataset, wildcards.split, wildcards.model, name)

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
                                           batch_size=res.smallest_batch(unit["kind"], unit["trials"].values()))


def evaluate_mem_mb(wildcards, input, attempt):
    return attempt * res.evaluate_mem_mb(*fold_sizes(input), unit_sizes(wildcards))


def evaluate_runtime(wildcards, input, attempt):
    ratings, users, items = fold_sizes(input)
    return attempt * res.evaluate_runtime_min(ratings, unit_sizes(wildcards), users, items)


def prediction_settings(wildcards):
    return mf.prediction_settings(config, wildcards.dataset, wildcards.split, wildcards.model)
