import dataclasses
import hashlib
import io
import logging
import urllib.error
import zipfile

import numpy as np
import pandas as pd
import pytest
from workflow_helpers import ROOT, failed

from mfsweep.data import (
    MOVIELENS,
    DataError,
    download,
    fetch,
    open_archive,
    prepare,
    synthetic,
)
from mfsweep.data.common import unsafe_member
from mfsweep.data.synthetic import allocate

# sha256 over the user, item, rating, timestamp arrays of the canonical ML-100K table
ML100K_TABLE_SHA256 = "f5d8675c026de5538357e4112ea132c062579e4c80b5eae29a9620aa60fb9f34"


# ----- a fake web --------------------------------------------------------------------------
class Response:
    def __init__(self, body: bytes, length: int | None = None):
        self.body = io.BytesIO(body)
        self.headers = {"Content-Length": str(len(body) if length is None else length)}

    def read(self, size=-1):
        return self.body.read(size)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Web:
    """Serves each url's answers in turn (bytes, (bytes, content length) or an exception)."""

    def __init__(self, pages):
        self.pages = {url: list(answers) for url, answers in pages.items()}
        self.calls = []

    def __call__(self, url, timeout=None):
        self.calls.append(url)
        answers = self.pages.get(url) or [urllib.error.URLError("no route to host")]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        body, length = answer if isinstance(answer, tuple) else (answer, None)
        return Response(body, length)


@pytest.fixture
def web(monkeypatch):
    sleeps = []
    monkeypatch.setattr(fetch, "_sleep", sleeps.append)

    def no_pip(requirement, folder):
        raise AssertionError("the RecBole mirror must not be used here")

    monkeypatch.setattr(fetch, "_pip_download", no_pip)

    def serve(pages):
        server = Web(pages)
        server.sleeps = sleeps
        monkeypatch.setattr(fetch, "_urlopen", server)
        return server

    return serve


