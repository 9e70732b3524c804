"""The house style of the figures and the helpers every figure shares: axes, marks,
labels, notes, and the atomic SVG write."""

from __future__ import annotations

import functools
import math
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator

from mfsweep.io import atomic_path
from mfsweep.search import is_log_axis
from mfsweep.trials import (
    RATING_METRICS,
    lower_is_better,
    param_columns,
    rank,
    tuned_parameters,
)
from mfsweep.values import number_text

RC = {
    "svg.fonttype": "none",  # text stays text: smaller files, searchable, testable
    "svg.hashsalt": "mfsweep",  # stable element ids: the same tables give the same file
    "font.size": 9,
    "axes.titlesize": 10,
    "figure.titlesize": 12,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
}
#: Marker and color of the trials that are not usable, by status.
MARKS = {"diverged": ("x", "tab:red"), "failed": ("x", "dimgray")}
REASON_COLORS = {"max_epochs": "tab:blue", "plateau": "tab:green", "pruned": "tab:orange", "rung": "tab:purple",
                 "diverged": "tab:red", "failed": "dimgray"}
SHORT_NAMES = {"embedding_size": "k", "learning_rate": "lr", "regularization": "reg", "init_std": "init",
               "unobserved_weight": "w0", "damping": "damp"}
EMBEDDING = "param.embedding_size"
TOP_MARK_Y = 0.97  # axes fraction where unusable trials are marked


def styled(function: Callable) -> Callable:
    """Run a plotting function under the house style (see ``RC``)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(RC):
            return function(*args, **kwargs)

    return wrapper



# ----- helpers -------------------------------------------------------------------------------
def metric_label(metric: str, over_folds: bool = True) -> str:
    unit = "rating scale; " if metric in RATING_METRICS else ""
    direction = "lower" if lower_is_better(metric) else "higher"
    mean = ", mean over folds" if over_folds else ""
    return f"validation {metric}{mean}\n({unit}{direction} is better)"


def curve_label(column: str) -> str:
    if column == "train_loss":
        return "training loss (no validation metric recorded)"
    return metric_label(column, over_folds=False)


def parameter_axis(ax, column: str, values: pd.Series, space: Mapping | None) -> Callable[[pd.DataFrame], np.ndarray]:
    """Set up ``ax``'s x axis for a parameter; return the map from table rows to x positions."""
    name = column.removeprefix("param.")
    present = values.dropna()
    numeric = pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present)
    if numeric:
        log = is_log_axis(name, present.tolist(), space)
        if name == "embedding_size" and log:
            log2_axis(ax, present.astype(float).to_numpy())
        elif log:
            ax.set_xscale("log")
        ax.set_xlabel(name + (" (log scale)" if log else ""))
        return lambda rows: rows[column].astype(float).to_numpy()
    categories = sorted({str(v) for v in present})
    ax.set_xticks(range(len(categories)), labels=categories)
    ax.set_xlim(-0.5, len(categories) - 0.5)
    ax.set_xlabel(name)
    ax.xaxis.set_minor_locator(NullLocator())
    return lambda rows: np.array([categories.index(str(v)) if pd.notna(v) else np.nan for v in rows[column]], float)


