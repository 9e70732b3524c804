from mfsweep.pipeline import jobs

jobs.evaluate(snakemake)  # noqa: F821 (snakemake is injected by the script directive)
