"""Download a MovieLens archive, verified, written atomically; ML-100K falls back to the
copy inside RecBole's wheel on PyPI when GroupLens cannot be reached.

``_urlopen``, ``_pip_download`` and ``_sleep`` are module-level so tests can replace them.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from mfsweep.data.common import DataError, find_member, log, open_archive
from mfsweep.data.movielens import Release, release
from mfsweep.io import atomic_path

RECBOLE = "recbole==1.2.1"
RECBOLE_INTER = "recbole/dataset_example/ml-100k/ml-100k.inter"
RECBOLE_ITEM = "recbole/dataset_example/ml-100k/ml-100k.item"
RECBOLE_USER = "recbole/dataset_example/ml-100k/ml-100k.user"
RECBOLE_INTER_SHA256 = "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"
# sha256 of the canonical ML-100K ratings rows: "user\titem\trating\ttimestamp\n" in file
# order, which is byte for byte GroupLens's u.data. Both sources are checked against it.
ML100K_RATINGS_SHA256 = "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"
ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
]
ZIP_DATE = (1998, 4, 1, 0, 0, 0)  # a fixed date keeps the rebuilt archive byte-identical
BACKOFF_SECONDS = 0.5
CHUNK = 1 << 20

_urlopen = urllib.request.urlopen
_sleep = time.sleep
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError, ssl.SSLError)


class Unreachable(DataError):
    """The source could not be reached or did not send the whole file."""


class ChecksumError(DataError):
    """The file arrived whole but is not the one expected."""


def download(name: str, dest: str | os.PathLike, *, timeout: float = 10, retries: int = 3) -> str:
    """Download MovieLens ``name`` into ``dest`` (a zip); return where it came from.

    GroupLens first: up to ``1 + retries`` attempts with exponential backoff, each
    with ``timeout`` seconds; the archive is checked against its MD5 (pinned, or
    read from ``<url>.md5``). A truncated or corrupt archive raises and leaves no
    file. For ml-100k, when GroupLens cannot be reached, the ratings and titles come
    from RecBole's wheel instead, checked against the same pinned ratings hash.
    """
    spec = release(name)
    dest = Path(dest)
    try:
        source = _from_grouplens(spec, dest, timeout, retries)
    except Unreachable as error:
        if spec.name != "ml-100k":
            raise Unreachable(f"{error}; no mirror is known for {name}: place the archive at {dest}") from None
        log.warning("GroupLens unreachable (%s); trying the ML-100K copy in %s", error, RECBOLE)
        try:
            source = _from_recbole(dest)
        except DataError as mirror_error:
            raise DataError(f"cannot get ml-100k: GroupLens: {error}; RecBole mirror: {mirror_error}") from None
    log.info("%s: %s -> %s", name, source, dest)
    return source


def verify_archive(name: str, path: str | os.PathLike) -> str:
    """Check an archive, downloaded or placed by hand, before it is prepared; return how.

    It must have the pinned MD5 of MovieLens ``name`` or, for a release without one, the
    MD5 in ``<path>.md5`` (written by ``download``, or the published ``<url>.md5`` placed
    there). An ml-100k archive rebuilt from the RecBole mirror passes on its ratings,
    checked against the pinned ratings hash. Anything else raises ChecksumError saying
    what was expected and how to replace the file.
    """
    spec = release(name)
    path = Path(path)
    got = file_md5(path)
    expected, origin = (spec.md5, "pinned") if spec.md5 else (_md5_beside(path), f"in {md5_path(path)}")
    if expected is None:
        raise ChecksumError(
            f"{path}: {name} has no pinned MD5 and {md5_path(path)} does not exist; place the published "
            f"checksum ({spec.url}.md5) there, or delete {path} and rerun to download it"
        )
    if got == expected:
        return f"md5 {got} ({origin})"
    if spec.name == "ml-100k":
        try:
            with open_archive(path) as archive:
                data = archive.read(find_member(archive, spec.ratings, path))
            _check_ml100k_ratings(canonical_ml100k(data), str(path))
            return f"ratings sha256 {ML100K_RATINGS_SHA256} (pinned)"
        except DataError:
            pass
    also = f" (nor ratings with the pinned sha256 {ML100K_RATINGS_SHA256})" if spec.name == "ml-100k" else ""
    raise ChecksumError(
        f"{path} is not the {name} archive: md5 {got}, expected {expected} ({origin}){also}; "
        f"it is partial or another file: delete it and rerun to download it, or place the archive from {spec.url}"
    )


def md5_path(path: str | os.PathLike) -> Path:
    """Where the MD5 of an archive without a pinned one is kept: ``<path>.md5``."""
    return Path(f"{path}.md5")


def file_md5(path: str | os.PathLike) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _md5_beside(path: Path) -> str | None:
    try:
        return _md5_in(md5_path(path).read_text(errors="replace"), md5_path(path))
    except FileNotFoundError:
        return None


def _md5_in(text: str, where) -> str:
    match = re.search(r"\b[0-9a-fA-F]{32}\b", text)
    if not match:
        raise DataError(f"{where} holds no MD5 checksum: {text[:80]!r}")
    return match.group(0).lower()


# ----- GroupLens ---------------------------------------------------------------------------
def _from_grouplens(spec: Release, dest: Path, timeout: float, retries: int) -> str:
    expected = spec.md5 or _published_md5(spec, timeout, retries)
    with atomic_path(dest) as tmp:
        got = _retry(lambda: _fetch(spec.url, tmp, timeout), spec.url, retries)
        if got != expected:
            raise ChecksumError(
                f"checksum mismatch for {spec.url}: expected md5 {expected}, got {got}; "
                f"the archive is corrupt or has changed, nothing was written to {dest}"
            )
        with open_archive(tmp) as archive:
            if spec.name == "ml-100k":
                data = archive.read(find_member(archive, spec.ratings, spec.url))
                _check_ml100k_ratings(canonical_ml100k(data), spec.url)
    if spec.md5 is None:  # kept beside the archive, for verify_archive
        with atomic_path(md5_path(dest)) as tmp:
            tmp.write_text(f"{expected}  {dest.name}\n")
    return f"GroupLens {spec.url} (md5 {expected})"


def _published_md5(spec: Release, timeout: float, retries: int) -> str:
    url = spec.url + ".md5"

    def read() -> str:
        with _urlopen(url, timeout=timeout) as response:
            return response.read(4096).decode("ascii", "replace")

    return _md5_in(_retry(read, url, retries), url)


def _retry(attempt, url: str, retries: int):
    """Run ``attempt`` until it succeeds, at most ``1 + retries`` times; network errors
    and truncated bodies are retried, after 0.5, 1, 2, ... seconds."""
    last = None
    for number in range(1 + max(0, retries)):
        if number:
            _sleep(BACKOFF_SECONDS * 2 ** (number - 1))
        try:
            return attempt()
        except urllib.error.HTTPError as error:
            last = Unreachable(f"{url}: HTTP {error.code} {error.reason}")
            if 400 <= error.code < 500:
                break
        except Unreachable as error:
            last = error
        except _NETWORK_ERRORS as error:
            last = Unreachable(f"cannot reach {url}: {error}")
        log.info("attempt %d at %s failed: %s", number + 1, url, last)
    raise last


def _fetch(url: str, path: Path, timeout: float) -> str:
    """Stream ``url`` into ``path``; return its MD5. A body shorter than its
    Content-Length raises Unreachable ("truncated: got N of M bytes")."""
    digest = hashlib.md5()
    got = 0
    with _urlopen(url, timeout=timeout) as response, open(path, "wb") as out:
        length = response.headers.get("Content-Length")
        try:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                got += len(chunk)
        except http.client.IncompleteRead as error:
            got += len(error.partial)
            length = length if length is not None else got + (error.expected or 0)
        if length is not None and got != int(length):
            raise Unreachable(f"{url}: truncated: got {got} of {int(length)} bytes")
    return digest.hexdigest()


# ----- ML-100K ratings, from either source --------------------------------------------------
def canonical_ml100k(data: bytes, header: bool = False) -> bytes:
    """The ML-100K ratings as u.data's bytes: ``user\\titem\\trating\\ttimestamp\\n`` rows
    in file order, from u.data or from RecBole's .inter (``header=True``)."""
    try:
        rows = np.loadtxt(io.BytesIO(data), dtype=np.int64, skiprows=1 if header else 0, ndmin=2)
    except ValueError as error:
        raise DataError(f"ML-100K ratings are not four integer columns: {error}") from None
    if rows.shape[1] != 4:
        raise DataError(f"ML-100K ratings have {rows.shape[1]} columns, expected 4")
    return "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows.tolist()).encode()


