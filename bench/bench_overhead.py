"""Workflow overhead: the trials' own seconds against the run's wall time x cores.

Runs the whole workflow on a config in a scratch folder (the ML-100K archive is copied
in when this checkout has one, so no download is timed), then adds up every trial's
training, validation and test-evaluation seconds from the summaries:

    python -m bench.bench_overhead [--config config/config.yaml] [--cores 2] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.common import ROOT


def run_workflow(config: Path, cores: int, workdir: Path) -> float:
    raw = ROOT / "resources" / "raw"
    if raw.exists():
        shutil.copytree(raw, workdir / "resources" / "raw", dirs_exist_ok=True)
    snakemake = Path(sys.executable).with_name("snakemake")
    command = [str(snakemake), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(config), "--cores", str(cores), "--quiet", "all"]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def trial_seconds(workdir: Path) -> pd.DataFrame:
    tables = [pd.read_parquet(p) for p in (workdir / "results" / "summary").rglob("trials.parquet")]
    trials = pd.concat(tables, ignore_index=True)
    columns = ["train_seconds", "validation_seconds", "evaluate_seconds"]
    return trials.groupby("model")[columns].sum().assign(trials=trials.groupby("model").size())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mfsweep-overhead-"))
    wall = run_workflow(args.config.resolve(), args.cores, workdir)
    seconds = trial_seconds(workdir)
    own = float(seconds[["train_seconds", "validation_seconds", "evaluate_seconds"]].sum().sum())
    print(seconds.round(2).to_string())
    print(f"\ntrials: {int(seconds['trials'].sum())}; trials' own seconds: {own:.1f}")
    print(f"wall: {wall:.1f} s x {args.cores} cores = {wall * args.cores:.1f} core-seconds")
    print(f"share of the cores spent in the trials' own work: {own / (wall * args.cores):.1%}")


if __name__ == "__main__":
    main()