def make_zip(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def pin(monkeypatch, name, md5):
    monkeypatch.setitem(MOVIELENS, name, dataclasses.replace(MOVIELENS[name], md5=md5))


ML1M = make_zip({
    "ml-1m/ratings.dat": "1::10::5::978300760\n1::20::3::978302109\n2::10::4::978301968\n",
    "ml-1m/movies.dat": "10::GoldenEye (1995)::Action\n20::Heat: The Return (1995)::Action\n".encode("latin-1"),
})


# ----- download ----------------------------------------------------------------------------
def test_checksum_mismatch_raises_leaves_no_file_and_skips_the_mirror(web, tmp_path):
    web({MOVIELENS["ml-100k"].url: [b"not the archive"]})
    dest = tmp_path / "raw" / "ml-100k.zip"
    with pytest.raises(fetch.ChecksumError, match="expected md5 0e33842e24a9c977be4e0107933c0723, got "):
        download("ml-100k", dest)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_truncated_download_raises_after_retries_and_leaves_no_file(web, tmp_path):
    server = web({MOVIELENS["ml-1m"].url: [(ML1M[:100], len(ML1M))]})
    dest = tmp_path / "ml-1m.zip"
    with pytest.raises(DataError, match=f"truncated: got 100 of {len(ML1M)} bytes"):
        download("ml-1m", dest, retries=2)
    assert not dest.exists() and list(tmp_path.iterdir()) == []
    assert len(server.calls) == 3
    assert server.sleeps == [0.5, 1.0]


def test_retries_then_success_with_the_published_md5(web, tmp_path, monkeypatch):
    archive = make_zip({"ml-latest-small/ratings.csv": "userId,movieId,rating,timestamp\n1,2,3.5,100\n"})
    md5 = hashlib.md5(archive).hexdigest()
    url = MOVIELENS["ml-latest-small"].url
    server = web({
        url + ".md5": [f"MD5 (ml-latest-small.zip) = {md5}\n".encode()],
        url: [urllib.error.URLError("timed out"), TimeoutError("timed out"), archive],
    })
    dest = tmp_path / "ml-latest-small.zip"
    source = download("ml-latest-small", dest)
    assert dest.read_bytes() == archive
    assert md5 in source and "GroupLens" in source
    assert server.calls.count(url) == 3


def test_a_download_without_a_pinned_md5_keeps_it_beside_the_archive_for_verification(web, tmp_path):
    archive = make_zip({"ml-latest-small/ratings.csv": "userId,movieId,rating,timestamp\n1,2,3.5,100\n"})
    md5 = hashlib.md5(archive).hexdigest()
    url = MOVIELENS["ml-latest-small"].url
    web({url + ".md5": [f"MD5 (ml-latest-small.zip) = {md5}\n".encode()], url: [archive]})
    dest = tmp_path / "ml-latest-small.zip"
    download("ml-latest-small", dest)
    assert (tmp_path / "ml-latest-small.zip.md5").read_text() == f"{md5}  ml-latest-small.zip\n"
    assert fetch.verify_archive("ml-latest-small", dest) == f"md5 {md5} (in {dest}.md5)"
    dest.write_bytes(archive[:-10])  # cut short after the download
    with pytest.raises(fetch.ChecksumError, match=f"expected {md5} \\(in {dest}.md5\\)"):
        fetch.verify_archive("ml-latest-small", dest)
    (tmp_path / "ml-latest-small.zip.md5").unlink()
    with pytest.raises(fetch.ChecksumError, match=r"no pinned MD5 and .*ml-latest-small.zip.md5 does not exist"):
        fetch.verify_archive("ml-latest-small", dest)


def test_a_hand_placed_archive_is_checked_against_the_pinned_md5(tmp_path):
    placed = tmp_path / "ml-1m.zip"
    placed.write_bytes(ML1M)
    with pytest.raises(fetch.ChecksumError, match=(
            f"{placed} is not the ml-1m archive: md5 {hashlib.md5(ML1M).hexdigest()}, "
            r"expected c4d9eecfca2ab87c1945afe126590906 \(pinned\).*delete it and rerun")):
        fetch.verify_archive("ml-1m", placed)
    two = tmp_path / "ml-100k.zip"
    two.write_bytes(make_zip({"ml-100k/u.data": "1\t1\t5\t1\n2\t1\t4\t2\n", "ml-100k/u.item": "1|A|||\n"}))
    with pytest.raises(fetch.ChecksumError, match="expected 0e33842e24a9c977be4e0107933c0723 .*nor ratings"):
        fetch.verify_archive("ml-100k", two)


def test_unreachable_without_a_mirror_is_a_clear_error(web, tmp_path):
    web({})
    with pytest.raises(DataError, match="cannot reach .*ml-1m.zip.*no mirror is known for ml-1m"):
        download("ml-1m", tmp_path / "ml-1m.zip", retries=1)
    assert not (tmp_path / "ml-1m.zip").exists()


def test_unknown_dataset_names_the_known_ones(tmp_path):
    with pytest.raises(DataError, match="unknown MovieLens dataset 'ml-5k'.*ml-100k"):
        download("ml-5k", tmp_path / "x.zip")


@pytest.fixture(scope="session")
def ml100k_zip(tmp_path_factory):
    """ML-100K through the RecBole mirror, for real (pip download from PyPI), with
    GroupLens made unreachable."""
    dest = tmp_path_factory.mktemp("raw") / "ml-100k.zip"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fetch, "_urlopen", Web({}))
        patch.setattr(fetch, "_sleep", lambda seconds: None)
        try:
            source = download("ml-100k", dest)
        except DataError as error:
            if "pip download" in str(error):
                pytest.skip(f"PyPI not reachable through pip: {error}")
            raise
    return dest, source