def _check_ml100k_ratings(canonical: bytes, where: str) -> None:
    got = hashlib.sha256(canonical).hexdigest()
    if got != ML100K_RATINGS_SHA256:
        raise ChecksumError(
            f"ML-100K ratings from {where} differ from the pinned ones: "
            f"expected sha256 {ML100K_RATINGS_SHA256}, got {got}"
        )


# ----- RecBole mirror ----------------------------------------------------------------------
def _pip_download(requirement: str, folder: str) -> None:
    """Fetch one wheel from PyPI into ``folder`` with pip (no dependencies)."""
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check",
        "--no-input", requirement, "-d", folder,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Unreachable(f"pip download {requirement} failed: {error}") from None
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise Unreachable(f"pip download {requirement} failed (exit {result.returncode}): {' | '.join(tail)}")


def _from_recbole(dest: Path) -> str:
    with tempfile.TemporaryDirectory(prefix="mfsweep-recbole-") as folder:
        _pip_download(RECBOLE, folder)
        wheels = sorted(Path(folder).glob("recbole-*.whl"))
        if not wheels:
            raise Unreachable(f"pip download {RECBOLE} left no wheel in {folder}")
        with open_archive(wheels[0]) as wheel:
            try:
                inter, item, user = (wheel.read(name) for name in (RECBOLE_INTER, RECBOLE_ITEM, RECBOLE_USER))
            except KeyError as error:
                raise DataError(f"{wheels[0].name} lacks {error}") from None
    got = hashlib.sha256(inter).hexdigest()
    if got != RECBOLE_INTER_SHA256:
        raise ChecksumError(f"{RECBOLE_INTER}: expected sha256 {RECBOLE_INTER_SHA256}, got {got}")
    ratings = canonical_ml100k(inter, header=True)
    _check_ml100k_ratings(ratings, RECBOLE_INTER)
    with atomic_path(dest) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            # The folder entry comes first, as in GroupLens's archive (LensKit's loader relies on it).
            archive.writestr(zipfile.ZipInfo("ml-100k/", date_time=ZIP_DATE), b"")
            _write_member(archive, "ml-100k/u.data", ratings)
            genres = "".join(f"{genre}|{number}\n" for number, genre in enumerate(ML100K_GENRES))
            _write_member(archive, "ml-100k/u.genre", genres.encode())
            _write_member(archive, "ml-100k/u.item", recbole_items_as_u_item(item))
            _write_member(archive, "ml-100k/u.user", _recbole_table_as_u_file(user))
    return f"RecBole {RECBOLE} wheel from PyPI, {RECBOLE_INTER} (sha256 {RECBOLE_INTER_SHA256})"


