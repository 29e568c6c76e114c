"""Per-language stacking: on top of a trained run's network, for each of the run's languages, a frozen-feature
member (a logistic regression per label on mean-pooled hidden states of several pretrained-encoder layers) and the
TF-IDF baseline, combined with member weights and per-label thresholds fitted on that language's validation part.

The combination (the features member's C, the weights over the simplex, the thresholds) is fitted once on the whole
validation part, for dev and test; its validation figure is cross-fitted: fitted on k-1 folds of the validation
part, scored on the held-out fold, so no row is scored by a combination fitted on it. A language with fewer than
`stack_min_val` validation rows gets equal weights (the features member at C=0.1) and threshold 0.5: too few rows
to fit anything on.

With `stack_network_folds` = k the network member is a cross-fit ensemble: the mean of k networks of the run's config,
each trained on the training part without one of k folds (runs/<run_id>/network-folds/, as `emotionlib kfold` trains
them, with their out-of-fold figure over the training part).

Written under runs/<run_id>/stack/ (JSON and safetensors, no pickles); `classifier.load_run` loads it, and
`evaluate`, `predict` and `emotionlib.load` then use it, with the language of the texts.
"""
from __future__ import annotations


import logging
import math
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from emotionlib import baseline as B
from emotionlib import data as D
from emotionlib.combine.weights import BASELINE, Combined, best_f1_per_label, fit_weights
from emotionlib.config import member_configs, network_config
from emotionlib.encoders import prompt_for, resolve_encoder
from emotionlib.features import LayerFeatures, head_block
from emotionlib.hardware import resolve_precision
from emotionlib.metrics import THRESHOLD_GRID, scores
from emotionlib.predict import decide, predict_proba
from emotionlib.model import load_model, read_finished
from emotionlib.runs import (RunLayout, atomic_dir, provenance, read_json, record_step, seal, sha256_of, step_inputs,
                             step_is_current, write_json)

log = logging.getLogger(__name__)

MEMBERS = ("network", "features_lr", BASELINE)
FOLDS_DIR = "network-folds"  # the cross-fit ensemble's runs, inside the stacked run's folder
LR_CS = (0.003, 0.01, 0.03, 0.1)  # standardised features of ~1,000 dimensions want strong regularisation
SMALL_C = 0.03  # the features member's C where a language's validation part is too small to choose it
STEP = 0.1  # the grid step of the member weights


# --- fitting the combination on one language's validation rows ------------------------------------------------

def tune(y: np.ndarray, probs: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID) -> np.ndarray:
    """Per label, the grid threshold of best F1 (ties to the one nearest 0.5), vectorised over the grid."""
    grid = np.asarray(grid)
    pred = probs[:, :, None] >= grid[None, None, :]  # (n, C, T)
    t = (y > 0)[:, :, None]
    f1 = 2 * (pred & t).sum(0) / np.maximum(pred.sum(0) + t.sum(0), 1)  # (C, T)
    best = np.isclose(f1, f1.max(1, keepdims=True))
    dist = np.where(best, np.abs(grid - 0.5)[None, :], np.inf)
    return grid[dist.argmin(1)]


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
    return {"names": names, "weights": weights, "thresholds": tune(y, mixed)}


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

def fit_features_lr(x_train: np.ndarray, y_train: np.ndarray, cs: Sequence[float],
                    seed: int) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """For each C (ascending, each fit warm-started from the previous one), (coef (C, d), intercept (C,)) of one
    balanced logistic regression per label on standardised features, folded back to the raw features; a label
    with one class in training gets a constant +-30 logit."""
    from sklearn.linear_model import LogisticRegression

    cs = sorted(cs)
    mean, scale = x_train.mean(0), x_train.std(0) + 1e-6
    z = (x_train - mean) / scale
    out = {c: (np.zeros((y_train.shape[1], x_train.shape[1]), np.float32), np.zeros(y_train.shape[1], np.float32))
           for c in cs}
    for j in range(y_train.shape[1]):
        if y_train[:, j].min() == y_train[:, j].max():
            for c in cs:
                out[c][1][j] = 30.0 if y_train[0, j] > 0 else -30.0
            continue
        clf = LogisticRegression(C=cs[0], class_weight="balanced", max_iter=1000, tol=1e-3, warm_start=True,
                                 random_state=seed)
        for c in cs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # lbfgs may stop at max_iter on a few labels: the fit is still usable
                clf.set_params(C=c).fit(z, y_train[:, j])
            out[c][0][j] = clf.coef_[0] / scale
            out[c][1][j] = clf.intercept_[0] - float(clf.coef_[0] @ (mean / scale))
    return out