def test_unreachable_ml100k_falls_back_to_the_recbole_wheel(ml100k_zip):
    dest, source = ml100k_zip
    assert "RecBole" in source and fetch.RECBOLE_INTER_SHA256 in source
    with open_archive(dest) as archive:
        assert archive.namelist() == ["ml-100k/", "ml-100k/u.data", "ml-100k/u.genre", "ml-100k/u.item",
                                      "ml-100k/u.user"]
        assert archive.read("ml-100k/u.user").startswith(b"1|24|M|technician|85711\n2|53|F|other|94043\n")
        assert archive.read("ml-100k/u.genre").splitlines()[-1] == b"Western|18"
        ratings = archive.read("ml-100k/u.data")
        items = archive.read("ml-100k/u.item").decode("latin-1").splitlines()
    assert hashlib.sha256(ratings).hexdigest() == fetch.ML100K_RATINGS_SHA256
    assert ratings.startswith(b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    assert len(items) == 1682
    assert items[0] == "1|Toy Story (1995)||||0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0"
    assert items[266].startswith("267|unknown||||1|")


def test_the_archive_rebuilt_from_the_mirror_passes_verification_on_its_ratings(ml100k_zip):
    assert fetch.verify_archive("ml-100k", ml100k_zip[0]) == f"ratings sha256 {fetch.ML100K_RATINGS_SHA256} (pinned)"


def test_grouplens_ml100k_is_checked_against_the_pinned_ratings(web, tmp_path, monkeypatch, ml100k_zip):
    with open_archive(ml100k_zip[0]) as archive:
        members = {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}
    good = make_zip(members)
    pin(monkeypatch, "ml-100k", hashlib.md5(good).hexdigest())
    web({MOVIELENS["ml-100k"].url: [good]})
    assert "GroupLens" in download("ml-100k", tmp_path / "good.zip")

    members["ml-100k/u.data"] = members["ml-100k/u.data"].replace(b"196\t242\t3\t", b"196\t242\t4\t", 1)
    bad = make_zip(members)
    pin(monkeypatch, "ml-100k", hashlib.md5(bad).hexdigest())
    web({MOVIELENS["ml-100k"].url: [bad]})
    with pytest.raises(fetch.ChecksumError, match="differ from the pinned ones"):
        download("ml-100k", tmp_path / "bad.zip")
    assert not (tmp_path / "bad.zip").exists()


def test_prepare_ml100k_gives_the_canonical_table(ml100k_zip, tmp_path):
    summary = prepare({"name": "ml-100k", "source": "movielens"}, tmp_path, raw=ml100k_zip[0])
    assert (summary["ratings"], summary["users"], summary["items"]) == (100_000, 943, 1682)
    ratings = pd.read_parquet(tmp_path / "ratings.parquet")
    assert [str(t) for t in ratings.dtypes] == ["int32", "int32", "float32", "int64"]
    digest = hashlib.sha256()
    for column in ("user", "item", "rating", "timestamp"):
        digest.update(np.ascontiguousarray(ratings[column].to_numpy()).tobytes())
    assert digest.hexdigest() == ML100K_TABLE_SHA256
    users = pd.read_parquet(tmp_path / "users.parquet")
    items = pd.read_parquet(tmp_path / "items.parquet")
    assert (users["original_id"] == users["user"] + 1).all()
    assert (items["original_id"] == items["item"] + 1).all()
    assert items["title"].iloc[0] == "Toy Story (1995)"


# ----- archives ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../evil.txt", "ml-1m/../../evil.txt", "/etc/evil", "C:\\evil", "..\\evil"])
def test_archive_members_escaping_the_folder_are_refused(tmp_path, name):
    assert unsafe_member(name)
    path = tmp_path / "ml-1m.zip"
    path.write_bytes(make_zip({"ml-1m/ratings.dat": "1::1::5::1\n", name: "x"}))
    with pytest.raises(DataError, match="escape the folder"):
        open_archive(path)
    with pytest.raises(DataError, match="escape the folder"):
        prepare({"name": "ml-1m", "source": "movielens"}, tmp_path / "out", raw=path)
    assert not (tmp_path / "out").exists()


def test_safe_member_names_pass():
    assert not any(unsafe_member(name) for name in ["ml-1m/ratings.dat", "a/b..c", "..name"])


def test_prepare_ml1m_format_with_titles(tmp_path):
    raw = tmp_path / "ml-1m.zip"
    raw.write_bytes(ML1M)
    summary = prepare({"name": "ml-1m", "source": "movielens"}, tmp_path / "out", raw=raw)
    assert (summary["ratings"], summary["users"], summary["items"]) == (3, 2, 2)
    ratings = pd.read_parquet(tmp_path / "out" / "ratings.parquet")
    assert ratings.to_dict("list") == {
        "user": [0, 0, 1], "item": [0, 1, 0], "rating": [5.0, 3.0, 4.0],
        "timestamp": [978300760, 978302109, 978301968],
    }
    items = pd.read_parquet(tmp_path / "out" / "items.parquet")
    assert items["title"].tolist() == ["GoldenEye (1995)", "Heat: The Return (1995)"]


def test_archive_without_the_ratings_file(tmp_path):
    raw = tmp_path / "ml-1m.zip"
    raw.write_bytes(make_zip({"ml-1m/README": "hello"}))
    with pytest.raises(DataError, match="no member named ratings.dat"):
        prepare({"name": "ml-1m", "source": "movielens"}, tmp_path / "out", raw=raw)


# ----- a user's own file -------------------------------------------------------------------
CSV = "uid,mid,stars,when\nbob,m2,4,30\nann,m1,3.5,10\nbob,m1,5,20\n"
MAPPING = {"user": "uid", "item": "mid", "rating": "stars", "timestamp": "when"}


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_file_source_maps_columns_and_numbers_sorted_ids(tmp_path):
    path = write(tmp_path, "r.csv", CSV)
    summary = prepare({"source": "file", "path": str(path), "sep": ",", "columns": MAPPING}, tmp_path / "out")
    assert (summary["ratings"], summary["users"], summary["items"]) == (3, 2, 2)
    ratings = pd.read_parquet(tmp_path / "out" / "ratings.parquet")
    assert ratings.to_dict("list") == {"user": [1, 0, 1], "item": [1, 0, 0], "rating": [4.0, 3.5, 5.0],
                                       "timestamp": [30, 10, 20]}
    assert pd.read_parquet(tmp_path / "out" / "users.parquet")["original_id"].tolist() == ["ann", "bob"]
    assert pd.read_parquet(tmp_path / "out" / "items.parquet")["original_id"].tolist() == ["m1", "m2"]


@pytest.mark.parametrize("sep", ["\t", "::"])
def test_file_source_separators_and_missing_timestamp(tmp_path, sep):
    text = sep.join(["u", "i", "r"]) + "\n" + "\n".join(sep.join(row) for row in [("7", "3", "2"), ("5", "3", "1")])
    path = write(tmp_path, "r.txt", text + "\n")
    columns = {"user": "u", "item": "i", "rating": "r"}
    prepare({"source": "file", "path": str(path), "sep": sep, "columns": columns}, tmp_path / "out")
    ratings = pd.read_parquet(tmp_path / "out" / "ratings.parquet")
    assert ratings.to_dict("list") == {"user": [1, 0], "item": [0, 0], "rating": [2.0, 1.0], "timestamp": [0, 0]}


@pytest.mark.parametrize("sep", [",", "\t", "::"])
def test_file_without_header_maps_positions(tmp_path, sep):
    rows = [("7", "3", "2", "100"), ("5", "3", "1", "90"), ("5", "4", "4.5", "95")]
    path = write(tmp_path, "r.data", "\n".join(sep.join(row) for row in rows) + "\n")
    source = {"source": "file", "path": str(path), "sep": sep, "header": False,
              "columns": {"user": 0, "item": 1, "rating": 2, "timestamp": 3}}
    summary = prepare(source, tmp_path / "out")
    assert summary["ratings"] == 3          # the first rating is a rating, not the column names
    ratings = pd.read_parquet(tmp_path / "out" / "ratings.parquet")
    assert sorted(zip(ratings["rating"], ratings["timestamp"])) == [(1.0, 90), (2.0, 100), (4.5, 95)]
    assert pd.read_parquet(tmp_path / "out" / "users.parquet")["original_id"].tolist() == [5, 7]


def test_headerless_file_read_with_a_header_is_refused(tmp_path):
    path = write(tmp_path, "r.csv", "7,3,2\n5,3,1\n")
    with pytest.raises(DataError, match="looks like data, not column names; .*header: false"):
        prepare({"source": "file", "path": str(path), "columns": {"user": "7", "item": "3", "rating": "2"}},
                tmp_path / "out")
    with pytest.raises(DataError, match="header: false needs columns given as positions, missing rating"):
        prepare({"source": "file", "path": str(path), "header": False, "columns": {"user": 0, "item": 1}},
                tmp_path / "out")
    with pytest.raises(DataError, match="0-based positions"):
        prepare({"source": "file", "path": str(path), "header": False,
                 "columns": {"user": "u", "item": 1, "rating": 2}}, tmp_path / "out")


def test_a_numeric_header_is_quoted_as_the_file_has_it(tmp_path):
    path = write(tmp_path, "r.csv", "7,3,3\n5,3,1\n")   # pandas reads the repeated 3 as 3.1
    with pytest.raises(DataError, match=r"the first row \['7', '3', '3'\] looks like data"):
        prepare({"source": "file", "path": str(path)}, tmp_path / "out")
    path = write(tmp_path, "r.dat", "7::3::3\n5::3::1\n")
    with pytest.raises(DataError, match=r"the first row \['7', '3', '3'\] looks like data"):
        prepare({"source": "file", "path": str(path)}, tmp_path / "out")


def test_file_source_parquet_by_suffix(tmp_path, tiny_ratings):
    path = tmp_path / "mine.parquet"
    tiny_ratings.assign(user=tiny_ratings["user"] + 100).to_parquet(path)
    summary = prepare({"source": "file", "path": str(path)}, tmp_path / "out")
    assert summary["users"] == 40
    ratings = pd.read_parquet(tmp_path / "out" / "ratings.parquet")
    pd.testing.assert_frame_equal(ratings, tiny_ratings)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="ratings file not found: .*nope.csv"):
        prepare({"source": "file", "path": str(tmp_path / "nope.csv")}, tmp_path / "out")


