"""Distillation: a student network learns a teacher's probabilities on the training texts beside the gold labels.

Each training target is `distill_weight * teacher + (1 - distill_weight) * gold`, per label; BCE takes such soft
targets as they are. Validation, early stopping and the thresholds stay on the gold labels of the validation part.

A teacher scored on its own training texts is over-confident there. Where that can be undone cheaply it is: a
per-language stack's logistic-regression and TF-IDF members are refitted on k-1 folds of the training part and score
the held-out fold (out of fold). A network (the stack's, or a whole run's) scores its training texts in sample:
re-training it k times is the cost not paid. `teacher.json` in the student's run says which, per language.

With `augment`, the augmented copies of the training texts are more texts for the teacher to teach: their targets
are the teacher's probabilities alone (the label a copy inherits from its source is a guess), and a stack's refitted
members score each copy with the fold model that did not see its source.

The teacher is a finished run on the same split (its training rows never include the student's validation rows),
or `profile:<name>`: a run of that profile on the student's data and split, `<run_id>-teacher`, which the run graph
(`graph.needs`) trains before the student; here it is only read.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from emotionlib import data as D

from emotionlib import dataset as DS
from emotionlib import graph as G
from emotionlib.config import Config, ConfigError
from emotionlib.runs import RunLayout, atomic_path, read_json, sha256_of, write_json

log = logging.getLogger(__name__)


def check_teacher(run: Path, val_parts: Sequence[D.LangSplit], labels: Sequence[str]) -> dict:
    """The teacher must be a finished run whose labels hold the student's, and none of the student's validation
    rows may be among its training rows (they would leak its fit into the student's early stopping and
    thresholds). Returns its metadata."""
    from emotionlib.metadata import read_finished

    if not RunLayout(run).metadata.is_file():
        raise ConfigError(
            f"config field 'teacher': {run} is not a trained emotionlib run (no model/metadata.json); "
            "a profile's teacher is trained before its student by `python -m emotionlib distill` or "
            "`make report` (build.build)"
        )
    meta = read_finished(run)
    missing = [lab for lab in labels if lab not in meta["labels"]]
    if missing:
        raise ConfigError(f"config field 'teacher': {run} has no label {', '.join(missing)} of this run")
    split = RunLayout(run).split
    if not split.is_file():
        raise ConfigError(f"config field 'teacher': {run} has no data/split.json; distil from a run on the same split")
    langs = read_json(split)["languages"]
    for va in val_parts:
        if va.lang not in langs:
            raise ConfigError(f"config field 'teacher': {run} was not trained on {va.lang}")
        leaked = set(va.ids) - set(langs[va.lang]["val_ids"])
        if leaked:
            raise ConfigError(
                f"config field 'teacher': {run} trained on {len(leaked)} of this run's {va.lang} "
                f"validation rows (e.g. id {sorted(leaked)[0]!r}); give it the same split "
                "(split_seed, val_fraction, data)"
            )
    return meta


def sources(ids: Sequence[str]) -> np.ndarray:
    """For each row, the index of the row it was made from: itself for an original row, its source for an augmented
    copy (`<source id>-aug<k>`, as `augment.augment_part` names them)."""
    index = {i: n for n, i in enumerate(ids)}
    out = np.arange(len(ids))
    for n, i in enumerate(ids):
        head, sep, k = i.rpartition("-aug")
        if sep and k.isdigit() and head in index:
            out[n] = index[head]
    return out


def stack_out_of_fold(stack, part: D.LangSplit, folds: int, seed: int) -> tuple[np.ndarray, dict]:
    """A language stack's probabilities (run label order) on its own training texts of one language: its
    logistic-regression and TF-IDF members refitted on k-1 folds of the original rows and scored on the held-out
    ones and their augmented copies, its networks in sample; and, per member, which."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    from emotionlib import baseline as B
    from emotionlib.combine.weights import BASELINE
    from emotionlib.combine.langstack import sigmoid
    from emotionlib.combine.stack_fit import SMALL_C, fit_features_lr

    lang, texts = part.lang, list(part.texts)
    fitted = stack.stack["languages"][lang]
    probs = stack.member_proba(texts, lang, weighted_only=True)
    source = sources(part.ids)
    originals = np.flatnonzero(source == np.arange(len(source)))
    y = part.y[:, [part.labels.index(lab) for lab in fitted["labels"]]]
    refit = [n for n in probs if n in ("features_lr", BASELINE)]
    feats = stack.features(texts, stack.cache_root) if "features_lr" in refit else None
    for fit_at, held_at in MultilabelStratifiedKFold(folds, shuffle=True, random_state=seed).split(
        y[originals], y[originals]
    ):
        fit_rows = originals[fit_at]
        held = np.flatnonzero(np.isin(source, originals[held_at]))  # the held-out rows and their copies
        if "features_lr" in refit:
            c = fitted["features_lr_c"] or SMALL_C  # a stack too small to choose C used this one
            coef, intercept = fit_features_lr(feats[fit_rows], y[fit_rows], [c], seed)[c]
            probs["features_lr"][held] = sigmoid(feats[held] @ coef.T + intercept)
        if BASELINE in refit:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a fold without a label's positives predicts it constant 0
                pipe = B.make_pipeline(seed).fit([texts[i] for i in fit_rows], y[fit_rows])
            probs[BASELINE][held] = pipe.predict_proba([texts[i] for i in held])
    how = {n: f"out of fold ({folds} folds)" if n in refit else "in sample" for n in probs}
    return stack.mix(probs, lang), how