def sigmoid(z: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))).astype(np.float32)


def network_proba(network, tokenizer, meta: dict, texts: Sequence[str], feats: np.ndarray | None,
                  block: int | None, lang: str, batch_size: int = 64) -> np.ndarray:
    """The network's probabilities (run label order) for texts of `lang`. A frozen-encoder network reads the same
    mean-pooled last layer that the features hold (`block`): its head is applied to them rather than encoding the
    texts again."""
    import torch

    if block is not None and feats is not None:
        width = network.head.in_features
        ids = network.language_ids([lang] * len(feats)) if network.languages else None
        with torch.inference_mode():
            logits = network.logits(torch.from_numpy(feats[:, block * width:(block + 1) * width]), ids)
        return torch.sigmoid(logits).numpy().astype(np.float32)
    return predict_proba(network, tokenizer, texts, meta["max_length"], batch_size,
                         precision=meta.get("mixed_precision", "no"), langs=[lang] * len(texts))


# --- fitting and writing the stack ---------------------------------------------------------------------------

def fit_stack(cfg) -> pd.DataFrame | None:
    """Fit the stack of a trained run when `cfg.stack` names members, write runs/<run_id>/stack/, and return the
    per-language table (validation, cross-fitted); None when the config stacks nothing. Skipped when current."""
    if not cfg.stack:
        return None
    layout = RunLayout(cfg.run_dir)
    runs = train_runs(cfg)
    run_weights = {name: sha256_of(RunLayout(run).weights) for name, run in runs.items()}  # hashed once
    fold_runs = train_fold_networks(cfg) if cfg.stack_network_folds else []
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
    train_parts, val_parts = D.training_parts(cfg, layout)
    feature_model = cfg.feature_model or cfg.model
    # the feature pass in the precision `feature_precision` asks for (auto: bf16 where the CPU has it natively); the
    # features' cache key holds the precision, so fp32 and bf16 features never mix
    feats = LayerFeatures(resolve_encoder(feature_model), cfg.feature_layers, cfg.max_length,
                          precision=resolve_precision(cfg.feature_precision), prompt=prompt_for(feature_model))
    # a frozen-encoder network reads the same features only when they come from its own encoder
    block = (head_block(cfg, feats.layers, feats.encoder.config.num_hidden_layers)
             if not cfg.feature_model and not folds else None)
    texts = [t for p in train_parts + val_parts for t in p.texts]
    cached = {}
    if "features_lr" in cfg.stack or ("network" in cfg.stack and block is not None):
        log.info(f"stack: features of {len(texts)} training texts (layers {feats.layers})")
        cached = dict(zip(texts, feats(texts, D.cache_dir() / "features", cfg.eval_batch_size)))
    fits, saved = {}, {}
    for tr, va in zip(train_parts, val_parts):
        t0 = time.time()
        fits[va.lang], saved[va.lang] = fit_language(cfg, tr, va, cached, network, tokenizer, meta, block, others,
                                                     folds)
        log.info(f"stack {va.lang}: validation (cross-fitted) {fits[va.lang]['val_oof']:.3f}, weights "
                 f"{fits[va.lang]['weights']} [{time.time() - t0:.0f} s]")
    stack = {"kind": "language-stack", "members": list(cfg.stack) + list(runs), "encoder": feature_model,
             "feature_prompt": feats.prompt, "feature_precision": feats.precision,
             "runs": {name: {"run_id": run.name, "weights_sha256": run_weights[name], "stack_runs_entry": entry}
                      for (name, run), entry in zip(runs.items(), cfg.stack_runs)},
             "network_folds": fold_record(fold_runs, fold_weights),
             "encoder_fingerprint": feats.fingerprint, "feature_layers": feats.layers, "network_block": block,
             "max_length": cfg.max_length, "labels": list(meta["labels"]), "folds": cfg.stack_folds,
             "min_val": cfg.stack_min_val, "weight_step": STEP, "lr_cs": list(LR_CS), "languages": fits,
             "wall_seconds": round(time.time() - started, 1),
             "provenance": provenance({"data": read_json(layout.split)["checksums"]})}
    write_stack(layout, stack, saved)
    record_step(layout, "stack", inputs, [layout.stack_meta])
    seal(layout)  # the stack decides the run's predictions now: the manifest names its files
    return stack_table(stack)


