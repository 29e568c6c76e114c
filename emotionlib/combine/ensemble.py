"""Ensembles of trained runs (seeds, encoders) and optionally the TF-IDF baseline: member weights and per-label
thresholds fitted on the members' shared validation part only, written as a run directory of its own.

`evaluate`, `interpret`, `predict`, `emotionlib.load` and the report take that run like any other. Its
`model/metadata.json` names the members (with the sha256 of their weights, so a retrained member is refused)
and `model/baseline/` holds the baseline member, without pickles.
"""

from __future__ import annotations

import logging
import resource
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from emotionlib import data as D
from emotionlib.split import training_parts

from emotionlib import dataset as DS
from emotionlib import baseline as B
from emotionlib.classifier import Classifier
from emotionlib.run_config import read_config, save_config
from emotionlib.combine.weights import BASELINE, EnsembleError, best_f1_per_label, check_step, fit_weights
from emotionlib.metrics import tune_thresholds
from emotionlib.metadata import is_ensemble, read_metadata
from emotionlib.runs import RunLayout, atomic_dir, kind_of, marked_parent, read_json, sha256_of, write_json
from emotionlib.provenance import provenance
from emotionlib.run_records import seal

log = logging.getLogger(__name__)


def _check_members(runs: Sequence[Path]) -> tuple[dict, list[str]]:
    """The shared split and labels of the members; a member that differs is refused by name."""
    if not runs:
        raise EnsembleError("an ensemble needs at least one trained run (--runs)")
    split, labels = None, None
    for run in runs:
        layout = RunLayout(run)
        if not layout.train_summary.is_file():
            raise EnsembleError(f"{run}: not a trained run (no {layout.train_summary.name}); train it first")
        if is_ensemble(read_metadata(layout.model)):
            raise EnsembleError(f"{run}: is an ensemble; give its members instead")
        record, meta = read_json(layout.split), read_json(layout.metadata)
        if meta.get("head_per_language", "none") != "none":
            raise EnsembleError(
                f"{run}: its head has parts per language, which an ensemble of runs cannot select "
                "(it predicts without a language); stack it per language instead (config `stack`)"
            )
        mine = {lang: info["val_ids"] for lang, info in record["languages"].items()}
        if split is None:
            split, labels, first = mine, meta["labels"], run
        elif mine != split:
            raise EnsembleError(
                f"{run}: its validation part differs from that of {first} (another split_seed, "
                "val_fraction or language set); members must share the split"
            )
        elif meta["labels"] != labels:
            raise EnsembleError(f"{run}: labels {meta['labels']} differ from {labels} of {first}")
    return split, labels