def test_missing_columns_lists_the_columns_found(tmp_path):
    path = write(tmp_path, "r.csv", CSV)
    found = r"columns found: \['uid', 'mid', 'stars', 'when'\]"
    with pytest.raises(DataError, match=r"r.csv.*missing rating \(column 'rating'\).*" + found + ".*row 1"):
        prepare({"source": "file", "path": str(path), "columns": {"user": "uid", "item": "mid"}}, tmp_path / "out")


def test_not_a_ratings_table(tmp_path):
    path = write(tmp_path, "r.csv", "just some text\nwith lines\n")
    with pytest.raises(DataError, match="columns found: \\['just some text'\\]"):
        prepare({"source": "file", "path": str(path)}, tmp_path / "out")


def test_non_numeric_rating_names_column_and_row(tmp_path):
    path = write(tmp_path, "r.csv", CSV.replace("3.5", "good"))
    with pytest.raises(DataError, match=r"r.csv: column 'stars' has 1 non-numeric values; first at row 2: .*'good'"):
        prepare({"source": "file", "path": str(path), "columns": MAPPING}, tmp_path / "out")


def test_nan_rating_names_column_and_row(tmp_path):
    path = write(tmp_path, "r.csv", CSV.replace("3.5", ""))
    with pytest.raises(DataError, match=r"r.csv: column 'stars' has 1 NaN or empty values; first at row 2: .*'ann'"):
        prepare({"source": "file", "path": str(path), "columns": MAPPING}, tmp_path / "out")


