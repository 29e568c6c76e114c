"""Fitting a per-language stack (`combine.langstack` reads it): for each of a finished run's languages, its members
fitted on the language's training part and combined on its validation part, written under runs/<run_id>/stack/.

The combination (the features member's C, the weights over the simplex, the thresholds) is fitted once on the whole
validation part, for dev and test; its validation figure is cross-fitted: fitted on k-1 folds of the validation
part, scored on the held-out fold, so no row is scored by a combination fitted on it. A language with fewer than
`stack_min_val` validation rows gets equal weights (the features member at C=0.1) and threshold 0.5: too few rows
to fit anything on.

The runs the stack uses (its further networks, its fold networks) are read finished: `build.build` trains them
first (the run graph, `graph.needs`); this module trains nothing.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from emotionlib import baseline as B
from emotionlib import data as D
from emotionlib.split import training_parts
from emotionlib import graph as G
from emotionlib.combine.langstack import folds_proba, load_member, network_proba, sigmoid, stack_table
from emotionlib.combine.weights import BASELINE, best_f1_per_label, fit_weights
from emotionlib.encoders import prompt_for, resolve_encoder
from emotionlib.features import LayerFeatures, head_block
from emotionlib.hardware import resolve_precision
from emotionlib.metrics import scores, tune_thresholds
from emotionlib.metadata import read_finished
from emotionlib.model import load_model
from emotionlib.predict import decide
from emotionlib.runs import RunLayout, atomic_dir, read_json, sha256_of, write_json
from emotionlib.provenance import provenance
from emotionlib.run_records import record_step, seal, step_inputs, step_is_current

log = logging.getLogger(__name__)

LR_CS = (0.003, 0.01, 0.03, 0.1)  # standardised features of ~1,000 dimensions want strong regularisation
SMALL_C = 0.03  # the features member's C where a language's validation part is too small to choose it
STEP = 0.1  # the grid step of the member weights


def finished(run: Path, what: str) -> Path:
    """A run the stack uses, refused unless its training finished and its files are those training wrote."""
    try:
        read_finished(run)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"the stack's {what} {run} is not a finished run ({exc}); build the run with `python -m "
            "emotionlib run` or `make report`, which trains what the stack needs first"
        ) from None
    return Path(run)


# --- fitting the combination on one language's validation rows ------------------------------------------------


def combine(probs: dict[str, np.ndarray], y: np.ndarray) -> dict:
    """The combination fitted on these rows: the features member's C (its best tuned macro-F1), the weights of
    the members (grid over the simplex, ties to the most equal) and the per-label thresholds of their average."""
    ones = np.ones_like(y)
    lr = [k for k in probs if k.startswith("features_lr")]
    names = [k for k in probs if not k.startswith("features_lr")]
    if lr:
        names.append(max(lr, key=lambda k: np.nanmean(best_f1_per_label(y, probs[k], ones))))
    weights = fit_weights([probs[n] for n in names], y, ones, STEP)
    mixed = np.tensordot(weights, np.stack([probs[n] for n in names]), 1)
    return {"names": names, "weights": weights, "thresholds": tune_thresholds(y, mixed)}


def mix(probs: dict[str, np.ndarray], fit: dict) -> np.ndarray:
    return np.tensordot(fit["weights"], np.stack([probs[n] for n in fit["names"]]), 1)


def cross_fit(probs: dict[str, np.ndarray], y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """0/1 predictions for every row from a combination fitted on the other folds (multi-label stratified)."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    out = np.zeros_like(y, dtype=int)
    for fit_rows, held in MultilabelStratifiedKFold(folds, shuffle=True, random_state=seed).split(y, y):
        fit = combine({k: p[fit_rows] for k, p in probs.items()}, y[fit_rows])
        out[held] = decide(mix({k: p[held] for k, p in probs.items()}, fit), fit["thresholds"])
    return out


def fixed(probs: dict[str, np.ndarray]) -> dict:
    """The rule for a small validation part: equal weights, the features member at SMALL_C, thresholds 0.5."""
    names = [k for k in probs if not k.startswith("features_lr") or k == f"features_lr C={SMALL_C:g}"]
    return {"names": names, "weights": np.full(len(names), 1 / len(names)), "thresholds": None}


# --- the members of one language -------------------------------------------------------------------------------


