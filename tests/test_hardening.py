"""A careless user's mistakes, end to end: each is refused naming the file or key and what to do."""

import io
import shutil
import zipfile

import pytest
import yaml
from workflow_helpers import ROOT, snakemake

pytestmark = pytest.mark.workflow

DEFAULT = ROOT / "config" / "config.yaml"
TINY = ROOT / "tests" / "configs" / "tiny.yaml"


def failed(workdir, *args, config=None):
    """What a snakemake run that must fail prints (a dry run prints its errors to stdout)."""
    result = snakemake(workdir, *args, config=config, check=False)
    assert result.returncode != 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def test_a_hand_placed_archive_that_is_not_the_release_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ml-100k/u.data", "1\t1\t5\t881250949\n2\t1\t4\t881250950\n")
        archive.writestr("ml-100k/u.item", "1|Toy Story (1995)|01-Jan-1995||\n")
    raw = tmp_path / "resources" / "raw" / "ml-100k.zip"
    raw.parent.mkdir(parents=True)
    raw.write_bytes(buffer.getvalue())
    failed(tmp_path, "--cores", "1", "results/data/ml-100k/ratings.parquet", config=DEFAULT)
    log = (tmp_path / "logs" / "prepare" / "ml-100k.log").read_text()
    assert "resources/raw/ml-100k.zip is not the ml-100k archive" in log
    assert "expected 0e33842e24a9c977be4e0107933c0723 (pinned)" in log
    assert not (tmp_path / "results" / "data" / "ml-100k" / "ratings.parquet").exists()


# ----- damaged files ------------------------------------------------------------------------
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


# ----- config files -------------------------------------------------------------------------
def test_the_workflow_refuses_a_key_given_twice_in_its_config_file(tmp_path):
    text = TINY.read_text()
    twice = tmp_path / "twice.yaml"
    twice.write_text(text.replace("models:\n", "models:\n  sgd-biased: {kind: sgd}\n", 1))
    output = failed(tmp_path, "-n", config=twice)
    assert f"{twice}: key 'sgd-biased' is given twice in one mapping, on lines 7 and 12; keep one" in output


def test_the_workflow_refuses_whole_floats_and_a_text_choice_naming_the_key(tmp_path):
    # batch: 2.0 used to end in a TypeError in the Snakefile; 'a' among tpe's choices in collect
    config = yaml.safe_load(TINY.read_text())
    config["models"]["sgd-biased"]["batch"] = 2.0
    config["models"]["als-biased"].update(search={"method": "tpe", "trials": 4})
    config["models"]["als-biased"]["params"]["regularization"] = [0.05, "a"]
    path = tmp_path / "floats.yaml"
    path.write_text(yaml.safe_dump(config))
    output = failed(tmp_path, "-n", config=path)
    assert "models.sgd-biased.batch: 2.0 is not an integer; write 2" in output
    config["models"]["sgd-biased"]["batch"] = 2
    path.write_text(yaml.safe_dump(config))
    output = failed(tmp_path, "-n", config=path)
    assert "models.als-biased: params.regularization: the value 'a' is not valid" in output
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("target, message", [
    ("results/data/ml-1m/ratings.parquet", "'ml-1m' is not one of the datasets of this config; its datasets: ml-100k"),
    ("results/splits/ml-100k/temporal/fold0/train.parquet",
     "'temporal' is not one of the splits of this config; its splits: random"),
    ("results/summary/ml-100k/random/svd/trials.parquet",
     "'svd' is not one of the models of this config; its models: als, als-biased, wals, sgd"),
])
def test_a_target_outside_the_config_names_what_the_config_has(tmp_path, target, message):
    assert message in failed(tmp_path, "-n", target, config=DEFAULT)
