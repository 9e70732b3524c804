"""The tiny sweeps on a real one-node SLURM: every job but the local rules goes through
sbatch, and the results equal a local run's. The sweep in rounds (tests/configs/tiny_tpe.yaml)
checks that the checkpoint `propose` re-evaluates the DAG under the slurm executor: its
rounds, trials and pruning equal the local run's.

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
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import ROOT, planned_jobs, round_file, snakemake, summary

pytestmark = pytest.mark.cluster

CLUSTER = ROOT / "tests" / "cluster"
TINY = ROOT / "tests" / "configs" / "tiny.yaml"
TINY_TPE = ROOT / "tests" / "configs" / "tiny_tpe.yaml"
TINY_HYPERBAND = ROOT / "tests" / "configs" / "tiny_hyperband.yaml"
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
ROUNDS = (1, 2)  # tiny_tpe.yaml: both models search in two rounds


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


def local_and_slurm_runs(factory, config: Path) -> tuple[Path, Path, str]:
    """A local run and a run through sbatch of ``config``: both folders and the sbatch run's log."""
    local = factory.mktemp("local")
    snakemake(local, "--cores", "1", config=config)
    cluster = factory.mktemp("slurm")
    result = snakemake(cluster, *SLURM_ARGS, config=config)
    return local, cluster, result.stdout + result.stderr


@pytest.fixture(scope="module")
def runs(slurm, tmp_path_factory):
    return local_and_slurm_runs(tmp_path_factory, TINY)


@pytest.fixture(scope="module")
def tpe_runs(slurm, tmp_path_factory):
    return local_and_slurm_runs(tmp_path_factory, TINY_TPE)


@pytest.fixture(scope="module")
def halving_runs(slurm, tmp_path_factory):
    return local_and_slurm_runs(tmp_path_factory, TINY_HYPERBAND)


def check_submissions(cluster: Path, log: str, jobs: dict[str, int]) -> None:
    """Each sbatch job was submitted once and left its log, as many in each slurm log folder
    (``rule_<name>``, ``group_<group>_<rules>``) as ``jobs`` says; the summaries ran on this host."""
    job_ids = SUBMITTED.findall(log)
    assert len(job_ids) == len(set(job_ids)) == sum(jobs.values())
    root = cluster / ".snakemake" / "slurm_logs"
    logs = list(root.rglob("*.log"))
    assert {path.stem for path in logs} == set(job_ids)
    assert Counter(path.relative_to(root).parts[0] for path in logs) == Counter(jobs)
    assert "localrule collect" in log and "localrule select_best" in log


def test_every_job_but_the_local_ones_went_through_sbatch(runs, tmp_path):
    _, cluster, log = runs
    planned = planned_jobs(tmp_path, config=TINY)
    assert planned["train"] == planned["evaluate"]
    alone = {f"rule_{rule}": planned[rule] for rule in ALONE if rule in planned}
    check_submissions(cluster, log, {**alone, "group_trial_evaluate_train": planned["train"]})


def without_timings(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[c for c in frame.columns if "seconds" not in c]]


def assert_same_table(local: Path, cluster: Path, model: str, name: str) -> pd.DataFrame:
    """A summary table of the sbatch run equals the local run's but for timings; returns it."""
    here = pd.read_parquet(summary(local, model) / name)
    there = pd.read_parquet(summary(cluster, model) / name)
    pd.testing.assert_frame_equal(without_timings(there), without_timings(here), check_exact=True)
    return there


def test_results_equal_a_local_run(runs):
    local, cluster, _ = runs
    for model in MODELS:
        assert len(assert_same_table(local, cluster, model, "trials.parquet")) == 6
        best_here = json.loads((summary(local, model) / "best.json").read_text())
        best_there = json.loads((summary(cluster, model) / "best.json").read_text())
        assert best_there["trial"] == best_here["trial"] and best_there["test"] == best_here["test"]


# The rounds' checkpoint `propose` is a localrule (workflow/rules/search.smk): it runs in a
# second on a few records, and the scheduler reads its round file at once to add the round's
# trains, so an sbatch job would only add queueing and latency-wait to every round.
# A round's trains join the DAG when its round file is read, but its evaluates only when the
# next round is proposed (the summaries ask for every round's metrics, and the next proposal
# needs only records and histories): the trains of every round but the last are sbatch jobs
# of their own, and so are their evaluates; the last round's go as one job each, with their evaluates.
def test_rounds_go_through_sbatch_but_their_proposals(tpe_runs):
    _, cluster, log = tpe_runs
    folds = yaml.safe_load(TINY_TPE.read_text())["splits"]["kfold"]["folds"]

    def trains(r):  # a train job is a unit on a fold
        return folds * sum(len(json.loads(round_file(cluster, model, r).read_text())["units"]) for model in MODELS)

    assert [trains(r) for r in ROUNDS] == [6, 6]  # sgd-biased: a batch of 3 trials a round; als-biased: 2 lone trials
    earlier = sum(trains(r) for r in ROUNDS[:-1])
    # A dry run stops at the first rounds' checkpoints, before the data: one prepare, one split a fold.
    check_submissions(cluster, log, {"rule_prepare": 1, "rule_split": folds, "group_trial_train": earlier,
                                     "group_trial_evaluate": earlier, "group_trial_evaluate_train": trains(ROUNDS[-1])})
    assert log.count("localcheckpoint propose:") == len(MODELS) * len(ROUNDS)
    assert not {"propose", "train", "evaluate"} & set(planned_jobs(cluster, config=TINY_TPE))


def test_rounds_and_pruning_equal_a_local_run(tpe_runs):
    local, cluster, _ = tpe_runs
    for model in MODELS:
        for r in ROUNDS:
            assert round_file(cluster, model, r).read_text() == round_file(local, model, r).read_text()
        assert not round_file(cluster, model, len(ROUNDS) + 1).exists()
        trials = assert_same_table(local, cluster, model, "trials.parquet")
        assert list(trials.drop_duplicates("trial")["round"].value_counts().sort_index().index) == list(ROUNDS)
        assert_same_table(local, cluster, model, "history.parquet")
    stops = pd.concat(pd.read_parquet(summary(cluster, m) / "trials.parquet") for m in MODELS)["stop_reason"]
    assert (stops == "pruned").any() and (stops != "pruned").any()


def test_a_halving_search_has_the_rounds_and_results_of_a_local_run(halving_runs):
    """Hyperband and successive halving through sbatch: every rung's round file (its promotions),
    the trials and every epoch equal the local run's on one core."""
    local, cluster, log = halving_runs
    rounds = {"sgd-biased": 6, "als-biased": 3}   # tiny_hyperband.yaml: the rungs of each search
    for model, count in rounds.items():
        for r in range(1, count + 1):
            assert round_file(cluster, model, r).read_text() == round_file(local, model, r).read_text()
        assert not round_file(cluster, model, count + 1).exists()
        trials = assert_same_table(local, cluster, model, "trials.parquet")
        assert "rung" in set(trials["stop_reason"])
        assert_same_table(local, cluster, model, "history.parquet")
    slurm_logs = cluster / ".snakemake" / "slurm_logs"
    submitted = {path.relative_to(slurm_logs).parts[0] for path in slurm_logs.rglob("*.log")}
    assert any("train_rung" in name for name in submitted), submitted   # the rungs' trains went through sbatch

