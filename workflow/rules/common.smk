# Wildcard patterns and the input functions the rules share.

MOVIELENS = "ml-100k|ml-1m|ml-10m|ml-20m|ml-25m|ml-32m|ml-latest-small"


wildcard_constraints:
    dataset=r"[A-Za-z0-9][A-Za-z0-9._-]*",
    split=r"[A-Za-z0-9][A-Za-z0-9._-]*",
    model=r"[A-Za-z0-9][A-Za-z0-9._-]*",
    trial=r"[0-9a-f]{10}|b[0-9a-f]{9}",
    fold=r"\d+",


def split_part(part):
    return f"{mf.SPLIT}/{part}.parquet"


def dataset_file(name):
    return f"results/data/{{dataset}}/{name}.parquet"


def train_threads(wildcards):
    return config["models"][wildcards.model]["threads"]


def unit_settings(wildcards):
    return mf.unit_settings(config, TRIALS, UNITS, wildcards.model, wildcards.trial)


def model_files(name):
    def files(wildcards):
        return mf.trial_files(config, UNITS, wildcards.dataset, wildcards.split, wildcards.model, name)

    return files


def model_output():
    path = f"{mf.TRIAL}/model.npz"
    return path if config["keep_models"] else temp(path)


def split_model_files(name):
    def files(wildcards):
        return mf.split_model_files(config, wildcards.dataset, wildcards.split, name)

    return files


def model_settings(wildcards):
    return mf.canonical(config["models"][wildcards.model])
