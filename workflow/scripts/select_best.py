from mfsweep.pipeline import jobs

jobs.select_best(snakemake)  # noqa: F821 (snakemake is injected by the script directive)
