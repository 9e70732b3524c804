# Train, validation and test parts of one fold.


rule split:
    input:
        dataset_file("ratings"),
    output:
        train=split_part("train"),
        valid=split_part("valid"),
        test=split_part("test"),
    params:
        settings=lambda wildcards: mf.split_settings(config, wildcards.split),
    resources:
        mem_mb=lambda wildcards, input, attempt: attempt * res.split_mem_mb(mf.rows(input[0])),
        runtime=lambda wildcards, input, attempt: attempt * res.split_runtime_min(mf.rows(input[0])),
    log:
        "logs/split/{dataset}/{split}/fold{fold}.log",
    benchmark:
        "benchmarks/split/{dataset}/{split}/fold{fold}.tsv"
    conda:
        "../../envs/mfsweep.yaml"
    script:
        "../scripts/split.py"
