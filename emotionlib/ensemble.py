"""Ensembles: trained runs (seeds, encoders) and optionally the TF-IDF baseline, their probabilities averaged
with member weights and per-label thresholds fitted on the members' shared validation part only.

An ensemble is a run directory of its own: `evaluate`, `interpret`, `predict`, `emotionlib.load` and the
report take it like any run. Its `model/metadata.json` names the members (with the sha256 of their weights,
so a retrained member is refused) and `model/baseline/` holds the baseline member, without pickles.
"""
from __future__ import annotations

import itertools
import resource
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from emotionlib import data as D
from emotionlib.config import read_config, save_config
from emotionlib.metrics import THRESHOLD_GRID, tune_thresholds
from emotionlib.runs import RunLayout, atomic_dir, provenance, read_json, sha256_of, write_json

BASELINE = "tfidf_lr"  # the name of the baseline member


class EnsembleError(ValueError):
    """Members that cannot be combined (not trained, another split or other labels); the message names the run."""


def is_ensemble(run_dir: Path) -> bool:
    meta = RunLayout(run_dir).metadata
    return meta.is_file() and read_json(meta).get("kind") == "ensemble"


def best_f1_per_label(y: np.ndarray, probs: np.ndarray, mask: np.ndarray,
                      grid: Sequence[float] = THRESHOLD_GRID) -> np.ndarray:
    """For each label, the F1 at its best grid threshold over the rows that have the label (vectorised)."""
    grid = np.asarray(grid)
    out = np.full(y.shape[1], np.nan)
    for j in range(y.shape[1]):
        rows = mask[:, j] > 0
        if not rows.any():
            continue
        t, pred = y[rows, j][:, None] > 0, probs[rows, j][:, None] >= grid[None, :]
        tp = (pred & t).sum(0)
        f1 = 2 * tp / np.maximum(pred.sum(0) + t.sum(0), 1)
        out[j] = f1.max()
    return out


def weight_candidates(m: int, step: float) -> np.ndarray:
    """Every weight vector on the simplex with coordinates in multiples of `step` (a member may get 0)."""
    n = int(round(1 / step))
    rows = [c for c in itertools.product(range(n + 1), repeat=m) if sum(c) == n]
    return np.asarray(rows, dtype=float) / n


def fit_weights(member_probs: list[np.ndarray], y: np.ndarray, mask: np.ndarray, step: float = 0.1) -> np.ndarray:
    """The weights whose averaged probabilities give the best validation macro-F1 at per-label tuned thresholds.
    Ties go to the weights nearest equal weighting (the least fitted choice)."""
    m = len(member_probs)
    if m == 1:
        return np.ones(1)
    stacked = np.stack(member_probs)  # (m, n, C)
    if m > 5:  # the simplex grid grows too large: greedy selection with replacement (Caruana et al., 2004)
        return _greedy_weights(stacked, y, mask, int(round(1 / step)))
    cands = weight_candidates(m, step)
    scores = np.array([np.nanmean(best_f1_per_label(y, np.tensordot(w, stacked, 1), mask)) for w in cands])
    best = np.flatnonzero(np.isclose(scores, scores.max(), atol=1e-12))
    uniform = np.full(m, 1 / m)
    return cands[best[np.argmin(np.abs(cands[best] - uniform).sum(1))]]


def _greedy_weights(stacked: np.ndarray, y: np.ndarray, mask: np.ndarray, picks: int) -> np.ndarray:
    """Add, `picks` times, the member whose addition to the running average scores best; weights = counts."""
    counts = np.zeros(len(stacked))
    for _ in range(picks):
        trial = [np.nanmean(best_f1_per_label(y, (np.tensordot(counts, stacked, 1) + stacked[i]) / (counts.sum() + 1),
                                              mask)) for i in range(len(stacked))]
        counts[int(np.argmax(trial))] += 1
    return counts / counts.sum()


def _check_members(runs: Sequence[Path]) -> tuple[dict, list[str]]:
    """The shared split and labels of the members; a member that differs is refused by name."""
    if not runs:
        raise EnsembleError("an ensemble needs at least one trained run (--runs)")
    split, labels = None, None
    for run in runs:
        layout = RunLayout(run)
        if not layout.train_summary.is_file():
            raise EnsembleError(f"{run}: not a trained run (no {layout.train_summary.name}); train it first")
        if is_ensemble(run):
            raise EnsembleError(f"{run}: is an ensemble; give its members instead")
        record, meta = read_json(layout.split), read_json(layout.metadata)
        mine = {lang: info["val_ids"] for lang, info in record["languages"].items()}
        if split is None:
            split, labels, first = mine, meta["labels"], run
        elif mine != split:
            raise EnsembleError(f"{run}: its validation part differs from that of {first} (another split_seed, "
                                "val_fraction or language set); members must share the split")
        elif meta["labels"] != labels:
            raise EnsembleError(f"{run}: labels {meta['labels']} differ from {labels} of {first}")
    return split, labels


