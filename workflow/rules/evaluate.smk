# Test metrics of a trained trial.


rule evaluate:
    input:
        model=mf.intact_model,
        record=f"{paths.TRIAL}/record.json",
        train=split_part("train"),
        test=split_part("test"),
        users=dataset_file("users"),
        catalog=dataset_file("items"),
    output:
        f"{paths.TRIAL}/metrics.json",
    params:
        evaluation=lambda wildcards: mf.test_settings(config),
    threads: train_threads
    resources:
        mem_mb=evaluate_mem_mb,
        runtime=evaluate_runtime,
    log:
        "logs/evaluate/{dataset}/{split}/{model}/{trial}/fold{fold}.log",
    benchmark:
        "benchmarks/evaluate/{dataset}/{split}/{model}/{trial}/fold{fold}.tsv"
    conda:
        "../../envs/mfsweep.yaml"
    script:
        "../scripts/evaluate.py"
