# Every trial x fold of a model gathered into tables, and the best trial picked.


localrules:
    collect,
    select_best,


rule collect:
    input:
        metrics=model_files("metrics.json"),
        histories=model_files("history.parquet"),
        rounds=model_rounds,
    output:
        trials=f"{paths.SUMMARY}/trials.parquet",
        trials_csv=f"{paths.SUMMARY}/trials.csv",
        history=f"{paths.SUMMARY}/history.parquet",
        optuna=f"{paths.SUMMARY}/optuna.db",
    params:
        order=lambda wildcards: mf.trial_order(config, TRIALS, wildcards.model),
        settings=model_settings,
    log:
        "logs/collect/{dataset}/{split}/{model}.log",
    conda:
        "../../envs/mfsweep.yaml"
    script:
        "../scripts/collect.py"


rule select_best:
    input:
        f"{paths.SUMMARY}/trials.parquet",
    output:
        best=f"{paths.SUMMARY}/best.json",
        best_csv=f"{paths.SUMMARY}/best.csv",
    params:
        settings=model_settings,
    log:
        "logs/select_best/{dataset}/{split}/{model}.log",
    conda:
        "../../envs/mfsweep.yaml"
    script:
        "../scripts/select_best.py"
