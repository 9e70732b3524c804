"""The Snakemake-facing adapters: paths and targets, config validation, job bodies and
cluster resources. The library modules of ``mfsweep`` never import from here."""
