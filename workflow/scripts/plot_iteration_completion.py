from mfsweep import plot_jobs

plot_jobs.plot_iteration_completion(snakemake)  # noqa: F821 (snakemake is injected by the script directive)
