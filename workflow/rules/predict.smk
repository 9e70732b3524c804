# The best trial's predicted ratings for the (user, item) pairs an experiment names,
# by original ids, made with that trial's fold-0 model.


localrules:
    predict,


rule predict:
    input:
        best=f"{paths.SUMMARY}/best.json",
        models=lambda wildcards: mf.prediction_models(config, wildcards.dataset, wildcards.split, wildcards.model,
                                                      model_units(wildcards)),
        pairs=lambda wildcards: prediction_settings(wildcards)["pairs"],
        train=split_part("train").replace("{fold}", "0"),
        users=dataset_file("users"),
        catalog=dataset_file("items"),
    output:
        paths.PREDICTIONS,
    params:
        settings=lambda wildcards: prediction_settings(wildcards),
    log:
        "logs/predict/{dataset}/{split}/{model}.log",
    conda:
        "../../envs/mfsweep.yaml"
    script:
        "../scripts/predict.py"
