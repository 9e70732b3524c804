"""A careless user's mistakes, end to end: each is refused naming the file or key and what to do."""

import io
import zipfile

import pytest

from workflow_helpers import ROOT, snakemake

pytestmark = pytest.mark.workflow

DEFAULT = ROOT / "config" / "config.yaml"


def failed(workdir, *args, config=None):
    """The stderr of a snakemake run that must fail."""
    result = snakemake(workdir, *args, config=config, check=False)
    assert result.returncode != 0, result.stderr[-3000:]
    return result.stderr


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
