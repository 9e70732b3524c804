# The report's figures and tables, one rule each, made from the table in
# mfsweep.pipeline.figures: per model, or across the models an experiment runs on a
# dataset and split (in the experiments' order). Each is in the report with its caption.
from mfsweep.pipeline.figures import FIGURES, SUMMARY_FILES


def figure_inputs(figure):
    if figure.per_model:
        return {name: paths.file(paths.SUMMARY, SUMMARY_FILES[name]) for name in figure.inputs}
    return {name: split_model_files(SUMMARY_FILES[name]) for name in figure.inputs}


def figure_outputs(figure):
    scope = "{model}" if figure.per_model else "all models"
    shown = report(
        figure.output,
        caption=f"../../{figure.caption}",
        category="{dataset} / {split}",
        subcategory=scope,
        labels={"model": scope, "figure": figure.label},
    )
    return {"figure": shown, "table": figure.table} if figure.table else {"figure": shown}


def figure_log(figure, folder):
    scope = "{dataset}/{split}/{model}" if figure.per_model else "{dataset}/{split}"
    return f"{folder}/{figure.rule}/{scope}"


for figure in FIGURES:

    rule:
        name:
            figure.rule
        localrule: True
        input:
            **figure_inputs(figure),
        output:
            **figure_outputs(figure),
        params:
            figure=figure.name,
            settings=model_settings if figure.per_model else {},
        log:
            figure_log(figure, "logs") + ".log",
        benchmark:
            figure_log(figure, "benchmarks") + ".tsv"
        conda:
            "../../envs/mfsweep.yaml"
        script:
            "../scripts/figure.py"