def log2_axis(ax, values: np.ndarray) -> None:
    """A log2 x axis with ticks at the values (few and well apart) or at powers of 2."""
    ax.set_xscale("log", base=2)
    sizes = np.unique(values[np.isfinite(values) & (values > 0)])
    if sizes.size == 0:
        return
    if sizes.size <= 8 and (sizes.size == 1 or np.min(sizes[1:] / sizes[:-1]) >= 1.3):
        ticks = sizes
    else:
        low, high = math.floor(math.log2(sizes.min())), math.ceil(math.log2(sizes.max()))
        step = max(1, math.ceil((high - low + 1) / 9))
        ticks = 2.0 ** np.arange(low, high + 1, step)
    ax.set_xticks(ticks, labels=[number_text(t) for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(sizes.min() / 1.5, sizes.max() * 1.5)


def plain_log_y(ax) -> None:
    """Log y ticks as plain numbers (0.3, not 3x10^-1); 2x and 5x ticks labelled on narrow ranges."""
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(plain)
    low, high = ax.get_ylim()
    narrow = high / low < 30
    ax.yaxis.set_minor_formatter(
        FuncFormatter(lambda value, _: f"{value:g}" if round(value / 10 ** math.floor(math.log10(value))) in (2, 5)
                      else "") if narrow else NullFormatter())


def mark_selected(ax, ok: pd.DataFrame, column: str, metric: str, x_of: Callable | None = None) -> None:
    if ok.empty:
        return
    best = rank(ok, metric).head(1)
    x = x_of(best) if x_of is not None else best[column].astype(float).to_numpy()
    ax.plot(x, best["mean"], "*", ms=15, color="gold", markeredgecolor="black", zorder=5,
            label=f"selected trial {best['trial'].iloc[0]}")


def mark_unusable(ax, table: pd.DataFrame, x_of: Callable[[pd.DataFrame], np.ndarray]) -> None:
    """Crosses at the top of ``ax`` at each unusable trial's x, with a counted legend entry."""
    marked = False
    for status, (marker, color) in MARKS.items():
        rows = table[table["status"] == status]
        if rows.empty:
            continue
        x = np.asarray(x_of(rows), float)
        shown = np.isfinite(x)
        label = f"{status} ({len(rows)} trial{plural(len(rows))}; marked at the top)"
        ax.plot(x[shown], np.full(int(shown.sum()), TOP_MARK_Y), marker, ms=9, mew=2, ls="none", color=color,
                transform=ax.get_xaxis_transform(), clip_on=False, zorder=5, label=label)
        marked = True
    if marked:
        ax.margins(y=0.15)


def trial_label(row: pd.Series, tuned: list[str]) -> str:
    values = " ".join(f"{short_name(c)}={number_text(row[c])}" for c in tuned if pd.notna(row.get(c)))
    return f"{row['trial']}\n{values}" if values else str(row["trial"])


def short_name(column: str) -> str:
    name = column.removeprefix("param.")
    head, _, tail = name.partition(".")
    return SHORT_NAMES.get(head, head) + (f".{tail[0]}" if tail else "")


def value_text(value: float, column: str) -> str:
    return f"{value:.3g} s" if column == "train_seconds" else f"{value:.4f}"


def folds_text(table: pd.DataFrame) -> str:
    folds = int(table["folds"].max()) if len(table) else 0
    return f"{folds} fold{plural(folds)}"


def no_usable_text(table: pd.DataFrame, metric: str) -> str:
    counts = table["status"].value_counts()
    if (table["status"] == "ok").any():
        return f"No usable trial has a validation {metric}."
    parts = [f"{counts[s]} {s}" for s in MARKS if s in counts]
    return f"No usable trial: all {len(table)} trial{plural(len(table))} diverged or failed ({', '.join(parts)})."


def untuned_text(trials: pd.DataFrame, skipped: set[str]) -> str:
    tuned = [c.removeprefix("param.") for c in tuned_parameters(trials) if c in skipped]
    fixed = [f"{c.removeprefix('param.')}={number_text(trials[c].dropna().iloc[0])}" for c in param_columns(trials)
             if c not in skipped and trials[c].notna().any()]
    head = "No tuned learning parameter: every trial used the same values"
    if tuned:
        head += f" (only {', '.join(tuned)} varies; it has its own figure)"
    trials_text = f"{trials['trial'].nunique()} trial{plural(trials['trial'].nunique())}"
    return f"{head}.\n{trials_text}; fixed: {', '.join(fixed) or 'none'}."


def palette(n: int) -> list:
    cycle = matplotlib.colormaps["tab10"].colors
    return [cycle[i % len(cycle)] for i in range(n)]


def plural(count: int) -> str:
    return "" if count == 1 else "s"


def suptitle(fig: Figure, name: str, context: str | None) -> None:
    fig.suptitle(f"{name}: {context}" if context else name)


def add_legend(fig: Figure, *axes) -> None:
    """The legend entries of ``axes`` (each label once) below the plotting area (never over
    the data or the title)."""
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if not entries:
        return
    labels, handles = list(entries), list(entries.values())
    labels = [textwrap.fill(label, 60) for label in labels]
    per_line = fig.get_figwidth() * 17  # characters of 8 pt text across the figure
    fit = int(per_line // (max(len(line) for label in labels for line in label.splitlines()) + 6))
    fig.legend(handles, labels, loc="outside lower center", ncols=max(1, min(3, fit, len(handles))))


def add_note(ax, text: str) -> None:
    ax.text(0.5, 0.5, textwrap.fill(text, 70) if "\n" not in text else text, transform=ax.transAxes,
            ha="center", va="center", fontsize=9, bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9})


def empty_panel(ax, text: str) -> None:
    """An axes that only carries a note: why there is nothing to draw."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    lines = [textwrap.fill(line, 80) for line in text.splitlines()]
    ax.text(0.5, 0.5, "\n".join(lines), transform=ax.transAxes, ha="center", va="center", fontsize=10)


def save_svg(fig: Figure, path) -> None:
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="svg", metadata={"Date": None})
