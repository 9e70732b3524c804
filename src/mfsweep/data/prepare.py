"""Turn any source into the canonical tables: ratings.parquet (dense ids), users.parquet
and items.parquet (dense id -> original id, + title where known)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import numpy as np
import pandas as pd

from mfsweep.data.common import DataError, log, sample_row
from mfsweep.data.movielens import RATING_COLUMNS, read_ratings, read_titles, release
from mfsweep.data.synthetic import synthetic
from mfsweep.io import shorten, write_parquet

SEPARATORS = {".csv": ",", ".tsv": "\t", ".dat": "::"}
PARQUET = {".parquet", ".pq"}
DUPLICATES = ("error", "keep_latest")
#: The settings of every source that choose which ratings the prepared data keeps.
FILTERS = ("min_rating", "min_user_ratings")


def prepare(source: dict, out_dir: str | os.PathLike, *, raw: str | os.PathLike | None = None) -> dict:
    """Write ``out_dir``/ratings.parquet, users.parquet and items.parquet for one dataset.

    ``source`` is the dataset's config mapping: ``{source: movielens, name}`` (read from
    the downloaded archive ``raw``), ``{source: file, path, sep,
    columns, duplicates}`` or ``{source: synthetic, users, items, ratings, seed, ...}``,
    each optionally with ``min_rating`` and ``min_user_ratings`` (``keep_positives``).
    Dense ids number the sorted original ids from 0; rows keep the source's order.
    Returns {ratings, users, items, source} (and what the settings dropped).
    """
    kind = source.get("source")
    titles = pd.Series([], dtype=object)
    duplicates = source.get("duplicates", "error")
    if duplicates not in DUPLICATES:
        raise DataError(f"duplicates must be one of {DUPLICATES}, not {duplicates!r}")
    min_rating, min_user_ratings = _filters(source)
    if kind == "movielens":
        spec = release(source.get("name", ""))
        if raw is None:
            raise DataError(f"{spec.name}: a MovieLens dataset is prepared from its downloaded archive; pass raw=")
        raw = Path(raw)
        frame = read_ratings(raw, spec)
        titles = read_titles(raw, spec)
        origin = f"movielens {spec.name} ({raw})"
        label = str(raw)
    elif kind == "file":
        path = source.get("path")
        if not path:
            raise DataError("a dataset with source: file needs a path")
        frame = read_user_file(path, source.get("sep"), source.get("columns") or {}, source.get("header", True))
        origin, label = f"file {path}", str(path)
    elif kind == "synthetic":
        frame = synthetic(**_synthetic_params(source))
        origin, label = f"synthetic {_synthetic_params(source)}", "synthetic ratings"
    else:
        raise DataError(f"unknown dataset source {kind!r}; known: movielens, file, synthetic")
    if frame.empty:
        raise DataError(f"{label} holds no ratings (a header at most); give a file with at least one rating row")
    ratings, users, items, dropped = canonical(frame, label, duplicates)
    kept = None
    if min_rating is not None or min_user_ratings is not None:
        ratings, users, items, kept = keep_positives(ratings, users, items, min_rating, min_user_ratings, label)
    known = titles.reindex(items["original_id"].to_numpy()).to_numpy(object) if len(titles) else None
    items["title"] = pd.array(known if known is not None else [None] * len(items), dtype="string")
    out_dir = Path(out_dir)
    write_parquet(ratings, out_dir / "ratings.parquet")
    write_parquet(users, out_dir / "users.parquet")
    write_parquet(items, out_dir / "items.parquet")
    summary = {"ratings": len(ratings), "users": len(users), "items": len(items), "source": origin}
    if dropped:
        summary["duplicates_dropped"] = dropped
    if kept is not None:
        summary["filtered"] = kept
    log.info("prepared %s: %s", out_dir, summary)
    return summary


def _filters(source: dict) -> tuple[float | None, int | None]:
    """The dataset's ``min_rating`` and ``min_user_ratings`` (None: not set), checked."""
    min_rating, min_users = (source.get(name) for name in FILTERS)
    if min_rating is not None and (isinstance(min_rating, bool) or not isinstance(min_rating, (int, float))
                                   or not np.isfinite(min_rating)):
        raise DataError(f"min_rating must be a number (ratings below it are dropped), got {min_rating!r}")
    if min_users is not None and (isinstance(min_users, bool) or not isinstance(min_users, int) or min_users < 1):
        raise DataError(f"min_user_ratings must be an integer >= 1 (users with fewer kept ratings are dropped), "
                        f"got {min_users!r}")
    return min_rating, min_users


