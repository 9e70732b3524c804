from mfsweep.pipeline import jobs

jobs.prepare(snakemake)  # noqa: F821 (snakemake is injected by the script directive)
