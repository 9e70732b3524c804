"""Every published setup's config (config/references/*.yaml) validates and plans its sweep."""

from __future__ import annotations

import shutil

import pytest
from workflow_helpers import ROOT, planned_jobs

from mfsweep.pipeline import config as configuration
from mfsweep.pipeline import workflow

REFERENCES = sorted((ROOT / "config" / "references").glob("*.yaml"))
#: Trials per model each setup runs (a change to a search space shows here).
TRIALS = {
    "als-tutorial": {"als-tutorial": 1, "als-tutorial-grid": 8},
    "ials-ml20m": {"ials": 1},
    "lenskit-codex-als": {"als-biased-search": 30},
    "pytorch-adam-grid": {"adam-grid": 16},
    "tensorflow-wals": {"wals-default": 1, "wals-tuned": 1, "wals-search": 40},
    "wandb-jax-gramian": {"gramian-search": 16},
}


def test_every_write_up_has_a_config():
    assert [path.stem for path in REFERENCES] == sorted(TRIALS)


@pytest.mark.workflow
@pytest.mark.parametrize("path", REFERENCES, ids=[path.stem for path in REFERENCES])
def test_reference_config_plans_its_sweep(path, tmp_path, monkeypatch):
    # a pairs file is named relative to the working folder, which a run from the root has
    shutil.copytree(ROOT / "config", tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    config = configuration.read_yaml(path)
    trials = configuration.validate(config)
    rounds = [model for model in config["models"] if workflow.in_rounds(config, model)]
    counts = {model: config["models"][model]["search"]["trials"] if model in rounds else len(ids)
              for model, ids in trials.items()}
    assert counts == TRIALS[path.stem]
    units = workflow.units(config, trials)
    runs = workflow.experiment_models(config)          # (dataset, split, model), each once
    folds = {split: config["splits"][split]["folds"] for _, split, _ in runs}
    jobs = planned_jobs(tmp_path, config=path)
    # a search in rounds plans its first proposal; its trials are known once that has run
    assert jobs.get("propose", 0) == sum(model in rounds for _, _, model in runs)
    planned = sum(folds[split] * len(units[model]) for _, split, model in runs if model not in rounds)
    assert jobs.get("train", 0) == jobs.get("evaluate", 0) == planned
    datasets = {dataset for dataset, _, _ in runs}
    split_folds = sum(folds[split] for _, split in {(dataset, split) for dataset, split, _ in runs})
    data_jobs = (jobs.get("download"), jobs.get("prepare"), jobs.get("split"))
    assert data_jobs == ((len(datasets), len(datasets), split_folds) if planned else (None, None, None))
    assert jobs.get("predict", 0) == len(workflow.predicted_models(config))