def keep_positives(ratings: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame,
                   min_rating: float | None, min_user_ratings: int | None, label: str = "dataset"):
    """Keep the ratings >= ``min_rating``, then the users with at least ``min_user_ratings``
    of those (the MovieLens protocol of Liang et al. 2018: 4 and 5); users and items left
    without a rating are dropped and the dense ids renumbered, in the same order.

    Returns (ratings, users, items, {ratings_dropped, users_dropped, items_dropped}).
    """
    keep = np.ones(len(ratings), np.bool_)
    if min_rating is not None:
        keep &= ratings["rating"].to_numpy() >= np.float32(min_rating)
        if not keep.any():
            raise DataError(f"{label}: no rating is >= min_rating {min_rating} (ratings range from "
                            f"{ratings['rating'].min()} to {ratings['rating'].max()}); lower min_rating")
    if min_user_ratings is not None:
        counts = np.bincount(ratings["user"].to_numpy()[keep], minlength=len(users))
        keep &= counts[ratings["user"].to_numpy()] >= min_user_ratings
        if not keep.any():
            raise DataError(f"{label}: no user has {min_user_ratings} ratings"
                            + (f" >= {min_rating}" if min_rating is not None else "")
                            + f" (the most any user has is {counts.max()}); lower min_user_ratings")
    kept = ratings[keep]
    user_codes, user_kept = dense_ids(kept["user"].to_numpy())
    item_codes, item_kept = dense_ids(kept["item"].to_numpy())
    out = kept.assign(user=user_codes, item=item_codes).reset_index(drop=True)
    summary = {"ratings_dropped": int(len(ratings) - len(out)), "users_dropped": int(len(users) - len(user_kept)),
               "items_dropped": int(len(items) - len(item_kept))}
    return (out, _renumbered(users, "user", user_kept), _renumbered(items, "item", item_kept), summary)


def _renumbered(table: pd.DataFrame, column: str, kept: np.ndarray) -> pd.DataFrame:
    """The rows of an id table whose dense ids are ``kept`` (sorted), numbered from 0."""
    out = table.iloc[kept].reset_index(drop=True)
    out[column] = np.arange(len(out), dtype=np.int32)
    return out


def _synthetic_params(source: dict) -> dict:
    params = {key: value for key, value in source.items() if key not in ("source", "name", "duplicates", *FILTERS)}
    known = inspect.signature(synthetic).parameters
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise DataError(f"synthetic dataset: unknown setting {unknown[0]!r}; known: {list(known)}")
    missing = [name for name in ("users", "items", "ratings") if name not in params]
    if missing:
        raise DataError(f"synthetic dataset: missing {', '.join(missing)}")
    return params


