# mfsweep: matrix-factorization experiments on MovieLens.
# The logic lives in the mfsweep package (src/mfsweep); rules only wire files together.
from snakemake.utils import min_version

import mfsweep.pipeline.workflow as mf
from mfsweep.pipeline import paths

min_version("9.0")


# The default experiment, unless --configfile names another (which then replaces it whole).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# Snakemake's reading of the config files again, refusing a key given twice and reading 2e-2 as a number.
mf.reload_config(config, workflow.configfiles, workflow.config_settings.config)

# Validates the config (defaults filled in) and expands every model's search space,
# so a bad value fails here, before any job, naming its key.
TRIALS = mf.validate(config, workflow.source_path("workflow/schemas/config.schema.yaml"))
UNITS = mf.units(config, TRIALS)  # the trials each train job runs (see the models' batch setting)


report: "reports/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/plots.smk"


rule all:
    input:
        mf.targets(config),
        mf.missing_files(config, TRIALS, UNITS),  # of collected sweeps: made again, and what follows
    default_target: True
