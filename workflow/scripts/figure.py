from mfsweep.pipeline import plot_jobs

plot_jobs.draw(snakemake)  # noqa: F821 (snakemake is injected by the script directive)