# ----- a user's own file -------------------------------------------------------------------
def read_user_file(path: str | os.PathLike, sep: str | None, columns: dict, header: bool = True) -> pd.DataFrame:
    """Read a ratings file and map its columns to user, item, rating, timestamp.

    ``columns`` maps canonical names to the file's (default: the canonical names);
    timestamp is optional (0 when neither mapped nor present). ``sep`` None: parquet for
    .parquet/.pq, else guessed from .csv/.tsv/.dat. ``header`` False: a text file without
    a header row, whose columns are given in ``columns`` as 0-based positions (user, item
    and rating required).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"ratings file not found: {path}")
    unknown = set(columns) - set(RATING_COLUMNS)
    if unknown:
        raise DataError(f"{path}: unknown column mapping keys {sorted(unknown)}; known: {RATING_COLUMNS}")
    if not header:
        _check_positions(path, columns)
    table = _read_table(path, sep, header)
    if header and len(table.columns) and all(_is_number(name) for name in table.columns):
        raise DataError(f"{path}: the first row {_first_row(path, sep, table)} looks like data, not column names; "
                        f"for a file without a header row set header: false and give columns as positions "
                        f"(e.g. columns: {{user: 0, item: 1, rating: 2}})")
    mapping = {name: columns.get(name, name) for name in RATING_COLUMNS}
    timed = "timestamp" in columns or "timestamp" in table.columns
    required = ["user", "item", "rating"] + (["timestamp"] if timed else [])
    missing = [f"{name} (column {mapping[name]!r})" for name in required if mapping[name] not in table.columns]
    if missing:
        raise DataError(
            f"{path} is not a ratings table with the configured columns: missing {', '.join(missing)}; "
            f"columns found: {list(table.columns)}"
            + (f"; first {sample_row(table, 0)}" if len(table) else "")
        )
    frame = pd.DataFrame({name: table[mapping[name]] for name in required})
    if "timestamp" not in frame:
        frame["timestamp"] = np.zeros(len(frame), np.int64)
    return _typed(frame, table, mapping, path)


def _is_number(name) -> bool:
    try:
        float(name)
    except (TypeError, ValueError):
        return False
    return True


def _check_positions(path: Path, columns: dict) -> None:
    """With ``header: false`` every mapped column is a position, and user, item, rating are mapped."""
    missing = [name for name in ("user", "item", "rating") if name not in columns]
    if missing:
        raise DataError(f"{path}: header: false needs columns given as positions, missing {', '.join(missing)} "
                        f"(e.g. columns: {{user: 0, item: 1, rating: 2}})")
    bad = {name: value for name, value in columns.items()
           if isinstance(value, bool) or not isinstance(value, int) or value < 0}
    if bad:
        raise DataError(f"{path}: header: false needs columns as 0-based positions (integers), got {bad}")


def _first_row(path: Path, sep: str | None, table: pd.DataFrame) -> list:
    """The header row as the file has it (pandas renames a repeated name: ``2, 2`` reads as ``2, 2.1``)."""
    if _is_parquet(path, sep):
        return list(table.columns)
    return _read_table(path, sep, header=False, nrows=1, dtype=str).iloc[0].tolist()


def _is_parquet(path: Path, sep: str | None) -> bool:
    return sep is None and path.suffix.lower() in PARQUET


def _read_table(path: Path, sep: str | None, header: bool = True, **options) -> pd.DataFrame:
    """A ratings or pairs file as a table; ``options`` go to pandas' ``read_csv`` (text files)."""
    suffix = path.suffix.lower()
    options = options if header else {**options, "header": None}
    try:
        if _is_parquet(path, sep):
            if not header:
                raise DataError(f"{path}: a parquet file has column names; header: false is for text files")
            return pd.read_parquet(path)
        sep = sep if sep is not None else SEPARATORS.get(suffix)
        if sep is None:
            raise DataError(f"{path}: cannot tell the format from the suffix {suffix!r}; set sep (',', '\\t', '::')")
        if sep == "::":
            return pd.read_csv(path, sep="::", engine="python", **options)
        return pd.read_csv(path, sep=sep, low_memory=False, **options)
    except DataError:
        raise
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise DataError(f"{path} cannot be read as a ratings table (sep {sep!r}): {shorten(error)}") from None