def teacher_proba(
    run: Path, parts: Sequence[D.LangSplit], labels: Sequence[str], folds: int, seed: int
) -> tuple[np.ndarray, dict]:
    """The teacher's probabilities on the rows of `parts` (in order), columns in `labels` order; and per language,
    how each member scored them."""
    from emotionlib.classifier import Classifier

    clf = Classifier(run)
    stack = clf.model if hasattr(clf.model, "member_proba") else None
    if stack is not None:
        stack.cache_root = D.cache_dir() / "features"
    cols = [clf.labels.index(lab) for lab in labels]
    out, how = [], {}
    for part in parts:
        log.info(f"distillation: the teacher scores {len(part)} {part.lang} training texts")
        if stack is not None and part.lang in stack.stack["languages"]:
            p, how[part.lang] = stack_out_of_fold(stack, part, folds, seed)
        else:
            p = clf.predict_proba(
                list(part.texts), lang=part.lang if getattr(clf.model, "by_language", False) else None
            )
            how[part.lang] = {"network": "in sample"}
        out.append(np.asarray(p, dtype=np.float32)[:, cols])
    return np.concatenate(out), how


def targets(
    cfg: Config,
    layout: RunLayout,
    train_parts: Sequence[D.LangSplit],
    val_parts: Sequence[D.LangSplit],
    train_ex: DS.Examples,
) -> np.ndarray:
    """The student's training targets (rows and labels of `train_ex`): the teacher's probabilities mixed with the
    gold labels, 0 where a label is masked. The teacher's probabilities are kept in the run
    (teacher_targets.safetensors, with teacher.json) and reused while the teacher's weights are the same."""
    from safetensors.numpy import load_file, save_file

    run = G.teacher_dir(cfg)
    meta = check_teacher(run, val_parts, train_ex.labels)
    weights = sha256_of(RunLayout(run).weights)
    record = {
        "teacher": str(run),
        "teacher_weights_sha256": weights,
        "teacher_labels": list(meta["labels"]),
        "labels": list(train_ex.labels),
        "ids": list(train_ex.ids),
        "folds": cfg.distill_folds,
        "seed": cfg.seed,
        "texts_sha256": hashlib.sha256("\n".join(t for p in train_parts for t in p.texts).encode("utf-8")).hexdigest(),
    }  # copies change with augment
    stored = read_json(layout.teacher) if layout.teacher.is_file() and layout.teacher_targets.is_file() else None
    if stored and {k: stored.get(k) for k in record} == record:
        probs = load_file(str(layout.teacher_targets))["probs"]
    else:
        probs, how = teacher_proba(run, train_parts, train_ex.labels, cfg.distill_folds, cfg.seed)
        with atomic_path(layout.teacher_targets) as tmp:
            save_file({"probs": np.ascontiguousarray(probs)}, str(tmp))  # safetensors writes C order
        write_json(layout.teacher, record | {"scored": how, "distill_weight": cfg.distill_weight})
    copy = (sources(train_ex.ids) != np.arange(len(train_ex.ids)))[:, None]  # augmented rows learn the teacher alone
    weight = np.where(copy, 1.0, cfg.distill_weight)
    return ((weight * probs + (1 - weight) * train_ex.y) * train_ex.mask).astype(np.float32)


