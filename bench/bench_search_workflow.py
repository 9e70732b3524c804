"""The wall time of each whole search through the workflow: bench_halving's methods as snakemake runs.

    python -m bench.bench_search_workflow [--config bench/configs/search-methods.yaml] [--cores 2]
        [--models sgd-biased-random ...] [--workdir DIR]

In a scratch folder (the ML-100K archive copied in when this checkout has one, so no
download is timed) the data and split are made first, untimed; then each model of the
config (a kind and a search method) runs alone to its best.json: every propose, train
and evaluate job, collect and select_best. Printed per model: wall seconds, jobs,
epochs trained (each trial's epochs: a promoted trial continues, so its epochs count
once), trials and the best validation value. The table goes to
bench/results/search_workflow.csv.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.common import ROOT
from mfsweep.pipeline.config import load

CONFIG = ROOT / "bench" / "configs" / "search-methods.yaml"
OUT = ROOT / "bench" / "results" / "search_workflow.csv"


def snakemake(workdir: Path, config: Path, cores: int, *targets: str) -> str:
    command = [str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(ROOT / "Snakefile"),
               "--directory", str(workdir), "--configfile", str(config), "--cores", str(cores), *targets]
    return subprocess.run(command, check=True, capture_output=True, text=True).stderr


def run_model(workdir: Path, config: Path, cores: int, experiment: dict, model: str) -> dict:
    folder = Path("results", "summary", experiment["dataset"], experiment["split"], model)
    started = time.perf_counter()
    log = snakemake(workdir, config, cores, str(folder / "best.json"))
    seconds = time.perf_counter() - started
    trials = pd.read_parquet(workdir / folder / "trials.parquet")
    best = json.loads((workdir / folder / "best.json").read_text())
    return {"model": model, "seconds": round(seconds, 1), "jobs": log.count("\nrule ") + log.count("\nlocalrule ")
            + log.count("\nlocalcheckpoint "), "epochs": int(trials["epochs_completed"].sum()),
            "trials": int(trials["trial"].nunique()), "metric": best["selection_metric"], "best": best["objective"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--models", nargs="+", help="default: every model of the config")
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder, removed after")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    settings = load(args.config)
    experiment = settings["experiments"][0]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mfsweep-search-"))
    raw = ROOT / "resources" / "raw"
    if raw.exists():
        shutil.copytree(raw, workdir / "resources" / "raw", dirs_exist_ok=True)
    snakemake(workdir, args.config, args.cores,
              f"results/splits/{experiment['dataset']}/{experiment['split']}/fold0/train.parquet")
    rows = []
    for model in args.models or experiment["models"]:
        rows.append(run_model(workdir, args.config, args.cores, experiment, model))
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(table.to_string(index=False))
    if args.workdir is None:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
