"""The tiny sweep on a real one-node SLURM: every job goes through sbatch, and the
results equal a local run's.

Part of `make test` wherever SLURM can be installed (`make test-cluster` runs it
alone; MFSWEEP_CLUSTER_TESTS=0 switches it off). It installs packages and starts
daemons: the fixture calls tests/cluster/start_slurm.sh (apt-get install slurm-wlm munge on first use,
then a one-node cluster without cgroups or accounting database) and skips, saying
why, where that cannot work. It stops the cluster again only if it started it.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from workflow_helpers import ROOT, planned_jobs, snakemake

pytestmark = pytest.mark.cluster

CLUSTER = ROOT / "tests" / "cluster"
TINY = ROOT / "tests" / "configs" / "tiny.yaml"
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
# This cluster has no accounting database, so sacct answers nothing: poll with squeue
# (MinJobAge=300 keeps finished jobs listed), early and often for seconds-long jobs.
SLURM_ARGS = ("--workflow-profile", str(PROFILE), "--slurm-status-command", "squeue",
              "--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs",
              "--latency-wait", "5")
# The profile groups each evaluate with its train: one sbatch job for both.
ALONE = ("download", "prepare", "split")
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+)")
MODELS = ("als-biased", "sgd-biased")


def switched_off() -> bool:
    return os.environ.get("MFSWEEP_CLUSTER_TESTS", "1") == "0"


def daemon_running(name: str) -> bool:
    return subprocess.run(["pgrep", "-x", name], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def slurm(request):
    if switched_off():
        pytest.skip("MFSWEEP_CLUSTER_TESTS=0: the SLURM tests are switched off")
    if os.geteuid() != 0:
        pytest.skip("needs root to install and start SLURM (tests/cluster/start_slurm.sh)")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        pytest.skip("SLURM is not installed and there is no apt-get to install it")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (pip install snakemake-executor-plugin-slurm)")
    was_running = daemon_running("slurmctld")
    started = subprocess.run(["bash", str(CLUSTER / "start_slurm.sh")], capture_output=True, text=True, timeout=900)
    if started.returncode != 0:
        pytest.skip(f"could not start SLURM:\n{started.stderr[-3000:]}")
    partition = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True).stdout.split()
    yield partition
    if not was_running:
        subprocess.run(["bash", str(CLUSTER / "stop_slurm.sh")], capture_output=True, timeout=120)


def test_sbatch_runs_a_job_on_this_node(slurm, tmp_path):
    out = tmp_path / "hostname.out"
    job = subprocess.run(["sbatch", "--parsable", "--wait", "--output", str(out), "--wrap", "hostname"],
                         capture_output=True, text=True, timeout=120)
    assert job.returncode == 0, job.stderr
    assert out.read_text().strip() == os.uname().nodename.split(".")[0]
    state = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%T", "--job", job.stdout.strip()],
                           capture_output=True, text=True)
    assert state.stdout.strip() == "COMPLETED"


@pytest.fixture(scope="module")
def runs(slurm, tmp_path_factory):
    local = tmp_path_factory.mktemp("local")
    snakemake(local, "--cores", "1", config=TINY)
    cluster = tmp_path_factory.mktemp("slurm")
    result = snakemake(cluster, *SLURM_ARGS, config=TINY)
    return local, cluster, result.stdout + result.stderr


def test_every_job_but_the_local_ones_went_through_sbatch(runs, tmp_path):
    _, cluster, log = runs
    planned = planned_jobs(tmp_path, config=TINY)
    assert planned["train"] == planned["evaluate"]
    job_ids = SUBMITTED.findall(log)
    assert len(job_ids) == len(set(job_ids)) == sum(planned.get(rule, 0) for rule in ALONE) + planned["train"]
    logs = list((cluster / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert {path.stem for path in logs} == set(job_ids)
    assert sum(path.parent.name.startswith("group_trial") for path in logs) == planned["train"]
    assert "localrule collect" in log and "localrule select_best" in log


def summary(workdir: Path, model: str) -> Path:
    return workdir / "results" / "summary" / "synth" / "kfold" / model


def without_timings(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[c for c in frame.columns if "seconds" not in c]]


def test_results_equal_a_local_run(runs):
    local, cluster, _ = runs
    for model in MODELS:
        here = pd.read_parquet(summary(local, model) / "trials.parquet")
        there = pd.read_parquet(summary(cluster, model) / "trials.parquet")
        assert len(there) == 6
        pd.testing.assert_frame_equal(without_timings(there), without_timings(here), check_exact=True)
        best_here = json.loads((summary(local, model) / "best.json").read_text())
        best_there = json.loads((summary(cluster, model) / "best.json").read_text())
        assert best_there["trial"] == best_here["trial"] and best_there["test"] == best_here["test"]
