"""Datasets: MovieLens download and verification, a user's own file, synthetic ratings,
all turned into the canonical ratings table by ``prepare``."""

from mfsweep.data.common import DataError, open_archive
from mfsweep.data.fetch import download, verify_archive
from mfsweep.data.movielens import MOVIELENS, Release, release
from mfsweep.data.prepare import prepare, read_pairs, read_user_file
from mfsweep.data.synthetic import synthetic

__all__ = ["MOVIELENS", "DataError", "Release", "download", "release", "open_archive", "prepare", "read_pairs", "read_user_file", "synthetic", "verify_archive"]