def language_probs(cfg, tr: D.LangSplit, va: D.LangSplit, cached: dict, network, tokenizer, meta: dict,
                   block: int | None, others: dict | None = None, folds: list | None = None) -> tuple[dict, dict]:
    """The validation probabilities of one language's members (`cfg.stack` and `others`; the network member is the
    mean of `folds` when given), with what the fitted ones save: the features member at each C, and the TF-IDF
    pipeline."""
    x_tr = np.stack([cached[t] for t in tr.texts]) if cached else None
    x_va = np.stack([cached[t] for t in va.texts]) if cached else None
    cols = [meta["labels"].index(lab) for lab in va.labels]
    probs, saved = {}, {}
    if "network" in cfg.stack and folds:
        probs["network"] = folds_proba(folds, va.texts, va.lang, cfg.eval_batch_size)[:, cols]
    elif "network" in cfg.stack:
        probs["network"] = network_proba(network, tokenizer, meta, va.texts, x_va, block, va.lang,
                                         cfg.eval_batch_size)[:, cols]
    for name, (net, tok, m) in (others or {}).items():
        probs[name] = network_proba(net, tok, m, va.texts, None, None, va.lang, cfg.eval_batch_size)[:, cols]
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


def fit_language(cfg, tr: D.LangSplit, va: D.LangSplit, cached: dict, network, tokenizer, meta: dict,
                 block: int | None, others: dict | None = None, folds: list | None = None) -> tuple[dict, dict]:
    """One language: its members fitted on its training part, scored on its validation part, and combined
    (`others`: the further runs' networks, name -> (network, tokenizer, metadata); `folds`: the fold networks
    whose mean is the network member)."""
    probs, saved = language_probs(cfg, tr, va, cached, network, tokenizer, meta, block, others, folds)
    small = len(va) < cfg.stack_min_val
    fit = fixed(probs) if small else combine(probs, va.y)
    thresholds = np.full(len(va.labels), 0.5) if small else fit["thresholds"]
    oof = decide(mix(probs, fit), thresholds) if small else cross_fit(probs, va.y, cfg.stack_folds, cfg.seed)
    member_thresholds = {n: (np.full(len(va.labels), 0.5) if small else tune(va.y, probs[n])) for n in fit["names"]}
    member_oof = {}  # each member alone, cross-fitted the same way (the features member's C chosen in the folds)
    for n in fit["names"]:
        alone = {k: p for k, p in probs.items() if k.split(" ")[0] == n.split(" ")[0]}
        member_oof[n] = scores(va.y, decide(probs[n], 0.5) if small else
                               cross_fit(alone, va.y, cfg.stack_folds, cfg.seed), va.labels)
    keep = {n: saved[n] for n in fit["names"] if n in saved}
    oof_scores = scores(va.y, oof, va.labels)
    record = {"labels": list(va.labels), "n_train": len(tr), "n_val": len(va),
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
              "members_val_oof_per_label": {n.split(" ")[0]: f1_by_label(v) for n, v in member_oof.items()}}
    return record, {n.split(" ")[0]: v for n, v in keep.items()}


