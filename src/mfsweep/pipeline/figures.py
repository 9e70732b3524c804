"""The report's figures and tables: one row each, from which the workflow makes one rule
each (``plot_<name>``, or the table's name) and the default targets."""

from __future__ import annotations

from dataclasses import dataclass

from mfsweep.pipeline import paths

#: The summary files of a model that figures read, by the name a job sees them under.
SUMMARY_FILES = {"trials": "trials.parquet", "history": "history.parquet", "best": "best.json"}
#: The summaries that are read by people and other tools, not by figures.
EXPORTS = ("trials.csv", "best.csv", "optuna.db")


@dataclass(frozen=True)
class Figure:
    """One reported result.

    ``inputs`` name SUMMARY_FILES: the model's own for a per-model figure, those of
    every model of the dataset and split for the others. ``caption`` is the file in
    reports/ (``<name>.rst``); ``table`` is a second, unreported output.
    """

    name: str
    rule: str
    label: str
    inputs: tuple[str, ...]
    output: str
    per_model: bool = True
    table: str | None = None

    @property
    def caption(self) -> str:
        return f"reports/{self.name}.rst"

    def outputs(self, **wildcards) -> list[str]:
        return [paths.build(path, **wildcards) for path in (self.output, self.table) if path]


def _model_figure(name: str, label: str, inputs: tuple[str, ...] = ("trials",)) -> Figure:
    return Figure(name, f"plot_{name}", label, inputs, paths.file(paths.MODEL_PLOTS, f"{name}.svg"))


FIGURES: tuple[Figure, ...] = (
    _model_figure("embedding_size", "embedding size"),
    _model_figure("learning_parameters", "learning parameters"),
    _model_figure("iteration_completion", "iteration completion", ("trials", "history", "best")),
    _model_figure("folds", "folds"),
    _model_figure("parallel_coordinates", "parallel coordinates"),
    _model_figure("importance", "parameter importance"),
    _model_figure("training_curves", "loss parts and fold bands", ("trials", "history", "best")),
    Figure("comparison", "plot_comparison", "model comparison", ("best",),
           paths.file(paths.SPLIT_SUMMARY, "comparison.svg"), per_model=False,
           table=paths.file(paths.SPLIT_SUMMARY, "comparison.parquet")),
    Figure("cost", "plot_cost", "cost", ("trials",), paths.file(paths.PLOTS, "cost.svg"), per_model=False),
    Figure("search_progress", "plot_search_progress", "search progress", ("trials", "best", "history"),
           paths.file(paths.PLOTS, "search_progress.svg"), per_model=False),
    Figure("trials_table", "trials_table", "trials table", ("trials", "best"), paths.file(paths.SUMMARY, "trials.html")),
    Figure("best_table", "best_table", "best configuration", ("best",), paths.file(paths.SUMMARY, "best.html")),
)
MODEL_FIGURES = tuple(f.name for f in FIGURES if f.per_model)
SPLIT_FIGURES = tuple(f.name for f in FIGURES if not f.per_model)
