# MovieLens archives, and every source turned into the canonical ratings table.


localrules:
    download,


rule download:
    output:
        paths.RAW,
    log:
        "logs/download/{name}.log",
    benchmark:
        "benchmarks/download/{name}.tsv"
    wildcard_constraints:
        name=MOVIELENS,
    conda:
        "../../envs/mfsweep.yaml"
    script:
        "../scripts/download.py"


rule prepare:
    input:
        lambda wildcards: mf.prepare_input(config, wildcards.dataset),
    output:
        ratings=dataset_file("ratings"),
        users=dataset_file("users"),
        catalog=dataset_file("items"),
    params:
        source=lambda wildcards: mf.dataset_source(config, wildcards.dataset),
    threads: lambda wildcards: res.prepare_threads(dataset_size(wildcards))
    resources:
        mem_mb=lambda wildcards, attempt: attempt * res.prepare_mem_mb(dataset_size(wildcards)),
        runtime=lambda wildcards, attempt: attempt * res.prepare_runtime_min(dataset_size(wildcards)),
    log:
        "logs/prepare/{dataset}.log",
    benchmark:
        "benchmarks/prepare/{dataset}.tsv"
    conda:
        "../../envs/mfsweep.yaml"
    script:
        "../scripts/prepare.py"
