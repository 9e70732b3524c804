from mfsweep.pipeline import jobs

jobs.collect(snakemake)  # noqa: F821 (snakemake is injected by the script directive)