def fit_features_lr(
    x_train: np.ndarray, y_train: np.ndarray, cs: Sequence[float], seed: int
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """For each C (ascending, each fit warm-started from the previous one), (coef (C, d), intercept (C,)) of one
    balanced logistic regression per label on standardised features, folded back to the raw features; a label
    with one class in training gets a constant +-30 logit."""
    from sklearn.linear_model import LogisticRegression

    cs = sorted(cs)
    mean, scale = x_train.mean(0), x_train.std(0) + 1e-6
    z = (x_train - mean) / scale
    out = {
        c: (np.zeros((y_train.shape[1], x_train.shape[1]), np.float32), np.zeros(y_train.shape[1], np.float32))
        for c in cs
    }
    for j in range(y_train.shape[1]):
        if y_train[:, j].min() == y_train[:, j].max():
            for c in cs:
                out[c][1][j] = 30.0 if y_train[0, j] > 0 else -30.0
            continue
        clf = LogisticRegression(
            C=cs[0], class_weight="balanced", max_iter=1000, tol=1e-3, warm_start=True, random_state=seed
        )
        for c in cs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # lbfgs may stop at max_iter on a few labels: the fit is still usable
                clf.set_params(C=c).fit(z, y_train[:, j])
            out[c][0][j] = clf.coef_[0] / scale
            out[c][1][j] = clf.intercept_[0] - float(clf.coef_[0] @ (mean / scale))
    return out


# --- fitting and writing the stack ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Members:
    """What every language's fit reads: the run's network with its tokenizer and metadata (`block`: the block of
    the cached features its head reads, None when it encodes texts itself), the further runs' networks (name ->
    (network, tokenizer, metadata)), the fold networks whose mean is the network member, and the frozen features
    of the training and validation texts, by text."""

    meta: dict
    network: Any = None
    tokenizer: Any = None
    block: int | None = None
    others: dict = field(default_factory=dict)
    folds: list = field(default_factory=list)
    cached: dict = field(default_factory=dict)


def fit_stack(cfg) -> pd.DataFrame | None:
    """Fit the stack of a trained run when `cfg.stack` names members, write runs/<run_id>/stack/, and return the
    per-language table (validation, cross-fitted); None when the config stacks nothing. Skipped when current."""
    if not cfg.stack:
        return None
    layout = RunLayout(cfg.run_dir)
    runs = {name: finished(member.run_dir, f"stack member {name}") for name, member in G.member_configs(cfg)}
    run_weights = {name: sha256_of(RunLayout(run).weights) for name, run in runs.items()}  # hashed once
    fold_runs = [finished(run, "fold network") for run in G.fold_runs(cfg)]
    fold_weights = [sha256_of(RunLayout(run).weights) for run in fold_runs]
    inputs = step_inputs(layout, [layout.config, layout.split, layout.weights, layout.metadata])
    inputs |= {f"run {name}": sha for name, sha in run_weights.items()}
    inputs |= {f"fold network {i}": sha for i, sha in enumerate(fold_weights)}
    if step_is_current(layout, "stack", inputs, [layout.stack_meta]):
        log.info(f"{layout.root}: the stack is up to date with the model and split; skipped")
        return stack_table(read_json(layout.stack_meta))
    started = time.time()
    read_finished(layout.root)
    network, tokenizer, meta = load_model(layout.model)
    others = {name: load_member(layout.root, run, meta["labels"]) for name, run in runs.items()}
    folds = [load_member(layout.root, run, meta["labels"]) for run in fold_runs]
    train_parts, val_parts = training_parts(cfg, layout)
    feats, block, cached = feature_pass(cfg, [t for p in train_parts + val_parts for t in p.texts], bool(folds))
    members = Members(meta, network, tokenizer, block, others, folds, cached)
    fits, saved = {}, {}
    for tr, va in zip(train_parts, val_parts):
        t0 = time.time()
        fits[va.lang], saved[va.lang] = fit_language(cfg, tr, va, members)
        log.info(
            f"stack {va.lang}: validation (cross-fitted) {fits[va.lang]['val_oof']:.3f}, weights "
            f"{fits[va.lang]['weights']} [{time.time() - t0:.0f} s]"
        )
    stack = stack_record(cfg, layout, feats, block, meta, fits) | {
        "members": list(cfg.stack) + list(runs),
        "runs": {
            name: {"run_id": run.name, "weights_sha256": run_weights[name], "stack_runs_entry": entry}
            for (name, run), entry in zip(runs.items(), cfg.stack_runs)
        },
        "network_folds": fold_record(fold_runs, fold_weights),
        "wall_seconds": round(time.time() - started, 1),
    }
    write_stack(layout, stack, saved)
    record_step(layout, "stack", inputs, [layout.stack_meta])
    seal(layout)  # the stack decides the run's predictions now: the manifest names its files
    return stack_table(stack)


def feature_pass(cfg, texts: list[str], folds: bool) -> tuple[LayerFeatures, int | None, dict]:
    """The stack's frozen-feature encoder, the block of its features the network's head reads (None when the
    network encodes texts itself) and, where a member reads them, the features of `texts` by text (cached)."""
    feature_model = cfg.feature_model or cfg.model
    # the feature pass in the precision `feature_precision` asks for (auto: bf16 where the CPU has it natively); the
    # features' cache key holds the precision, so fp32 and bf16 features never mix
    feats = LayerFeatures(
        resolve_encoder(feature_model),
        cfg.feature_layers,
        cfg.max_length,
        precision=resolve_precision(cfg.feature_precision),
        prompt=prompt_for(feature_model),
    )
    # a frozen-encoder network reads the same features only when they come from its own encoder
    block = (
        head_block(cfg, feats.layers, feats.encoder.config.num_hidden_layers)
        if not cfg.feature_model and not folds
        else None
    )
    if "features_lr" not in cfg.stack and not ("network" in cfg.stack and block is not None):
        return feats, block, {}
    log.info(f"stack: features of {len(texts)} training texts (layers {feats.layers})")
    return feats, block, dict(zip(texts, feats(texts, D.cache_dir() / "features", cfg.eval_batch_size)))


def stack_record(cfg, layout: RunLayout, feats: LayerFeatures, block: int | None, meta: dict, fits: dict) -> dict:
    """What stack.json says of how the stack was made: its features (encoder, prompt, precision, layers), its
    settings, the fits per language and the provenance."""
    return {
        "kind": "language-stack",
        "encoder": cfg.feature_model or cfg.model,
        "feature_prompt": feats.prompt,
        "feature_precision": feats.precision,
        "encoder_fingerprint": feats.fingerprint,
        "feature_layers": feats.layers,
        "network_block": block,
        "max_length": cfg.max_length,
        "labels": list(meta["labels"]),
        "folds": cfg.stack_folds,
        "min_val": cfg.stack_min_val,
        "weight_step": STEP,
        "lr_cs": list(LR_CS),
        "languages": fits,
        "provenance": provenance({"data": read_json(layout.split)["checksums"]}),
    }


def language_probs(cfg, tr: D.LangSplit, va: D.LangSplit, m: Members) -> tuple[dict, dict]:
    """The validation probabilities of one language's members (`cfg.stack` and `m.others`; the network member is the
    mean of `m.folds` when there are any), with what the fitted ones save: the features member at each C, and the
    TF-IDF pipeline."""
    x_tr = np.stack([m.cached[t] for t in tr.texts]) if m.cached else None
    x_va = np.stack([m.cached[t] for t in va.texts]) if m.cached else None
    cols = [m.meta["labels"].index(lab) for lab in va.labels]
    probs, saved = {}, {}
    if "network" in cfg.stack and m.folds:
        probs["network"] = folds_proba(m.folds, va.texts, va.lang, cfg.eval_batch_size)[:, cols]
    elif "network" in cfg.stack:
        probs["network"] = network_proba(
            m.network, m.tokenizer, m.meta, va.texts, x_va, m.block, va.lang, cfg.eval_batch_size
        )[:, cols]
    for name, (net, tok, meta) in m.others.items():
        probs[name] = network_proba(net, tok, meta, va.texts, None, None, va.lang, cfg.eval_batch_size)[:, cols]
    if "features_lr" in cfg.stack:
        for c, (coef, intercept) in fit_features_lr(x_tr, tr.y, LR_CS, cfg.seed).items():
            probs[f"features_lr C={c:g}"] = sigmoid(x_va @ coef.T + intercept)
            saved[f"features_lr C={c:g}"] = (coef, intercept)
    if BASELINE in cfg.stack:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a label without positives in training is predicted constant 0
            saved[BASELINE] = B.make_pipeline(cfg.seed).fit(tr.texts, tr.y)
        probs[BASELINE] = saved[BASELINE].predict_proba(va.texts).astype(np.float32)
    return probs, saved


def fit_language(cfg, tr: D.LangSplit, va: D.LangSplit, members: Members) -> tuple[dict, dict]:
    """One language: its members fitted on its training part, scored on its validation part, and combined."""
    probs, saved = language_probs(cfg, tr, va, members)
    small = len(va) < cfg.stack_min_val
    fit = fixed(probs) if small else combine(probs, va.y)
    thresholds = np.full(len(va.labels), 0.5) if small else fit["thresholds"]
    oof = decide(mix(probs, fit), thresholds) if small else cross_fit(probs, va.y, cfg.stack_folds, cfg.seed)
    member_thresholds = {
        n: (np.full(len(va.labels), 0.5) if small else tune_thresholds(va.y, probs[n])) for n in fit["names"]
    }
    member_oof = {}  # each member alone, cross-fitted the same way (the features member's C chosen in the folds)
    for n in fit["names"]:
        alone = {k: p for k, p in probs.items() if k.split(" ")[0] == n.split(" ")[0]}
        member_oof[n] = scores(
            va.y, decide(probs[n], 0.5) if small else cross_fit(alone, va.y, cfg.stack_folds, cfg.seed), va.labels
        )
    keep = {n: saved[n] for n in fit["names"] if n in saved}
    oof_scores = scores(va.y, oof, va.labels)
    record = {
        "labels": list(va.labels),
        "n_train": len(tr),
        "n_val": len(va),
        "rule": "fixed (validation part too small)" if small else "fitted on the validation part",
        "members": [n.split(" ")[0] for n in fit["names"]],
        "features_lr_c": next((float(n.split("=")[1]) for n in fit["names"] if "C=" in n), None),
        "weights": {n.split(" ")[0]: round(float(w), 4) for n, w in zip(fit["names"], fit["weights"])},
        "thresholds": [float(t) for t in thresholds],
        "member_thresholds": {n.split(" ")[0]: [float(t) for t in v] for n, v in member_thresholds.items()},
        "val_in_sample": scores(va.y, decide(mix(probs, fit), thresholds), va.labels)["macro_f1"],
        "val_oof": oof_scores["macro_f1"],
        "members_val_oof": {n.split(" ")[0]: v["macro_f1"] for n, v in member_oof.items()},
        # per label, what the combination did against each member alone (the report's discussion)
        "val_oof_per_label": f1_by_label(oof_scores),
        "members_val_oof_per_label": {n.split(" ")[0]: f1_by_label(v) for n, v in member_oof.items()},
    }
    return record, {n.split(" ")[0]: v for n, v in keep.items()}


def f1_by_label(s: dict) -> dict[str, float]:
    return {lab: round(float(v["f1"]), 4) for lab, v in s["per_label"].items()}


def fold_record(fold_runs: list[Path], weights: list[str]) -> dict | None:
    """What stack.json keeps of the fold networks: their folder, weights and out-of-fold figure."""
    if not fold_runs:
        return None
    summary = read_json(fold_runs[0].parent / G.KFOLD_SUMMARY)
    return {
        "folder": G.FOLDS_DIR,
        "runs": [run.name for run in fold_runs],
        "weights_sha256": weights,
        "kfold_pooled_macro_f1": summary["pooled_macro_f1"],
        "kfold_fold_macro_f1": summary["fold_macro_f1"],
    }


def write_stack(layout: RunLayout, stack: dict, saved: dict) -> None:
    """runs/<run_id>/stack/, whole or not at all: stack.json, features_lr-<lang>.safetensors, tfidf_lr-<lang>/."""
    from safetensors.numpy import save_file

    with atomic_dir(layout.stack, "stack") as tmp:
        for lang, members in saved.items():
            if "features_lr" in members:
                coef, intercept = members["features_lr"]
                save_file({"coef": coef, "intercept": intercept}, str(Path(tmp) / f"features_lr-{lang}.safetensors"))
            if BASELINE in members:
                B.save_pipeline(members[BASELINE], stack["languages"][lang]["labels"], Path(tmp) / f"{BASELINE}-{lang}")
        write_json(Path(tmp) / "stack.json", stack)
