from mfsweep.pipeline import jobs

jobs.train(snakemake)  # noqa: F821 (snakemake is injected by the script directive)
