from mfsweep import report_jobs

report_jobs.trials_table(snakemake)  # noqa: F821 (snakemake is injected by the script directive)
