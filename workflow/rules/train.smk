# One trial of one model on one fold: the epoch loop with validation and early stopping.


rule train:
    input:
        train=split_part("train"),
        valid=split_part("valid"),
        users=dataset_file("users"),
        catalog=dataset_file("items"),
        round=unit_round,
        resume=unit_resume,
    output:
        history=f"{paths.TRIAL}/history.parquet",
        model=model_output(),
        record=f"{paths.TRIAL}/record.json",
    params:
        unit=unit_settings,
        pruning=unit_pruning,
        evaluation=lambda wildcards: mf.validation_settings(config),
        fail_fast=config["fail_fast"],
    threads: train_threads
    resources:
        mem_mb=train_mem_mb,
        runtime=train_runtime,
    log:
        "logs/train/{dataset}/{split}/{model}/{trial}/fold{fold}.log",
    benchmark:
        "benchmarks/train/{dataset}/{split}/{model}/{trial}/fold{fold}.tsv"
    wildcard_constraints:
        trial=paths.PLAIN_UNIT,
    conda:
        "../../envs/mfsweep.yaml"
    script:
        "../scripts/train.py"


# A rung of a halving search (hyperband, sha) also leaves each trial's checkpoint, which the
# next rung continues a promoted trial from.
use rule train as train_rung with:
    output:
        history=f"{paths.TRIAL}/history.parquet",
        model=model_output(),
        record=f"{paths.TRIAL}/record.json",
        state=f"{paths.TRIAL}/state.npz",
    wildcard_constraints:
        trial=paths.RUNG_UNIT,
