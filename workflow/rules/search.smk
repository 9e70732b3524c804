# A search in rounds (tpe, gp, or any search with pruning): each round's trials, proposed
# from the finished earlier rounds only, so the proposals never depend on timing.


localrules:
    propose,


checkpoint propose:
    input:
        unpack(propose_input),
    output:
        paths.ROUND,
    params:
        settings=lambda wildcards: mf.propose_settings(config, TRIALS, wildcards.model, int(wildcards.round)),
    log:
        "logs/propose/{dataset}/{split}/{model}/round{round}.log",
    benchmark:
        "benchmarks/propose/{dataset}/{split}/{model}/round{round}.tsv"
    conda:
        "../../envs/mfsweep.yaml"
    script:
        "../scripts/propose.py"
