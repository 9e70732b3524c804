from mfsweep import plot_jobs

plot_jobs.plot_learning_parameters(snakemake)  # noqa: F821 (snakemake is injected by the script directive)