def _write_member(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def recbole_items_as_u_item(data: bytes) -> bytes:
    """RecBole's ml-100k.item (id, title, year, genres) rebuilt as u.item (latin-1,
    ``id|title (year)|release date|video date|IMDb URL|19 genre flags``); the dates and
    URL are not in the mirror and stay empty."""
    lines = data.decode("utf-8").splitlines()[1:]
    out = []
    for line in lines:
        if not line.strip():
            continue
        fields = line.split("\t")
        item, title, year = fields[0], fields[1], fields[2] if len(fields) > 2 else ""
        genres = set(fields[3].split()) if len(fields) > 3 else set()
        if title == "unkonwn":  # RecBole's spelling of u.item's placeholder title
            title = "unknown"
        if year.isdigit():
            title = f"{title} ({year})"
        flags = ["1" if genre in genres else "0" for genre in ML100K_GENRES]
        out.append("|".join([item, title, "", "", ""] + flags))
    return ("\n".join(out) + "\n").encode("latin-1", "replace")


def _recbole_table_as_u_file(data: bytes) -> bytes:
    """A RecBole atomic file (tab-separated, typed header) as a '|'-separated u.* file."""
    lines = data.decode("utf-8").splitlines()[1:]
    return "".join("|".join(line.split("\t")) + "\n" for line in lines if line.strip()).encode("latin-1", "replace")
