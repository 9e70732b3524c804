"""What every data source shares: the error type, the logger and safe archive access."""

from __future__ import annotations

import logging
import os
import re
import zipfile
from pathlib import Path, PurePosixPath

import pandas as pd

log = logging.getLogger("mfsweep.data")


class DataError(ValueError):
    """A dataset that cannot be downloaded, read or trusted; the message names the file."""


_DRIVE = re.compile(r"^[A-Za-z]:")


def unsafe_member(name: str) -> bool:
    """Whether an archive member's path would escape the folder it is extracted into."""
    posix = name.replace("\\", "/")
    return posix.startswith("/") or bool(_DRIVE.match(posix)) or ".." in PurePosixPath(posix).parts


def open_archive(path: str | os.PathLike) -> zipfile.ZipFile:
    """Open a zip archive after checking that no member's path escapes its folder."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"archive not found: {path}")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise DataError(f"{path} is not a zip archive ({error})") from None
    bad = [name for name in archive.namelist() if unsafe_member(name)]
    if bad:
        archive.close()
        raise DataError(f"{path}: refusing archive members whose paths escape the folder: {bad[:5]}")
    return archive


def find_member(archive: zipfile.ZipFile, filename: str, path: str | os.PathLike) -> str:
    """The one member called ``filename`` at the top of the archive or in its top folder."""
    found = [
        name for name in archive.namelist()
        if PurePosixPath(name).name == filename and len(PurePosixPath(name).parts) <= 2
    ]
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} candidate"
        raise DataError(f"{path}: {what} member named {filename} (members: {archive.namelist()[:20]})")
    return found[0]


def sample_row(frame: pd.DataFrame, position: int) -> str:
    """One row of a user's table, 1-based, for error messages."""
    from mfsweep.io import shorten

    row = frame.iloc[position].to_dict()
    return f"row {position + 1}: {shorten(row)}"
