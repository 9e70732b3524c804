from mfsweep.pipeline import jobs

jobs.download(snakemake)  # noqa: F821 (snakemake is injected by the script directive)