def f1_by_label(s: dict) -> dict[str, float]:
    return {lab: round(float(v["f1"]), 4) for lab, v in s["per_label"].items()}


def train_runs(cfg) -> dict[str, Path]:
    """The stack's further runs (config `stack_runs`), each trained where it is missing or unfinished; member
    name -> run folder."""
    from emotionlib.train import train  # here, not at the top: loading a stacked run for prediction trains nothing

    runs = {}
    for name, member in member_configs(cfg):
        log.info(f"stack member {name}: run {member.run_id}")
        runs[name] = Path(train(member, resume=True))
    return runs


def train_fold_networks(cfg) -> list[Path]:
    """The cross-fit ensemble's runs (config `stack_network_folds`), trained where missing or unfinished: the k-fold
    estimate of this run's network config under runs/<run_id>/network-folds/."""
    from emotionlib import kfold  # here, not at the top: loading a stacked run for prediction trains nothing

    k = cfg.stack_network_folds
    log.info(f"stack: the network member is the mean of {k} fold networks ({cfg.run_dir / FOLDS_DIR})")
    root = kfold.estimate(network_config(cfg).replace(runs_dir=str(cfg.run_dir), run_id=FOLDS_DIR), k)
    return [root / f"fold-{i}" for i in range(k)]


def fold_record(fold_runs: list[Path], weights: list[str]) -> dict | None:
    """What stack.json keeps of the fold networks: their folder, weights and out-of-fold figure."""
    if not fold_runs:
        return None
    from emotionlib.kfold import SUMMARY

    summary = read_json(fold_runs[0].parent / SUMMARY)
    return {"folder": FOLDS_DIR, "runs": [run.name for run in fold_runs], "weights_sha256": weights,
            "kfold_pooled_macro_f1": summary["pooled_macro_f1"], "kfold_fold_macro_f1": summary["fold_macro_f1"]}


def folds_proba(folds: list, texts: Sequence[str], lang: str, batch_size: int = 64) -> np.ndarray:
    """The cross-fit ensemble's probabilities (run label order): the mean of the fold networks'."""
    return np.mean([network_proba(net, tok, m, texts, None, None, lang, batch_size) for net, tok, m in folds],
                   axis=0).astype(np.float32)


def load_member(run_dir: Path, member: Path, labels: list[str]):
    """(network, tokenizer, metadata) of a further run of the stack; its labels must be the run's."""
    network, tokenizer, meta = load_model(RunLayout(member).model)
    if meta["labels"] != list(labels):
        raise ValueError(f"{member}: labels {meta['labels']} differ from {list(labels)} of {run_dir}")
    return network, tokenizer, meta


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


def stack_table(stack: dict) -> pd.DataFrame:
    """One row per language: validation figures (cross-fitted) of the stack and of each member, and the weights."""
    rows = []
    for lang, f in stack["languages"].items():
        row = {"lang": lang, "n_val": f["n_val"], "stack_val_oof": f["val_oof"]}
        row |= {f"{n}_val_oof": v for n, v in f["members_val_oof"].items()}
        row |= {f"w_{n}": w for n, w in f["weights"].items()} | {"features_lr_c": f["features_lr_c"]}
        rows.append(row)
    return pd.DataFrame(rows).round(4)