def read_pairs(path: str | os.PathLike, sep: str | None = None, columns: dict | None = None,
               header: bool = True) -> pd.DataFrame:
    """Read a file of (user, item) pairs with original ids, as a frame of user and item.

    ``sep``, ``header`` and ``columns`` (``{user: .., item: ..}``: names, or 0-based
    positions with ``header`` False) as for a ratings file; other columns are ignored.
    The ids of a text file are kept as its text (``007``, ``1.0``), so that predictions
    give them as the file does; they are matched to the dataset's ids by value
    (mfsweep.predict.dense).
    """
    path, columns = Path(path), dict(columns or {})
    if not path.is_file():
        raise DataError(f"pairs file not found: {path}")
    unknown = set(columns) - {"user", "item"}
    if unknown:
        raise DataError(f"{path}: unknown column mapping keys {sorted(unknown)}; known: ['item', 'user']")
    if not header and any(isinstance(columns.get(name), bool) or not isinstance(columns.get(name), int)
                          for name in ("user", "item")):
        raise DataError(f"{path}: header: false needs columns as 0-based positions, e.g. {{user: 0, item: 1}}; "
                        f"got {columns}")
    table = _read_table(path, sep, header, dtype=str)
    mapping = {name: columns.get(name, name) for name in ("user", "item")}
    missing = [f"{name} (column {mapping[name]!r})" for name in mapping if mapping[name] not in table.columns]
    if missing:
        raise DataError(f"{path} is not a table of (user, item) pairs with the configured columns: missing "
                        f"{', '.join(missing)}; columns found: {list(table.columns)}")
    frame = pd.DataFrame({name: table[mapping[name]] for name in mapping})
    for name in mapping:
        _no_missing(frame[name], table, mapping[name], path)
    return frame


def _ids(frame: pd.DataFrame, table: pd.DataFrame, mapping: dict, path: Path) -> None:
    """Refuse missing user or item ids; whole numbers read as floats become integers."""
    for name in ("user", "item"):
        _no_missing(frame[name], table, mapping[name], path)
        values = frame[name]
        if values.dtype.kind == "f" and np.all(np.mod(values.to_numpy(), 1) == 0):
            frame[name] = values.astype(np.int64)


def _typed(frame: pd.DataFrame, table: pd.DataFrame, mapping: dict, path: Path) -> pd.DataFrame:
    _ids(frame, table, mapping, path)
    frame["rating"] = _numeric(frame["rating"], table, mapping["rating"], path).astype(np.float32)
    frame["timestamp"] = _timestamps(frame["timestamp"], table, mapping["timestamp"], path)
    return frame


def _no_missing(values: pd.Series, table: pd.DataFrame, column: str, path: Path) -> None:
    _refuse(values.isna().to_numpy(), "NaN or empty", table, column, path)


def _numeric(values: pd.Series, table: pd.DataFrame, column: str, path: Path) -> pd.Series:
    _no_missing(values, table, column, path)
    numbers = pd.to_numeric(values, errors="coerce")
    _refuse(numbers.isna().to_numpy(), "non-numeric", table, column, path)
    _refuse(~np.isfinite(numbers.to_numpy(np.float64)), "infinite", table, column, path)
    return numbers


def _refuse(bad: np.ndarray, what: str, table: pd.DataFrame, column: str, path: Path, todo: str = "") -> None:
    if bad.any():
        first = int(np.argmax(bad))
        raise DataError(
            f"{path}: column {column!r} has {int(bad.sum())} {what} values; first at {sample_row(table, first)}"
            + (f"; {todo}" if todo else "")
        )


#: What to do about a timestamp with a fraction of a second (the ratings table keeps whole seconds).
WHOLE_SECONDS = ("timestamps are kept as whole seconds since 1970: round or truncate them in the file "
                 "as you mean them")


def _whole_seconds(bad: np.ndarray, table: pd.DataFrame, column: str, path: Path) -> None:
    _refuse(bad, "fractional-second", table, column, path, WHOLE_SECONDS)