def _transfer_targets(
    cfg: Config, layout: RunLayout, run: Path, texts, record: dict, lang: str, labels, precision: str
) -> np.ndarray:
    """The teacher's probabilities of the transfer texts: kept in the run while `record` (teacher weights, texts,
    labels, precision) is the same, else scored again and kept."""
    from safetensors.numpy import load_file, save_file

    stored = read_json(layout.transfer) if layout.transfer.is_file() and layout.transfer_targets.is_file() else None
    if stored and {k: stored.get(k) for k in record} == record:
        probs = load_file(str(layout.transfer_targets))["probs"]
    else:
        log.info(f"distillation: the teacher scores {len(texts.texts):,} transfer texts ({texts.name})")
        probs = score_texts(run, list(texts.texts), lang, labels, precision)
        with atomic_path(layout.transfer_targets) as tmp:
            save_file({"probs": np.ascontiguousarray(probs)}, str(tmp))
        write_json(
            layout.transfer,
            record
            | {
                "dropped_as_validation": texts.dropped_as_validation,
                "max_rows": cfg.transfer_max_rows,
                "sample_seed": cfg.split_seed,
            },
        )
    return probs


def transfer_examples(
    cfg: Config, layout: RunLayout, train_ex: DS.Examples, val_parts: Sequence[D.LangSplit]
) -> DS.Examples | None:
    """The transfer texts (config `transfer_texts`) as training rows whose targets are the teacher's probabilities
    alone (None without them). The teacher scores them once: its probabilities are kept in the run
    (transfer_targets.safetensors, with transfer.json) and reused while the teacher's weights, the texts and the
    labels are the same; a stacked teacher's frozen features of them are cached by text as every feature pass is,
    so an interrupted scoring resumes. Its features are computed in the CPU's fastest precision (bf16 where native:
    the texts only teach, and 43,000 of them are the long part)."""
    from emotionlib.hardware import resolve_precision
    from emotionlib.transfer import read_transfer

    if not cfg.transfer_texts:
        return None
    run = G.teacher_dir(cfg)
    texts = read_transfer(
        cfg.transfer_texts,
        cfg.data_dir,
        cfg.transfer_max_rows,
        cfg.split_seed,
        exclude=[t for p in val_parts for t in p.texts],
    )
    lang = train_ex.langs[0]
    precision = resolve_precision("auto")
    record = {
        "teacher": str(run),
        "teacher_weights_sha256": sha256_of(RunLayout(run).weights),
        "transfer_texts": texts.name,
        "file_sha256": texts.sha256,
        "texts_sha256": texts.texts_sha256,
        "rows": len(texts.texts),
        "labels": list(train_ex.labels),
        "lang": lang,
        "feature_precision": precision,
    }
    probs = _transfer_targets(cfg, layout, run, texts, record, lang, train_ex.labels, precision)
    mask = np.tile(train_ex.mask[0], (len(texts.texts), 1))  # the language's labels
    return DS.Examples(
        [f"transfer-{i}" for i in texts.ids],
        list(texts.texts),
        [lang] * len(texts.texts),
        (probs * mask).astype(np.float32),
        mask,
        train_ex.labels,
    )


def score_texts(run: Path, texts: list[str], lang: str, labels: Sequence[str], precision: str) -> np.ndarray:
    """The teacher's probabilities of `texts` of `lang`, columns in `labels` order; a stacked teacher reads its
    frozen features in `precision` (cached by text)."""
    from emotionlib.classifier import Classifier

    clf = Classifier(run)
    stack = clf.model if hasattr(clf.model, "member_proba") else None
    if stack is not None:
        stack.cache_root = D.cache_dir() / "features"
        stack.features = stack.features.in_precision(precision)
    # progress: a stacked teacher's feature pass over tens of thousands of texts logs its rate and the time left
    p = clf.predict_proba(texts, progress=True, lang=lang if getattr(clf.model, "by_language", False) else None)
    return np.asarray(p, dtype=np.float32)[:, [clf.labels.index(lab) for lab in labels]]


def concat(a: DS.Examples, b: DS.Examples | None) -> DS.Examples:
    """a's rows, then b's (same labels)."""
    if b is None:
        return a
    return DS.Examples(
        a.ids + b.ids,
        a.texts + b.texts,
        a.langs + b.langs,
        np.concatenate([a.y, b.y]),
        np.concatenate([a.mask, b.mask]),
        a.labels,
    )
