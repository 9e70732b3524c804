"""Damaged files, end to end: a cut or empty file is refused naming it and what to do (mfsweep.io)."""

import shutil

import pytest
import yaml
from workflow_helpers import ROOT, failed, snakemake

pytestmark = pytest.mark.workflow

TINY = ROOT / "tests" / "configs" / "tiny.yaml"


def one_trial_config(tmp_path):
    """tiny.yaml cut to one trial on one fold."""
    config = yaml.safe_load(TINY.read_text())
    config["splits"]["kfold"]["folds"] = 1
    config["models"] = {"als-biased": {**config["models"]["als-biased"], "params": {"embedding_size": 2}}}
    config["experiments"][0]["models"] = ["als-biased"]
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


TRIALS = "results/summary/synth/kfold/als-biased/trials.parquet"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A workdir where one trial has been trained, evaluated and collected."""
    workdir = tmp_path_factory.mktemp("finished")
    config = one_trial_config(workdir)
    snakemake(workdir, "--cores", "1", TRIALS, config=config)
    return workdir, config


@pytest.fixture
def copy(finished, tmp_path):
    """A copy of the finished workdir, to damage."""
    workdir, config = finished
    shutil.copytree(workdir, tmp_path / "w", symlinks=True)
    return tmp_path / "w", tmp_path / "w" / config.name


def only(workdir, pattern):
    found = sorted(workdir.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def cut(path, size=100):
    path.write_bytes(path.read_bytes()[:size])


def test_a_cut_metrics_file_is_named_with_what_to_do(copy):
    workdir, config = copy
    metrics = only(workdir, "results/trials/*/*/*/*/fold0/metrics.json")
    cut(metrics)
    stderr = failed(workdir, "--cores", "1", TRIALS, "--forcerun", "collect", config=config)
    relative = metrics.relative_to(workdir).as_posix()
    assert f"{relative} cannot be read as JSON: it is damaged or incomplete (JSONDecodeError" in stderr
    assert f"delete {relative} and run snakemake again, which rebuilds it" in stderr


def test_a_cut_model_stops_the_plan_and_the_metrics_made_from_it_stay(copy):
    workdir, config = copy
    model = only(workdir, "results/trials/*/*/*/*/fold0/model.npz")
    metrics = model.with_name("metrics.json")
    kept = metrics.read_bytes()
    cut(model)
    stderr = failed(workdir, "--cores", "1", TRIALS, config=config)
    relative = model.relative_to(workdir).as_posix()
    assert f"{relative} cannot be read as a model archive: it is damaged or incomplete (BadZipFile" in stderr
    assert f"delete {relative} and run snakemake again" in stderr
    assert metrics.read_bytes() == kept


def test_a_cut_dataset_table_is_named_while_planning(copy):
    workdir, config = copy
    ratings = workdir / "results" / "data" / "synth" / "ratings.parquet"
    ratings.write_bytes(b"")
    stderr = failed(workdir, "-n", TRIALS, config=config)
    assert "results/data/synth/ratings.parquet cannot be read as a parquet table" in stderr
    assert "delete results/data/synth/ratings.parquet and run snakemake again" in stderr


def test_an_empty_parquet_file_of_the_user_is_named_while_planning(tmp_path):
    (tmp_path / "mine.parquet").write_bytes(b"PAR1")
    config = yaml.safe_load(TINY.read_text())
    config["datasets"]["synth"] = {"source": "file", "path": "mine.parquet"}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(config))
    stderr = failed(tmp_path, "-n", config=path)
    assert "mine.parquet cannot be read as a parquet table: it is damaged or incomplete" in stderr
    assert "mine.parquet is not a file this workflow makes: replace it with a whole copy" in stderr
