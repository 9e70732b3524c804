"""File reads and atomic writes: a killed job never leaves a file that looks complete."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from mfsweep.values import plain


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """A table as CSV (for spreadsheets), with a header row and no index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_json(data: dict, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


class DamagedFile(ValueError):
    """A file that exists but cannot be read whole; the message and ``path`` name it."""

    def __init__(self, path: str | os.PathLike, message: str):
        super().__init__(message)
        self.path = str(path)


#: How much of a reader's own message an error quotes (a bad line can be megabytes long).
QUOTE_CHARS = 300


def shorten(text: str, limit: int = QUOTE_CHARS) -> str:
    """``text`` cut to about ``limit`` characters, saying how much was left out."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Turn a reader's failure on ``path`` into DamagedFile naming the file and what it
    should hold (a missing file stays FileNotFoundError)."""
    try:
        yield
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise DamagedFile(
            path, f"{path} cannot be read as {what}: it is damaged or incomplete ({type(error).__name__}: "
                  f"{shorten(error)})"
        ) from None


def read_json(path: str | os.PathLike):
    with reading(path, "JSON"):
        return json.loads(Path(path).read_text())


def read_parquet(path: str | os.PathLike, **options) -> pd.DataFrame:
    with reading(path, "a parquet table"):
        return pd.read_parquet(path, **options)


def check_zip(path: str | os.PathLike, what: str) -> None:
    """Raise DamagedFile when ``path`` is not a whole zip archive (its directory is read, not its data)."""
    with reading(path, what):
        zipfile.ZipFile(path).close()


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return plain(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def parquet_rows(path: str | os.PathLike) -> int:
    """Rows of a parquet file, from its metadata.

    A missing file raises FileNotFoundError carrying the file name, which is how
    snakemake tells a resource function of a job whose input is still to be made (it
    shows such values as <TBD> in a dry run) from a real error; pyarrow's own error
    carries no file name.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "no such parquet file", str(path))
    import pyarrow.parquet as pq

    with reading(path, "a parquet table"):
        return pq.ParquetFile(path).metadata.num_rows