def test_duplicates_are_an_error_by_default(tmp_path):
    path = write(tmp_path, "r.csv", CSV + "ann,m1,1,40\n")
    with pytest.raises(DataError, match=r"r.csv: 1 duplicate \(user, item\) pairs.*row 2: .*row 4: "):
        prepare({"source": "file", "path": str(path), "columns": MAPPING}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_duplicates_keep_latest_with_a_warning(tmp_path, caplog):
    path = write(tmp_path, "r.csv", CSV + "ann,m1,1,5\nbob,m2,2,99\nbob,m2,1,50\n")
    source = {"source": "file", "path": str(path), "columns": MAPPING, "duplicates": "keep_latest"}
    with caplog.at_level(logging.WARNING, logger="mfsweep.data"):
        summary = prepare(source, tmp_path / "out")
    assert summary["duplicates_dropped"] == 3
    assert "3 duplicate (user, item) ratings dropped" in caplog.text
    ratings = pd.read_parquet(tmp_path / "out" / "ratings.parquet")
    assert ratings.to_dict("list") == {"user": [0, 1, 1], "item": [0, 0, 1], "rating": [3.5, 5.0, 2.0],
                                       "timestamp": [10, 20, 99]}


def test_unknown_source_and_duplicates_setting(tmp_path):
    with pytest.raises(DataError, match="unknown dataset source 'web'"):
        prepare({"source": "web"}, tmp_path)
    with pytest.raises(DataError, match="duplicates must be one of"):
        prepare({"source": "file", "path": "x.csv", "duplicates": "first"}, tmp_path)


# ----- synthetic ---------------------------------------------------------------------------
def test_synthetic_shape_and_invariants():
    frame = synthetic(300, 120, 6000, seed=3)
    assert len(frame) == 6000
    assert [str(t) for t in frame.dtypes] == ["int32", "int32", "float32", "int64"]
    assert not frame.duplicated(["user", "item"]).any()
    assert frame["user"].nunique() == 300 and frame["item"].nunique() == 120
    assert set(np.unique(frame["rating"])) <= set(np.arange(1, 11) / 2)
    assert (np.diff(frame["timestamp"].to_numpy()) > 0).all()


def test_synthetic_is_seeded():
    a, b, c = synthetic(200, 80, 3000, seed=1), synthetic(200, 80, 3000, seed=1), synthetic(200, 80, 3000, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_synthetic_popularity_and_latent_structure():
    frame = synthetic(2000, 400, 60_000, seed=5, popularity_exponent=1.0)
    counts = np.sort(frame["item"].value_counts().to_numpy())[::-1]
    assert counts[:40].sum() > 0.4 * len(frame)  # the top tenth of the items
    # Item means measured on two halves of the users agree: ratings carry item structure.
    half = frame["user"] % 2 == 0
    means = pd.concat([frame[half].groupby("item")["rating"].mean(), frame[~half].groupby("item")["rating"].mean()],
                      axis=1).dropna()
    assert np.corrcoef(means.iloc[:, 0], means.iloc[:, 1])[0, 1] > 0.5


def test_synthetic_dense_corner_and_errors():
    frame = synthetic(10, 6, 60, seed=0)
    assert len(frame) == 60 and not frame.duplicated(["user", "item"]).any()
    with pytest.raises(DataError, match="ratings .61. exceeds users x items .60."):
        synthetic(10, 6, 61, seed=0)
    with pytest.raises(DataError, match="users must be a positive integer"):
        synthetic(0, 6, 5, seed=0)
    with pytest.raises(DataError, match="noise must be a number >= 0"):
        synthetic(10, 6, 5, seed=0, noise=-1)


def test_synthetic_with_fewer_ratings_than_users():
    frame = synthetic(50, 10, 20, seed=0)
    assert len(frame) == 20 and not frame.duplicated(["user", "item"]).any()
    assert frame["user"].nunique() < 50


def test_allocate_respects_bounds_and_total():
    counts = allocate(1000, np.array([100.0, 1, 1, 1, 1]), 1, 300)
    assert counts.sum() == 1000 and counts.min() >= 1 and counts.max() <= 300
    assert counts[0] == 300


def test_prepare_synthetic(tmp_path):
    source = {"source": "synthetic", "users": 50, "items": 20, "ratings": 500, "seed": 4, "factors": 4}
    summary = prepare(source, tmp_path)
    assert (summary["ratings"], summary["users"], summary["items"]) == (500, 50, 20)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ratings.parquet"),
                                  synthetic(50, 20, 500, seed=4, factors=4))
    assert pd.read_parquet(tmp_path / "items.parquet")["title"].isna().all()
    with pytest.raises(DataError, match="synthetic dataset: unknown setting 'path'"):
        prepare({**source, "path": "x.csv"}, tmp_path)
    with pytest.raises(DataError, match="synthetic dataset: missing ratings"):
        prepare({"source": "synthetic", "users": 5, "items": 5}, tmp_path)


def test_infinite_rating_and_empty_user_are_refused(tmp_path):
    path = write(tmp_path, "r.csv", CSV.replace("3.5", "inf"))
    with pytest.raises(DataError, match=r"column 'stars' has 1 infinite values; first at row 2"):
        prepare({"source": "file", "path": str(path), "columns": MAPPING}, tmp_path / "out")
    path = write(tmp_path, "r.csv", CSV.replace("bob,m1", ",m1"))
    with pytest.raises(DataError, match=r"column 'uid' has 1 NaN or empty values; first at row 3"):
        prepare({"source": "file", "path": str(path), "columns": MAPPING}, tmp_path / "out")


def test_date_timestamps_become_unix_seconds(tmp_path):
    path = write(tmp_path, "r.csv", "user,item,rating,timestamp\n1,1,4,2000-01-01\n1,2,3,2000-01-02 00:00:10\n")
    prepare({"source": "file", "path": str(path)}, tmp_path / "out")
    ratings = pd.read_parquet(tmp_path / "out" / "ratings.parquet")
    assert ratings["timestamp"].tolist() == [946684800, 946771210]
    path = write(tmp_path, "r.csv", "user,item,rating,timestamp\n1,1,4,yesterday\n")
    with pytest.raises(DataError, match="column 'timestamp' holds values that are neither numbers nor dates"):
        prepare({"source": "file", "path": str(path)}, tmp_path / "out")


def test_fractional_timestamps_are_refused_naming_the_file_and_column(tmp_path):
    # they used to be truncated to whole seconds without a word
    text = "user,item,rating,ts\n1,1,4,100\n1,2,3,100.0\n2,1,5,101.5\n"
    path = write(tmp_path, "r.csv", text)
    columns = {"user": "user", "item": "item", "rating": "rating", "timestamp": "ts"}
    message = (rf"{path}: column 'ts' has 1 fractional-second values; first at row 3: .*; timestamps are kept as "
               r"whole seconds since 1970: round or truncate them in the file")
    with pytest.raises(DataError, match=message):
        prepare({"source": "file", "path": str(path), "columns": columns}, tmp_path / "out")
    dates = "user,item,rating,timestamp\n1,1,4,2000-01-01 00:00:10\n1,2,3,2000-01-02 00:00:10.25\n"
    path = write(tmp_path, "d.csv", dates)
    with pytest.raises(DataError, match="column 'timestamp' has 1 fractional-second values; first at row 2"):
        prepare({"source": "file", "path": str(path)}, tmp_path / "out")
    frame = pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": [4.0, 3.0],
                          "timestamp": pd.to_datetime(["2000-01-01 00:00:01", "2000-01-01 00:00:01.5"],
                                                      format="ISO8601")})
    frame.to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DataError, match="t.parquet: column 'timestamp' has 1 fractional-second values; first at row 2"):
        prepare({"source": "file", "path": str(tmp_path / "t.parquet")}, tmp_path / "out")