def _timestamps(values: pd.Series, table: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values):
        _no_missing(values, table, column, path)
        _whole_seconds((values != values.dt.floor("s")).to_numpy(), table, column, path)
        return (values.astype("datetime64[s]").astype(np.int64)).to_numpy()
    if not pd.api.types.is_numeric_dtype(values):  # text (object, or pandas' string dtype)
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.isna().any():
            dates = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
            bad = dates.isna().to_numpy()
            if bad.any():
                first = int(np.argmax(bad))
                raise DataError(
                    f"{path}: column {column!r} holds values that are neither numbers nor dates; "
                    f"first at {sample_row(table, first)}"
                )
            _whole_seconds((dates != dates.dt.floor("s")).to_numpy(), table, column, path)
            epoch = pd.Timestamp("1970-01-01", tz="UTC")  # whatever the resolution pandas parsed to
            return ((dates - epoch) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
        values = numbers
    seconds = _numeric(values, table, column, path).to_numpy(np.float64)
    _whole_seconds(np.mod(seconds, 1) != 0, table, column, path)
    return seconds.astype(np.int64)


# ----- dense ids and duplicates ------------------------------------------------------------
def dense_ids(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes int32, sorted unique originals): codes number the sorted originals from 0."""
    if values.dtype.kind in "iu" and len(values):
        low, high = int(values.min()), int(values.max())
        if low >= 0 and high < max(4 * len(values), 1 << 22):
            present = np.zeros(high + 1, np.bool_)
            present[values] = True
            lookup = np.cumsum(present, dtype=np.int64) - 1
            return lookup[values].astype(np.int32), np.flatnonzero(present).astype(values.dtype)
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int32), np.asarray(uniques)


def canonical(frame: pd.DataFrame, label: str, duplicates: str = "error"):
    """(ratings, users, items, duplicates dropped) from a frame of original ids."""
    users, user_ids = dense_ids(frame["user"].to_numpy())
    items, item_ids = dense_ids(frame["item"].to_numpy())
    ratings = frame["rating"].to_numpy(np.float32)
    timestamps = frame["timestamp"].to_numpy(np.int64)
    key = users.astype(np.int64) * max(len(item_ids), 1) + items
    keep = _deduplicate(key, timestamps, frame, label, duplicates)
    dropped = 0
    if keep is not None:
        # Dropping repeats keeps one row of every pair, so every user and item remains.
        dropped = len(key) - len(keep)
        users, items, ratings, timestamps = users[keep], items[keep], ratings[keep], timestamps[keep]
    return (
        pd.DataFrame({"user": users, "item": items, "rating": ratings, "timestamp": timestamps}),
        pd.DataFrame({"user": np.arange(len(user_ids), dtype=np.int32), "original_id": user_ids}),
        pd.DataFrame({"item": np.arange(len(item_ids), dtype=np.int32), "original_id": item_ids}),
        dropped,
    )


def _deduplicate(key: np.ndarray, timestamps: np.ndarray, frame: pd.DataFrame, label: str, duplicates: str):
    """None when every (user, item) pair is unique; else the rows to keep (``keep_latest``:
    the latest of each pair by timestamp, the later row on ties, in file order)."""
    ordered = np.sort(key)
    if not (ordered[1:] == ordered[:-1]).any():
        return None
    del ordered
    repeated = pd.Series(key).duplicated().to_numpy()
    count = int(repeated.sum())
    if duplicates != "keep_latest":
        second = int(np.argmax(repeated))
        first = int(np.argmax(key == key[second]))
        raise DataError(
            f"{label}: {count} duplicate (user, item) pairs (set duplicates: keep_latest to keep the "
            f"latest rating of each); first: {sample_row(frame, first)} and {sample_row(frame, second)}"
        )
    order = np.lexsort((np.arange(len(key)), timestamps, key))
    ordered = key[order]
    last = np.ones(len(key), np.bool_)
    last[:-1] = ordered[1:] != ordered[:-1]
    log.warning("%s: %d duplicate (user, item) ratings dropped, keeping the latest of each pair", label, count)
    return np.sort(order[last])
