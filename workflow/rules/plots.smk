# Analysis figures: per model, and across the models of a dataset/split; each in the report with a caption.

MODEL_PLOTS = f"{mf.PLOTS}/{{model}}"
COMPARISON = "results/summary/{dataset}/{split}/comparison"


localrules:
    plot_embedding_size,
    plot_learning_parameters,
    plot_iteration_completion,
    plot_folds,
    plot_comparison,
    plot_cost,


rule plot_embedding_size:
    input:
        trials=f"{mf.SUMMARY}/trials.parquet",
    output:
        report(
            f"{MODEL_PLOTS}/embedding_size.svg",
            caption="../../reports/embedding_size.rst",
            category="{dataset} / {split}",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "embedding size"},
        ),
    params:
        settings=model_settings,
    log:
        "logs/plot_embedding_size/{dataset}/{split}/{model}.log",
    benchmark:
        "benchmarks/plot_embedding_size/{dataset}/{split}/{model}.tsv"
    conda:
        "../../envs/mfsweep.yaml"
    script:
        "../scripts/plot_embedding_size.py"


rule plot_learning_parameters:
    input:
        trials=f"{mf.SUMMARY}/trials.parquet",
    output:
        report(
            f"{MODEL_PLOTS}/learning_parameters.svg",
            caption="../../reports/learning_parameters.rst",
            category="{dataset} / {split}",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "learning parameters"},
        ),
    params:
        settings=model_settings,
    log:
        "logs/plot_learning_parameters/{dataset}/{split}/{model}.log",
    benchmark:
        "benchmarks/plot_learning_parameters/{dataset}/{split}/{model}.tsv"
    conda:
        "../../envs/mfsweep.yaml"
    script:
        "../scripts/plot_learning_parameters.py"


rule plot_iteration_completion:
    input:
        trials=f"{mf.SUMMARY}/trials.parquet",
        history=f"{mf.SUMMARY}/history.parquet",
        best=f"{mf.SUMMARY}/best.json",
    output:
        report(
            f"{MODEL_PLOTS}/iteration_completion.svg",
            caption="../../reports/iteration_completion.rst",
            category="{dataset} / {split}",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "iteration completion"},
        ),
    params:
        settings=model_settings,
    log:
        "logs/plot_iteration_completion/{dataset}/{split}/{model}.log",
    benchmark:
        "benchmarks/plot_iteration_completion/{dataset}/{split}/{model}.tsv"
    conda:
        "../../envs/mfsweep.yaml"
    script:
        "../scripts/plot_iteration_completion.py"


rule plot_folds:
    input:
        trials=f"{mf.SUMMARY}/trials.parquet",
    output:
        report(
            f"{MODEL_PLOTS}/folds.svg",
            caption="../../reports/folds.rst",
            category="{dataset} / {split}",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "folds"},
        ),
    params:
        settings=model_settings,
    log:
        "logs/plot_folds/{dataset}/{split}/{model}.log",
    benchmark:
        "benchmarks/plot_folds/{dataset}/{split}/{model}.tsv"
    conda:
        "../../envs/mfsweep.yaml"
    script:
        "../scripts/plot_folds.py"


# The models compared are those the experiments run on the dataset/split, in the experiments' order.
rule plot_comparison:
    input:
        best=split_model_files("best.json"),
    output:
        table=f"{COMPARISON}.parquet",
        figure=report(
            f"{COMPARISON}.svg",
            caption="../../reports/comparison.rst",
            category="{dataset} / {split}",
            subcategory="all models",
            labels={"figure": "model comparison", "model": "all models"},
        ),
    log:
        "logs/plot_comparison/{dataset}/{split}.log",
    benchmark:
        "benchmarks/plot_comparison/{dataset}/{split}.tsv"
    conda:
        "../../envs/mfsweep.yaml"
    script:
        "../scripts/plot_comparison.py"


rule plot_cost:
    input:
        trials=split_model_files("trials.parquet"),
    output:
        report(
            f"{mf.PLOTS}/cost.svg",
            caption="../../reports/cost.rst",
            category="{dataset} / {split}",
            subcategory="all models",
            labels={"figure": "cost", "model": "all models"},
        ),
    log:
        "logs/plot_cost/{dataset}/{split}.log",
    benchmark:
        "benchmarks/plot_cost/{dataset}/{split}.tsv"
    conda:
        "../../envs/mfsweep.yaml"
    script:
        "../scripts/plot_cost.py"


# Tables in the report: every trial of a model (sortable) and its selected configuration.
localrules:
    trials_table,
    best_table,


rule trials_table:
    input:
        trials=f"{mf.SUMMARY}/trials.parquet",
        best=f"{mf.SUMMARY}/best.json",
    output:
        report(
            f"{mf.SUMMARY}/trials.html",
            caption="../../reports/trials_table.rst",
            category="{dataset} / {split}",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "trials table"},
        ),
    log:
        "logs/trials_table/{dataset}/{split}/{model}.log",
    benchmark:
        "benchmarks/trials_table/{dataset}/{split}/{model}.tsv"
    conda:
        "../../envs/mfsweep.yaml"
    script:
        "../scripts/trials_table.py"


rule best_table:
    input:
        best=f"{mf.SUMMARY}/best.json",
    output:
        report(
            f"{mf.SUMMARY}/best.html",
            caption="../../reports/best_table.rst",
            category="{dataset} / {split}",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "best configuration"},
        ),
    log:
        "logs/best_table/{dataset}/{split}/{model}.log",
    benchmark:
        "benchmarks/best_table/{dataset}/{split}/{model}.tsv"
    conda:
        "../../envs/mfsweep.yaml"
    script:
        "../scripts/best_table.py"
