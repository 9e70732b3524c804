from mfsweep.pipeline import jobs

jobs.split(snakemake)  # noqa: F821 (snakemake is injected by the script directive)