def check_stack(stack, path: Path, labels: list[str]) -> dict:
    """stack.json as fit_stack writes it: per language, thresholds strictly between 0 and 1 (one a label), weights
    of known members that are finite, not negative and sum to 1. Anything else is one line naming the file."""
    def bad(why: str) -> ValueError:
        return ValueError(f"{path}: {why}; the run's stack is damaged: fit it again (`python -m emotionlib run "
                          "--run <run>` after removing the stack, or train the run again)")

    try:
        runs = stack.get("runs") or {}
        known = {"network", "features_lr", BASELINE, *runs}
        for lang, f in stack["languages"].items():
            if not set(f["labels"]) <= set(labels) or len(f["thresholds"]) != len(f["labels"]):
                raise bad(f"language {lang!r}: its labels and thresholds do not match the run's labels")
            if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t < 1 for t in f["thresholds"]):
                raise bad(f"language {lang!r}: thresholds must lie strictly between 0 and 1 (got {f['thresholds']})")
            weights = f["weights"]
            if not set(weights) <= known or not set(f["members"]) <= known:
                raise bad(f"language {lang!r}: unknown member(s) {sorted((set(weights) | set(f['members'])) - known)}")
            values = list(weights.values())
            if not all(isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0
                       for w in values) or abs(sum(values) - 1) > 1e-6:
                raise bad(f"language {lang!r}: weights must be finite, not negative and sum to 1 (got {weights})")
        return stack
    except (KeyError, TypeError, AttributeError) as exc:
        raise bad(f"not a stack record (field {exc} missing or of the wrong type)") from None


# --- using it -------------------------------------------------------------------------------------------------

