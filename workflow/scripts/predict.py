from mfsweep.pipeline import jobs

jobs.predict(snakemake)  # noqa: F821 (snakemake is injected by the script directive)