def fit_ensemble(runs: Sequence[Path], out: Path, with_baseline: bool = False, step: float = 0.1) -> Path:
    """Fit weights and thresholds on the members' validation part and write the ensemble run directory `out`."""
    started = time.time()
    runs, out = [Path(r).resolve() for r in runs], Path(out)
    labels = _check_arguments(runs, out, step)
    first = RunLayout(runs[0])
    cfg = read_config(first.root)
    train_parts, val_parts = training_parts(cfg, first)
    val = DS.Examples.from_splits(val_parts, labels)
    names, probs, baseline = _member_probabilities(runs, cfg, train_parts, val, labels, with_baseline)
    weights = fit_weights(probs, val.y, val.mask, step)
    mixed = np.tensordot(weights, np.stack(probs), 1)
    thresholds = np.full(len(labels), 0.5)
    cols = val.mask.astype(bool).any(axis=0)
    thresholds[cols] = tune_thresholds(val.y[:, cols], mixed[:, cols])
    member_rows = [
        {
            "name": n,
            "run": str(r) if r else None,
            "weight": float(w),
            "val_macro_f1_tuned": float(np.nanmean(best_f1_per_label(val.y, p, val.mask))),
            "weights_sha256": sha256_of(RunLayout(r).weights) if r else None,
        }
        for n, r, w, p in zip(names, runs + [None] * with_baseline, weights, probs)
    ]
    val_f1 = float(np.nanmean(best_f1_per_label(val.y, mixed, val.mask)))
    meta = _ensemble_meta(runs, cfg, labels, thresholds, step, len(probs), member_rows)
    summary = {
        "kind": "ensemble",
        "best_epoch": None,
        "epochs_run": 0,
        "best_val_macro_f1": val_f1,
        "wall_seconds": round(time.time() - started, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "thresholds": dict(zip(labels, thresholds.tolist())),
        "weights": dict(zip(names, weights.tolist())),
    }
    extra = {
        "seed": cfg.seed,
        "members": member_rows,
        "n_val": len(val.ids),
        "n_train": sum(len(p) for p in train_parts),
        "data": read_json(first.split)["checksums"],
    }
    _write_run(out, first, cfg, meta, summary, extra, baseline)
    return out


def _member_probabilities(runs: list[Path], cfg, train_parts, val: DS.Examples, labels, with_baseline: bool):
    """Each member's validation probabilities (the TF-IDF baseline last, fitted on the training part, if asked)."""
    names, probs = [], []
    for run in runs:
        log.info(f"validation probabilities of {run.name}")
        names.append(run.name)
        probs.append(Classifier(run).predict_proba(val.texts))
    baseline = None
    if with_baseline:
        log.info("fitting the TF-IDF baseline on the training part")
        train = DS.Examples.from_splits(train_parts, labels)
        if len(train_parts) > 1 or (train.mask == 0).any():
            raise EnsembleError("--with-baseline takes one language's run (the baseline is fitted per language)")
        baseline = B.make_pipeline(cfg.seed).fit(train.texts, train.y)
        names.append(BASELINE)
        probs.append(baseline.predict_proba(val.texts).astype(np.float32))
    return names, probs, baseline


def _ensemble_meta(
    runs: list[Path], cfg, labels, thresholds: np.ndarray, step: float, n_members: int, member_rows: list[dict]
) -> dict:
    """The ensemble's metadata.json: its members, weights' method and thresholds, as a run's model metadata."""
    return {
        "kind": "ensemble",
        "head": "ensemble",
        "encoder": "ensemble",
        "labels": list(labels),
        "max_length": max(read_json(RunLayout(r).metadata)["max_length"] for r in runs),
        "thresholds": thresholds.tolist(),
        "thresholds_fitted_on": "validation part",
        "weights_fitted_on": "validation part",
        "weights_method": (
            f"grid over the simplex in steps of {step:g}, ties to the most equal"
            if n_members <= 5
            else f"greedy selection with replacement, {int(round(1 / step))} picks (Caruana et al., 2004)"
        ),
        "members": member_rows,
        "languages": D.train_languages(cfg),
    }


def _check_arguments(runs: list[Path], out: Path, step: float) -> tuple[str, ...]:
    """Every argument, before any member is scored; the members' labels."""
    check_step(step)
    if len(set(runs)) != len(runs):
        raise EnsembleError("a run is given twice in --runs")
    if out.exists():
        raise FileExistsError(f"{out}: exists; an ensemble is written once (choose another --out)")
    if (inside := marked_parent(out)) is not None:
        raise EnsembleError(
            f"--out {out}: lies inside {inside}, a {kind_of(inside)} emotionlib made; an ensemble is "
            "a run of its own (e.g. runs/ensemble-<name>)"
        )
    return _check_members(runs)[1]


def _write_run(out: Path, first: RunLayout, cfg, meta: dict, summary: dict, extra: dict, baseline) -> None:
    """The ensemble's run directory, whole or not at all: the first member's split and config, its metadata,
    the baseline member, provenance and the summary (written last, as a training's is)."""
    with atomic_dir(out, "run") as tmp:
        layout = RunLayout(tmp)
        layout.split.parent.mkdir(parents=True)
        shutil.copy2(first.split, layout.split)
        if first.label_proportions.is_file():
            shutil.copy2(first.label_proportions, layout.label_proportions)
        save_config(cfg.replace(run_id=out.name, runs_dir=str(out.resolve().parent), model="ensemble"), layout.config)
        layout.model.mkdir()
        if baseline is not None:
            B.save_pipeline(baseline, meta["labels"], layout.baseline_model)
        write_json(layout.metadata, meta)
        write_json(layout.provenance, provenance(extra))
        write_json(layout.train_summary, summary)
        seal(layout)  # last: the files that decide the ensemble's predictions
