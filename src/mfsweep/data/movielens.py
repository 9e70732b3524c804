"""The MovieLens releases: where each lives, how it is checked, and how its files are read."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from mfsweep.data.common import DataError, find_member, open_archive

BASE_URL = "https://files.grouplens.org/datasets/movielens"
RATING_COLUMNS = ["user", "item", "rating", "timestamp"]


@dataclass(frozen=True)
class Release:
    """One MovieLens archive.

    ``md5`` is the pinned checksum of the zip (None: read ``<url>.md5`` at download
    time). ``ratings``/``items`` are file names inside the archive's top folder;
    ``sep`` is the ratings file's separator and ``header`` whether it has one;
    ``n_ratings`` its number of ratings (ml-latest-small grows: a bound with room).
    """

    name: str
    md5: str | None
    ratings: str
    sep: str
    header: bool
    items: str
    items_sep: str
    items_encoding: str
    n_ratings: int

    @property
    def url(self) -> str:
        return f"{BASE_URL}/{self.name}.zip"


def _dat(name: str, md5: str | None, encoding: str, n_ratings: int) -> Release:
    return Release(name, md5, "ratings.dat", "::", False, "movies.dat", "::", encoding, n_ratings)


def _csv(name: str, md5: str | None, n_ratings: int) -> Release:
    return Release(name, md5, "ratings.csv", ",", True, "movies.csv", ",", "utf-8", n_ratings)


MOVIELENS: dict[str, Release] = {
    release.name: release
    for release in (
        Release("ml-100k", "0e33842e24a9c977be4e0107933c0723", "u.data", "\t", False, "u.item", "|", "latin-1",
                100_000),
        _dat("ml-1m", "c4d9eecfca2ab87c1945afe126590906", "latin-1", 1_000_209),
        _dat("ml-10m", "ce571fd55effeba0271552578f2648bd", "utf-8", 10_000_054),
        _csv("ml-20m", "cd245b17a1ae2cc31bb14903e1204af3", 20_000_263),
        _csv("ml-25m", "6b51fb2759a8657d3bfcbfc42b592ada", 25_000_095),
        _csv("ml-32m", "d472be332d4daa821edc399621853b57", 32_000_204),
        _csv("ml-latest-small", None, 150_000),
    )
}


def release(name: str) -> Release:
    if name not in MOVIELENS:
        raise DataError(f"unknown MovieLens dataset {name!r}; known: {', '.join(MOVIELENS)}")
    return MOVIELENS[name]


def read_ratings(archive_path: str | os.PathLike, spec: Release) -> pd.DataFrame:
    """The ratings of a MovieLens archive in file order: original user and item ids
    (int64), rating float32, timestamp int64."""
    with open_archive(archive_path) as archive:
        member = find_member(archive, spec.ratings, archive_path)
        data = archive.read(member)
    sep = spec.sep
    if sep == "::":
        # pyarrow reads single-character separators; the ratings fields never hold tabs.
        data = data.replace(b"::", b"\t")
        sep = "\t"
    names = ["userId", "movieId", "rating", "timestamp"]
    types = {"userId": pa.int64(), "movieId": pa.int64(), "rating": pa.float64(), "timestamp": pa.int64()}
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=None if spec.header else names),
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=names),
        )
    except (pa.ArrowInvalid, KeyError) as error:
        raise DataError(f"{archive_path}: cannot read {member} as {spec.name} ratings: {error}") from None
    frame = table.to_pandas()
    frame.columns = RATING_COLUMNS
    frame["rating"] = frame["rating"].astype(np.float32)
    return frame


def read_titles(archive_path: str | os.PathLike, spec: Release) -> pd.Series:
    """Movie titles by original item id (empty when the archive has no items file)."""
    with open_archive(archive_path) as archive:
        try:
            member = find_member(archive, spec.items, archive_path)
        except DataError:
            return pd.Series([], dtype=object)
        data = archive.read(member)
    if spec.items_sep == ",":
        movies = pd.read_csv(io.BytesIO(data), usecols=["movieId", "title"], encoding=spec.items_encoding)
        return pd.Series(movies["title"].to_numpy(object), index=movies["movieId"].to_numpy(np.int64))
    text = _decode(data, spec.items_encoding)
    ids, titles = [], []
    for line in text.splitlines():
        fields = line.split(spec.items_sep, 2)
        if len(fields) >= 2 and fields[0].strip().isdigit():
            ids.append(int(fields[0]))
            titles.append(fields[1])
    return pd.Series(titles, index=np.asarray(ids, np.int64), dtype=object)


def _decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return data.decode("latin-1")
