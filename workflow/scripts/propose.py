from mfsweep.pipeline import search_jobs

search_jobs.propose(snakemake)  # noqa: F821 (snakemake is injected by the script directive)
