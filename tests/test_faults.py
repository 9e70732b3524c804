"""A job killed in the middle of training leaves nothing complete; a rerun finishes."""

import json
import os
import signal
import subprocess
import time

import pytest
import yaml
from workflow_helpers import ROOT, SNAKEMAKE, snakemake

pytestmark = pytest.mark.workflow

CONFIG = {
    "datasets": {"synth": {"source": "synthetic", "users": 3000, "items": 1000, "ratings": 200000, "seed": 1}},
    "splits": {"holdout": {"method": "random", "seed": 1}},
    "models": {"slow": {"kind": "als-biased", "max_epochs": 40,
                        "early_stopping": {"metric": "RMSE", "patience": 40, "min_delta": 0.0},
                        "params": {"embedding_size": 64}}},
    "experiments": [{"dataset": "synth", "split": "holdout", "models": ["slow"]}],
}


def wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def training_started(workdir) -> bool:
    return any("epoch 2:" in log.read_text() for log in (workdir / "logs" / "train").rglob("*.log"))


def test_sigkill_during_training_leaves_no_complete_output_and_a_rerun_finishes(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    workdir = tmp_path / "run"
    workdir.mkdir()
    command = [str(SNAKEMAKE), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(config), "--cores", "1"]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_for(lambda: (workdir / "logs" / "train").exists() and training_started(workdir), 180)
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        subprocess.run(["pkill", "-9", "-f", str(workdir)], check=False)
        run.wait()
    trial = next((workdir / "results" / "trials").rglob("fold0"))
    left = {p.name for p in trial.iterdir()}
    assert not left & {"history.parquet", "model.npz", "record.json", "metrics.json"}
    assert not (workdir / "results" / "summary").exists()

    snakemake(workdir, "--unlock", config=config)
    snakemake(workdir, "--cores", "1", "--rerun-incomplete", config=config)
    (metrics,) = json.loads((trial / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 40 and metrics["stop_reason"] == "max_epochs"
    assert (workdir / "results" / "summary" / "synth" / "holdout" / "slow" / "best.json").exists()
    assert not [p for p in trial.iterdir() if p.name.endswith(".tmp")]