def test_whole_timestamps_written_as_floats_are_kept(tmp_path):
    path = write(tmp_path, "r.csv", "user,item,rating,timestamp\n1,1,4,100\n1,2,3,946684800.0\n")
    prepare({"source": "file", "path": str(path)}, tmp_path / "out")
    assert pd.read_parquet(tmp_path / "out" / "ratings.parquet")["timestamp"].tolist() == [100, 946684800]
    frame = pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": [4.0, 3.0],
                          "timestamp": pd.to_datetime(["2000-01-01 00:00:01", "2000-01-01 00:00:02"])})
    frame.to_parquet(tmp_path / "t.parquet")
    prepare({"source": "file", "path": str(tmp_path / "t.parquet")}, tmp_path / "out")
    assert pd.read_parquet(tmp_path / "out" / "ratings.parquet")["timestamp"].tolist() == [946684801, 946684802]


def test_http_not_found_is_not_retried(web, tmp_path):
    url = MOVIELENS["ml-1m"].url
    server = web({url: [urllib.error.HTTPError(url, 404, "Not Found", {}, None)]})
    with pytest.raises(DataError, match="HTTP 404 Not Found"):
        download("ml-1m", tmp_path / "ml-1m.zip")
    assert server.calls == [url] and server.sleeps == []


