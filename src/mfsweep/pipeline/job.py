"""What every job body shares, at run time: the ``job()`` context (the rule's log file,
numba's threads) and the provenance a result carries.

A leaf of the pipeline: it imports no job body and nothing the plan (the Snakefile) uses,
so plan time and run time both stay free to import it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import subprocess
import traceback
from pathlib import Path

import mfsweep
from mfsweep.pipeline import paths

log = logging.getLogger("mfsweep")


@contextlib.contextmanager
def job(snakemake, numba_threads: bool = False):
    """Log to the rule's log file and log any failure; with ``numba_threads``, give
    numba the rule's threads (jobs that run no numba code leave its pool unstarted)."""
    handler = logging.FileHandler(snakemake.log[0], mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    if numba_threads:
        set_threads(snakemake.threads)
    try:
        with paths.advising():
            yield
    except BaseException:
        log.error("job failed:\n%s", traceback.format_exc())
        raise
    finally:
        root.removeHandler(handler)
        handler.close()


def set_threads(threads: int) -> None:
    import numba  # only the jobs that run numba code start its pool

    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))


def provenance(config: dict) -> dict:
    """Package version, git commit (when there is one) and config hash of a result."""
    return {"version": mfsweep.__version__, "commit": git_commit(), "config_hash": config_hash(config)}


def config_hash(config: dict) -> str:
    """SHA-256 prefix of the canonical validated config: what a result was produced under."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def git_commit() -> str | None:
    root = Path(__file__).resolve().parents[3]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None
