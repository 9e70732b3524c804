"""Running the workflow from tests: snakemake in a scratch folder, on a chosen config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def snakemake(workdir: Path, *args: str, config: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    command = [str(SNAKEMAKE), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir), *args]
    if config is not None:
        command += ["--configfile", str(config)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-6000:]}")
    return result


def planned_jobs(workdir: Path, *args: str, config: Path | None = None) -> dict[str, int]:
    """Rule -> job count of a dry run."""
    out = snakemake(workdir, "-n", "--quiet", "rules", *args, config=config).stdout
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total",):
            counts[parts[0]] = int(parts[1])
    return counts


def summary(workdir: Path, model: str, dataset: str = "synth", split: str = "kfold") -> Path:
    """The folder of a model's summary files (trials.parquet, best.json, ...)."""
    return workdir / "results" / "summary" / dataset / split / model


def round_file(workdir: Path, model: str, r: int, dataset: str = "synth", split: str = "kfold") -> Path:
    """The trials round ``r`` of a model searched in rounds proposed."""
    return workdir / "results" / "search" / dataset / split / model / f"round{r}.json"


def failed(workdir: Path, *args: str, config: Path | None = None) -> str:
    """What a snakemake run that must fail prints (a dry run prints its errors to stdout)."""
    result = snakemake(workdir, *args, config=config, check=False)
    assert result.returncode != 0, result.stderr[-3000:]
    return result.stdout + result.stderr