def test_a_header_only_file_is_refused_at_prepare_naming_it(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("user,item,rating,timestamp\n")
    with pytest.raises(DataError, match=f"{path} holds no ratings \\(a header at most\\)"):
        prepare({"source": "file", "path": str(path)}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_error_quoting_a_huge_line_is_cut(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text("user,item,rating\n1,2," + "x" * 3_000_000 + "\n")
    with pytest.raises(DataError) as error:
        prepare({"source": "file", "path": str(path)}, tmp_path / "out")
    message = str(error.value)
    assert f"{path}: column 'rating' has 1 non-numeric values; first at row 1:" in message
    assert len(message) < 1000 and "more characters)" in message


# ----- min_rating and min_user_ratings: implicit positives from ratings ------------------------
#: user ann: 5, 4, 3 (two positives); bob: 4.5, 2 (one); cat: 1 (none); dan: 4, 4, 5 (three).
#: Items: m1 rated 5 by ann and 2 by bob; m9 only 1 by cat.
POSITIVES_CSV = ("u,i,r,t\n"
                 "ann,m1,5,1\nbob,m2,4.5,2\nann,m2,4,3\ncat,m9,1,4\nbob,m1,2,5\nann,m3,3,6\n"
                 "dan,m3,4,7\ndan,m2,4,8\ndan,m4,5,9\n")
POSITIVES_COLUMNS = {"user": "u", "item": "i", "rating": "r", "timestamp": "t"}


def prepared(tmp_path, **settings):
    path = write(tmp_path, "r.csv", POSITIVES_CSV)
    source = {"source": "file", "path": str(path), "columns": POSITIVES_COLUMNS, **settings}
    summary = prepare(source, tmp_path / "out")
    tables = [pd.read_parquet(tmp_path / "out" / f"{name}.parquet") for name in ("ratings", "users", "items")]
    return summary, *tables


def original(ratings, users, items):
    """The rows as (user, item, rating, timestamp) by original ids, in file order."""
    return list(zip(users["original_id"].to_numpy()[ratings["user"]], items["original_id"].to_numpy()[ratings["item"]],
                    ratings["rating"], ratings["timestamp"]))


def test_min_rating_keeps_the_positives_and_renumbers_the_ids(tmp_path):
    summary, ratings, users, items = prepared(tmp_path, min_rating=4)
    assert original(ratings, users, items) == [("ann", "m1", 5.0, 1), ("bob", "m2", 4.5, 2), ("ann", "m2", 4.0, 3),
                                               ("dan", "m3", 4.0, 7), ("dan", "m2", 4.0, 8), ("dan", "m4", 5.0, 9)]
    # cat and m9 had no rating >= 4: gone, and the dense ids number the sorted originals left
    assert users.to_dict("list") == {"user": [0, 1, 2], "original_id": ["ann", "bob", "dan"]}
    assert items["item"].tolist() == [0, 1, 2, 3] and items["original_id"].tolist() == ["m1", "m2", "m3", "m4"]
    assert ratings.dtypes.astype(str).to_dict() == {"user": "int32", "item": "int32", "rating": "float32",
                                                    "timestamp": "int64"}
    assert (summary["ratings"], summary["users"], summary["items"]) == (6, 3, 4)
    assert summary["filtered"] == {"ratings_dropped": 3, "users_dropped": 1, "items_dropped": 1}


def test_min_user_ratings_counts_the_kept_ratings(tmp_path):
    # ann has three ratings but only two >= 4, so with 3 only dan stays
    _, ratings, users, items = prepared(tmp_path, min_rating=4, min_user_ratings=3)
    assert original(ratings, users, items) == [("dan", "m3", 4.0, 7), ("dan", "m2", 4.0, 8), ("dan", "m4", 5.0, 9)]
    assert users["original_id"].tolist() == ["dan"] and items["original_id"].tolist() == ["m2", "m3", "m4"]
    # without min_rating every rating counts: ann (3) and dan (3) stay
    _, ratings, users, _ = prepared(tmp_path, min_user_ratings=3)
    assert users["original_id"].tolist() == ["ann", "dan"] and len(ratings) == 6


def test_without_the_settings_nothing_is_dropped(tmp_path):
    summary, ratings, users, items = prepared(tmp_path)
    assert len(ratings) == 9 and len(users) == 4 and len(items) == 5 and "filtered" not in summary


@pytest.mark.parametrize("settings, message", [
    ({"min_rating": 6}, r"no rating is >= min_rating 6 \(ratings range from 1.0 to 5.0\); lower min_rating"),
    ({"min_rating": 4, "min_user_ratings": 4},
     r"no user has 4 ratings >= 4 \(the most any user has is 3\); lower min_user_ratings"),
    ({"min_rating": "4"}, "min_rating must be a number"),
    ({"min_user_ratings": 0}, "min_user_ratings must be an integer >= 1"),
    ({"min_user_ratings": 2.5}, "min_user_ratings must be an integer >= 1"),
])
def test_filters_that_keep_nothing_or_are_malformed_name_the_setting(tmp_path, settings, message):
    with pytest.raises(DataError, match=message):
        prepared(tmp_path, **settings)


def test_a_synthetic_source_takes_the_filters(tmp_path):
    source = {"source": "synthetic", "users": 50, "items": 20, "ratings": 500, "seed": 4}
    summary = prepare({**source, "min_rating": 4, "min_user_ratings": 5}, tmp_path / "synth")
    full = synthetic(50, 20, 500, seed=4)
    counts = full[full["rating"] >= 4].groupby("user").size()
    assert summary["ratings"] == counts[counts >= 5].sum() and summary["users"] == (counts >= 5).sum()
    assert 0 < summary["users"] < 50


def test_a_movielens_source_takes_the_filters(tmp_path, ml100k_zip):
    summary = prepare({"source": "movielens", "name": "ml-100k", "min_rating": 4, "min_user_ratings": 5},
                      tmp_path / "ml", raw=ml100k_zip[0])
    ratings = pd.read_parquet(tmp_path / "ml" / "ratings.parquet")
    assert ratings["rating"].min() == 4 and ratings.groupby("user").size().min() >= 5
    assert summary["ratings"] == len(ratings) and summary["ratings"] < 100_000


DEFAULT = ROOT / "config" / "config.yaml"


@pytest.mark.workflow
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