class LanguageStack(Combined):
    """A run's network with its per-language stack: `predict_proba(texts, lang)` in the run's label order (labels
    the language lacks get 0). A language the stack does not hold (zero-shot) gets the network alone."""

    by_language = True
    is_ensemble = False

    def __init__(self, run_dir: Path, network, tokenizer, meta: dict):
        layout = RunLayout(run_dir)
        self.stack = check_stack(read_json(layout.stack_meta), layout.stack_meta, list(meta["labels"]))
        self.folder, self.network, self.tokenizer, self.meta = layout.stack, network, tokenizer, meta
        self.labels = list(meta["labels"])
        if self.stack["labels"] != self.labels:
            raise ValueError(f"{layout.stack_meta}: labels {self.stack['labels']} differ from the model's "
                             f"{self.labels}; fit the stack again")
        self.languages = list(self.stack["languages"])
        self.features = LayerFeatures(resolve_encoder(self.stack["encoder"]), self.stack["feature_layers"],
                                      self.stack["max_length"], precision=self.stack.get("feature_precision", "no"),
                                      prompt=self.stack.get("feature_prompt", ""))
        if self.features.fingerprint != self.stack["encoder_fingerprint"]:
            raise ValueError(f"{layout.stack_meta}: the encoder {self.stack['encoder']!r} is not the one the stack "
                             "was fitted with (its weights or tokenizer changed); fit the stack again")
        self._members: dict[str, dict] = {}
        self._runs: dict[str, tuple] = {}
        self._folds: list[tuple] | None = None
        self.cache_root: Path | None = None  # set to cache the features of the texts it scores (evaluate does)

    def run_member(self, name: str):
        """(network, tokenizer, metadata) of a further run of the stack, found beside this run, loaded once; its
        weights must be those the stack was fitted with."""
        if name not in self._runs:
            info = self.stack["runs"][name]
            self._runs[name] = self.load_checked(self.folder.parent.parent / info["run_id"], info["weights_sha256"],
                                                 f"member {name}")
        return self._runs[name]

    def load_checked(self, member: Path, sha: str, what: str):
        """(network, tokenizer, metadata) of a run the stack uses, refused unless its weights are those the stack
        was fitted with."""
        weights = RunLayout(member).weights
        if not weights.is_file() or sha256_of(weights) != sha:
            raise ValueError(f"{member}: the stack's {what} is missing or its weights changed since the stack was "
                             "fitted; fit the stack again")
        read_finished(member)  # every file that decides its predictions, against its own manifest
        return load_member(self.folder.parent, member, self.labels)

    def fold_networks(self) -> list[tuple]:
        """The cross-fit ensemble's networks (config `stack_network_folds`), loaded once; each one's weights must
        be those the stack was fitted with."""
        if self._folds is None:
            info = self.stack["network_folds"]
            root = self.folder.parent / info["folder"]
            self._folds = [self.load_checked(root / name, sha, "fold network")
                           for name, sha in zip(info["runs"], info["weights_sha256"])]
        return self._folds

    def language(self, lang: str | None) -> str | None:
        if lang is None and len(self.languages) == 1:
            return self.languages[0]
        if lang is None:
            raise ValueError(f"this run stacks per language ({', '.join(self.languages)}): give the texts' language "
                             "(lang=... or --lang)")
        return lang

    def members(self, lang: str) -> dict:
        """The saved members of `lang`, loaded once."""
        if lang not in self._members:
            from safetensors.numpy import load_file

            out = {}
            path = self.folder / f"features_lr-{lang}.safetensors"
            if path.is_file():
                out["features_lr"] = load_file(str(path))
            if (self.folder / f"{BASELINE}-{lang}").is_dir():
                out[BASELINE] = B.SavedBaseline(self.folder / f"{BASELINE}-{lang}")
            self._members[lang] = out
        return self._members[lang]

    def thresholds_for(self, lang: str | None) -> np.ndarray:
        """The per-label thresholds (run label order) fitted for `lang`; the network's own for another language."""
        lang = self.language(lang)
        out = np.asarray(self.meta["thresholds"], dtype=float).copy()
        if lang in self.stack["languages"]:
            f = self.stack["languages"][lang]
            out[[self.labels.index(lab) for lab in f["labels"]]] = f["thresholds"]
        return out

    def member_proba(self, texts: Sequence[str], lang: str, batch_size: int = 64, progress: bool = False,
                     weighted_only: bool = False) -> dict[str, np.ndarray]:
        """Each member's probabilities over `lang`'s labels (in that language's label order); with
        `weighted_only`, only the members of non-zero weight (the encoder runs only if one of them reads it)."""
        f = self.stack["languages"][lang]
        cols = [self.labels.index(lab) for lab in f["labels"]]
        names = [n for n in f["members"] if f["weights"][n] > 0 or not weighted_only]
        reads = "features_lr" in names or ("network" in names and self.stack["network_block"] is not None)
        feats = self.features(texts, self.cache_root, batch_size, progress) if reads else None
        saved, out = self.members(lang), {}
        for name in names:
            if name == "network" and self.stack.get("network_folds"):
                out[name] = folds_proba(self.fold_networks(), texts, lang, batch_size)[:, cols]
            elif name == "network":
                out[name] = network_proba(self.network, self.tokenizer, self.meta, texts, feats,
                                          self.stack["network_block"], lang, batch_size)[:, cols]
            elif name == "features_lr":
                out[name] = sigmoid(feats @ saved[name]["coef"].T + saved[name]["intercept"])
            elif name in self.stack.get("runs", {}):
                net, tok, meta = self.run_member(name)
                out[name] = network_proba(net, tok, meta, texts, None, None, lang, batch_size)[:, cols]
            else:
                out[name] = saved[name].predict_proba(texts)
        return out

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False,
                      lang: str | None = None) -> np.ndarray:
        lang, texts = self.language(lang), list(texts)
        if lang not in self.stack["languages"]:
            return predict_proba(self.network, self.tokenizer, texts, self.meta["max_length"], batch_size,
                                 precision=self.meta.get("mixed_precision", "no"), progress=progress,
                                 langs=[lang] * len(texts))
        return self.mix(self.member_proba(texts, lang, batch_size, progress, weighted_only=True), lang)

    def mix(self, probs: dict[str, np.ndarray], lang: str) -> np.ndarray:
        """The weighted sum of members' probabilities of `lang`, in the run's label order (0 for labels it lacks)."""
        f = self.stack["languages"][lang]
        out = np.zeros((len(next(iter(probs.values()))), len(self.labels)), dtype=np.float32)
        out[:, [self.labels.index(lab) for lab in f["labels"]]] = sum(f["weights"][n] * probs[n] for n in probs)
        return out