def fit_ensemble(runs: Sequence[Path], out: Path, with_baseline: bool = False, step: float = 0.1) -> Path:
    """Fit weights and thresholds on the members' validation part and write the ensemble run directory `out`."""
    from emotionlib.baseline import make_pipeline
    from emotionlib.classifier import Classifier

    started = time.time()
    runs = [Path(r).resolve() for r in runs]
    out = Path(out)
    if len(set(runs)) != len(runs):
        raise EnsembleError("a run is given twice in --runs")
    if out.exists():
        raise FileExistsError(f"{out}: exists; an ensemble is written once (choose another --out)")
    _, labels = _check_members(runs)
    first = RunLayout(runs[0])
    cfg = read_config(first.root)
    train_parts, val_parts = D.training_parts(cfg, first)
    val = D.Examples.from_splits(val_parts, labels)
    names, probs = [], []
    for run in runs:
        print(f"validation probabilities of {run.name}", flush=True)
        names.append(run.name)
        probs.append(Classifier(run).predict_proba(val.texts))
    baseline = None
    if with_baseline:
        print("fitting the TF-IDF baseline on the training part", flush=True)
        train = D.Examples.from_splits(train_parts, labels)
        if len(train_parts) > 1 or (train.mask == 0).any():
            raise EnsembleError("--with-baseline takes one language's run (the baseline is fitted per language)")
        baseline = make_pipeline(cfg.seed).fit(train.texts, train.y)
        names.append(BASELINE)
        probs.append(baseline.predict_proba(val.texts).astype(np.float32))
    weights = fit_weights(probs, val.y, val.mask, step)
    mixed = np.tensordot(weights, np.stack(probs), 1)
    thresholds = np.full(len(labels), 0.5)
    cols = val.mask.astype(bool).any(axis=0)
    thresholds[cols] = tune_thresholds(val.y[:, cols], mixed[:, cols])
    member_rows = [{"name": n, "run": str(r) if r else None, "weight": float(w),
                    "val_macro_f1_tuned": float(np.nanmean(best_f1_per_label(val.y, p, val.mask))),
                    "weights_sha256": sha256_of(RunLayout(r).weights) if r else None}
                   for n, r, w, p in zip(names, runs + [None] * with_baseline, weights, probs)]
    val_f1 = float(np.nanmean(best_f1_per_label(val.y, mixed, val.mask)))
    meta = {"kind": "ensemble", "head": "ensemble", "encoder": "ensemble", "labels": list(labels),
            "max_length": max(read_json(RunLayout(r).metadata)["max_length"] for r in runs),
            "thresholds": thresholds.tolist(), "thresholds_fitted_on": "validation part",
            "weights_fitted_on": "validation part",
            "weights_method": (f"grid over the simplex in steps of {step:g}, ties to the most equal"
                               if len(probs) <= 5 else f"greedy selection with replacement, "
                               f"{int(round(1 / step))} picks (Caruana et al., 2004)"),
            "members": member_rows, "languages": D.train_languages(cfg)}
    summary = {"kind": "ensemble", "best_epoch": None, "epochs_run": 0, "best_val_macro_f1": val_f1,
               "wall_seconds": round(time.time() - started, 1),
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
               "thresholds": dict(zip(labels, thresholds.tolist())), "weights": dict(zip(names, weights.tolist()))}
    extra = {"seed": cfg.seed, "members": member_rows, "n_val": len(val.ids),
             "n_train": sum(len(p) for p in train_parts), "data": read_json(first.split)["checksums"]}
    _write_run(out, first, cfg, meta, summary, extra, baseline)
    return out


def _write_run(out: Path, first: RunLayout, cfg, meta: dict, summary: dict, extra: dict, baseline) -> None:
    """The ensemble's run directory, whole or not at all: the first member's split and config, its metadata,
    the baseline member, provenance and the summary (written last, as a training's is)."""
    from emotionlib.baseline import save_pipeline

    with atomic_dir(out) as tmp:
        layout = RunLayout(tmp)
        layout.split.parent.mkdir(parents=True)
        shutil.copy2(first.split, layout.split)
        if first.label_proportions.is_file():
            shutil.copy2(first.label_proportions, layout.label_proportions)
        save_config(cfg.replace(run_id=out.name, runs_dir=str(out.resolve().parent), model="ensemble"),
                    layout.config)
        layout.model.mkdir()
        if baseline is not None:
            save_pipeline(baseline, meta["labels"], layout.baseline_model)
        write_json(layout.metadata, meta)
        write_json(layout.provenance, provenance(extra))
        write_json(layout.train_summary, summary)


class Ensemble:
    """The weighted average of the members' probabilities (the model that `load_model` returns for an ensemble)."""

    is_ensemble = True
    training = False

    def __init__(self, model_dir: Path):
        from emotionlib.baseline import SavedBaseline
        from emotionlib.classifier import Classifier

        layout = RunLayout(Path(model_dir).parent)
        self.meta = read_json(layout.metadata)
        self.labels = self.meta["labels"]
        self.members, self.weights = [], []
        for m in self.meta["members"]:
            if m["name"] == BASELINE:
                self.members.append(SavedBaseline(layout.baseline_model))
            else:
                run = _find_member(layout.root, m)
                if sha256_of(RunLayout(run).weights) != m["weights_sha256"]:
                    raise EnsembleError(f"{run}: its weights changed since the ensemble {layout.root} was "
                                        "fitted; fit the ensemble again")
                self.members.append(Classifier(run))
            self.weights.append(m["weight"])

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for member, w in zip(self.members, self.weights):
            if w > 0:
                p = member.predict_proba(texts) if not hasattr(member, "model") else \
                    member.predict_proba(texts, batch_size, progress)
                out += w * p
        return out

    def top_member(self):
        """The transformer member with the largest weight (the one the interpretability views show)."""
        pairs = [(w, m) for w, m in zip(self.weights, self.members) if hasattr(m, "model")]
        return max(pairs, key=lambda p: p[0])[1]


def _find_member(ensemble_dir: Path, member: dict) -> Path:
    """A member beside the ensemble (runs moved together) or where it was when the ensemble was fitted."""
    for candidate in (ensemble_dir.parent / member["name"], Path(member["run"])):
        if RunLayout(candidate).metadata.is_file():
            return candidate
    raise EnsembleError(f"ensemble {ensemble_dir}: member {member['name']} not found beside it nor at {member['run']}")
