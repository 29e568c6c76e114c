"""Figures (matplotlib + seaborn), each saved as PNG and returned for display in a notebook."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from seaborn.utils import relative_luminance  # noqa: E402
from emotionlib.runs import atomic_path  # noqa: E402


def _save(fig, path: Path | None):
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(Path(path)) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)
    return fig


def _cells(ax, matrix, fmt: str, cmap: str, xticklabels, yticklabels, vmin=None, vmax=None) -> None:
    """An annotated heatmap drawn as seaborn's heatmap draws it (coloured cells, each value in a colour that reads on
    its cell, no colour bar) with one image and a text a cell. seaborn's own draws the whole figure once a call to
    check its tick labels' overlap: six calls in a figure of six matrices made it 3x slower, and a run's evaluation
    draws such figures for every set of every language."""
    matrix = np.asarray(matrix)
    image = ax.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    colours = image.cmap(image.norm(matrix))
    for (i, j), value in np.ndenumerate(matrix):
        text = ".15" if relative_luminance(colours[i, j]) > 0.408 else "w"  # seaborn's rule
        ax.text(j, i, format(value, fmt), ha="center", va="center", color=text)
    ax.set_xticks(range(matrix.shape[1]), list(xticklabels))
    ax.set_yticks(range(matrix.shape[0]), list(yticklabels))
    ax.tick_params(length=0)
    ax.spines[:].set_visible(False)


def training_curves(log: pd.DataFrame, path: Path | None = None):
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    a.plot(log["epoch"], log["train_loss"], "o-", label="train")
    a.plot(log["epoch"], log["val_loss"], "o-", label="validation")
    a.set(xlabel="epoch", ylabel="loss", title="Loss")
    a.legend()
    b.plot(log["epoch"], log["val_macro_f1"], "o-", color="C2")
    b.set(xlabel="epoch", ylabel="macro-F1", title="Validation macro-F1", ylim=(0, 1))
    return _save(fig, path)


def confusion_matrices(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], title: str, path: Path | None = None
):
    from sklearn.metrics import multilabel_confusion_matrix

    cms = multilabel_confusion_matrix(y_true, y_pred, labels=list(range(len(labels))))
    fig, axes = plt.subplots(1, len(labels), figsize=(2.6 * len(labels), 2.8), squeeze=False)
    for ax, cm, lab in zip(axes[0], cms, labels):
        _cells(ax, cm, "d", "Blues", ["0", "1"], ["0", "1"])
        ax.set(title=lab, xlabel="predicted", ylabel="gold")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def cooccurrence(y_gold: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], title: str, path: Path | None = None):
    """Share of rows where both labels hold (diagonal: the label's own rate), gold beside predicted."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, y, name in zip(axes, (y_gold, y_pred), ("gold", "predicted")):
        y = np.asarray(y, dtype=float)
        _cells(ax, y.T @ y / len(y), ".2f", "mako", labels, labels, vmin=0, vmax=1)
        ax.tick_params(axis="x", rotation=90)
        ax.set(title=f"{name} co-occurrence")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def per_label_bars(per_label: pd.DataFrame, title: str, path: Path | None = None):
    """Precision, recall and F1 per label from a frame with columns label, precision, recall, f1."""
    long = per_label.melt(id_vars="label", value_vars=["precision", "recall", "f1"], var_name="metric")
    fig, ax = plt.subplots(figsize=(8, 3.5))
    sns.barplot(long, x="label", y="value", hue="metric", ax=ax)
    ax.set(ylim=(0, 1), title=title, xlabel="", ylabel="")
    return _save(fig, path)


def language_bars(table: pd.DataFrame, columns: Sequence[str], title: str, path: Path | None = None):
    long = table.melt(id_vars="lang", value_vars=list(columns), var_name="system", value_name="macro-F1 x100")
    fig, ax = plt.subplots(figsize=(max(8, 0.45 * len(table) * len(columns) / 2), 4))
    sns.barplot(long, x="lang", y="macro-F1 x100", hue="system", ax=ax)
    ax.set(title=title, xlabel="")
    ax.tick_params(axis="x", rotation=90)
    return _save(fig, path)


def difference_bars(table: pd.DataFrame, column: str, title: str, path: Path | None = None):
    """One bar per language: `column` (a difference in points), green above zero, red below."""
    fig, ax = plt.subplots(figsize=(max(8, 0.4 * len(table)), 3.5))
    values = table[column].to_numpy(dtype=float)
    ax.bar(table["lang"], values, color=["C2" if v >= 0 else "C3" for v in values])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set(title=title, ylabel="macro-F1 points", xlabel="")
    ax.tick_params(axis="x", rotation=90)
    return _save(fig, path)


def weight_bars(words: Sequence[str], weights: Sequence[float], title: str, ax=None, path: Path | None = None):
    """Horizontal bars of signed weights (LIME) or attention mass per word."""
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(6, 0.35 * len(words) + 1))
    colors = ["C2" if w >= 0 else "C3" for w in weights]
    ax.barh(range(len(words)), weights, color=colors)
    ax.set_yticks(range(len(words)), words)
    ax.invert_yaxis()
    ax.set_title(title)
    return _save(ax.figure, path) if own else ax


def token_bars(tokens: Sequence[str], values: Sequence[float], title: str, path: Path | None = None):
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(tokens)), 3))
    ax.bar(range(len(tokens)), values, color="C0")
    ax.set_xticks(range(len(tokens)), tokens, rotation=60, ha="right")
    ax.set(title=title, ylabel="attention")
    return _save(fig, path)


def heatmap(matrix: np.ndarray, title: str, xlabel: str, ylabel: str, path: Path | None = None, fmt: str = ".2f"):
    fig, ax = plt.subplots(figsize=(1 + 0.6 * matrix.shape[1], 1 + 0.45 * matrix.shape[0]))
    _cells(ax, matrix, fmt, "viridis", range(1, matrix.shape[1] + 1), range(1, matrix.shape[0] + 1))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return _save(fig, path)


def sweep_bars(table: pd.DataFrame, axes: list[str], path: Path | None = None):
    """Mean ± sd over seeds of validation macro-F1 (at 0.5) and dev macro-F1 (tuned) for each sweep setting."""
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(table) + 2), 4))
    x = np.arange(len(table))
    for k, (metric, name) in enumerate(
        (("val_f1_0.5", "validation part, threshold 0.5"), ("dev_f1_tuned", "dev, tuned thresholds"))
    ):
        ax.bar(
            x + (k - 0.5) * 0.4,
            table[f"{metric}_mean"],
            0.4,
            yerr=table[f"{metric}_sd"],
            capsize=3,
            color=f"C{k}",
            label=name,
        )
    names = ["\n".join(str(getattr(r, a)) for a in axes) for r in table.itertuples()]
    ax.set_xticks(x, names, fontsize=7)
    lo = np.nanmin(table[["val_f1_0.5_mean", "dev_f1_tuned_mean"]].to_numpy())
    ax.set(
        ylabel="macro-F1 (mean ± sd over seeds)",
        ylim=(max(0.0, lo - 0.1), 1.0),
        title="Sweep: " + " × ".join(axes),
        xlabel="\n".join(axes),
    )
    ax.legend(fontsize=8, loc="upper right")
    return _save(fig, path)
