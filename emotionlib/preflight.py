"""Every setting a run needs, checked before its first write: languages, data, encoder, lengths, layers."""

from __future__ import annotations

import collections
import csv
import math
from pathlib import Path

from emotionlib import data as D
from emotionlib.split import check_splittable, prepare_data
from emotionlib import graph as G
from emotionlib.config import Config, ConfigError
from emotionlib.run_config import check_config
from emotionlib.encoders import resolve_encoder
from emotionlib.runs import NotOurs, RunLayout, kind_of, read_json


MIN_VAL_ROWS = 10  # below this, "tuned" thresholds are fitted on a handful of rows


def check(cfg: Config, members: bool = True) -> Path:
    """Fail, with what to fix, before any file is written; return the encoder's folder. With `members`, the
    stack's further runs and the held-out runs are checked too (their settings and their folders)."""
    if cfg.multilingual == "per_language" and len(D.train_languages(cfg)) > 1:
        raise ValueError(
            "multilingual=per_language trains one run per language: use build.build() or "
            "`python -m emotionlib train`, or give one language"
        )
    D.train_languages(cfg), D.eval_languages(cfg)  # unknown codes fail here
    source = D.source_for(cfg)
    for lang in D.train_languages(cfg):
        # BRIGHTER files are checked against their manifest; your own are read (and their size checked against
        # the split) now, so that a bad row is named before a run folder exists
        if cfg.own_data:
            check_splittable(source.load("train", lang), cfg.val_fraction)
        else:
            source.path("train", lang)
    encoder_dir = check_encoder(cfg)
    if cfg.mixed_precision == "fp16" and not cuda_available():
        raise ConfigError(
            "config field 'mixed_precision': fp16 needs a CUDA GPU (a CPU would train in fp32 while "
            "the run recorded fp16); on a CPU use bf16 or auto (got 'fp16')"
        )
    labels = label_space(cfg, source)
    if cfg.case_study_label not in labels:
        raise ConfigError(
            f"config field 'case_study_label': {cfg.case_study_label!r} is not a label of this run's "
            f"data ({', '.join(labels)})"
        )
    if cfg.own_data:
        check_own_data(cfg, source)
    if cfg.transfer_texts:  # found (or downloaded), checksum-checked and every row read before anything is written
        from emotionlib.transfer import read_transfer

        read_transfer(cfg.transfer_texts, cfg.data_dir, cfg.transfer_max_rows, cfg.split_seed)
    if members:
        check_members(cfg)
    return encoder_dir


def check_encoder(cfg: Config) -> Path:
    """The encoder is there and holds the run's settings: its positions, its layers, the features' layers."""
    encoder_dir = resolve_encoder(cfg.model)
    config = read_json(Path(encoder_dir) / "config.json")
    positions = encoder_positions(config)
    if cfg.max_length > positions:
        raise ConfigError(
            f"config field 'max_length': {cfg.max_length} exceeds the {positions} positions of "
            f"encoder {cfg.model!r}"
        )
    layers = config.get("num_hidden_layers")
    if layers is not None and cfg.freeze_layers > layers:
        raise ConfigError(
            f"config field 'freeze_layers': {cfg.freeze_layers} exceeds the {layers} layers of "
            f"encoder {cfg.model!r}"
        )
    if "features_lr" in cfg.stack:
        check_feature_layers(cfg, layers)
    return encoder_dir


def check_feature_layers(cfg: Config, layers: int | None) -> None:
    """The features member's layers exist in the encoder it reads (`feature_model`, else the run's model)."""
    name = cfg.feature_model or cfg.model
    if cfg.feature_model:
        try:
            layers = read_json(Path(resolve_encoder(cfg.feature_model)) / "config.json").get("num_hidden_layers")
        except RuntimeError as exc:
            raise ConfigError(f"config field 'feature_model': {exc}") from None
    if layers is not None and any(not -layers - 1 <= i <= layers for i in cfg.feature_layers):
        raise ConfigError(
            f"config field 'feature_layers': {list(cfg.feature_layers)} must each lie from "
            f"{-layers - 1} to {layers} for encoder {name!r} ({layers} layers)"
        )


def label_space(cfg: Config, source) -> list[str]:
    """The labels the run will train on: every label column of its training files (from their headers)."""
    found: dict[str, None] = {}
    for lang in D.train_languages(cfg):
        if cfg.own_data:
            found.update(dict.fromkeys(source.load("train", lang).labels))
        else:
            with open(source.path("train", lang), encoding="utf-8-sig", newline="") as f:
                header = [h.strip() for h in next(csv.reader(f), [])]
            found.update(dict.fromkeys(h for h in header if h not in ("id", "text")))
    return list(found)


def check_own_data(cfg: Config, source) -> None:
    """Your own files: a validation part large enough to tune thresholds on, dev and test files with the train
    file's labels (read now), and no dev or test id that is also a training id (a leak)."""
    train = source.load("train", cfg.data_name)
    if blank := next((n for n, t in enumerate(train.texts, start=1) if not t.strip()), None):
        raise D.DataError(
            f"{train.path}: row {blank} (id {train.ids[blank - 1]}) has an empty text; a training row needs one"
        )
    if train.y is not None:
        if never := [lab for lab, k in zip(train.labels, train.y.sum(axis=0)) if k == 0]:
            raise D.DataError(
                f"{train.path}: label column(s) {', '.join(map(repr, never))} are 0 in every row: a label "
                "never seen cannot be learnt; remove the column or list it in ignore_columns"
            )
        text, count = collections.Counter(t.strip() for t in train.texts).most_common(1)[0]
        if count > len(train) / 2:
            raise D.DataError(
                f"{train.path}: one text makes up {count} of its {len(train)} rows ({text[:40]!r}); "
                "a training file needs distinct texts"
            )
    n_val = math.ceil(len(train) * cfg.val_fraction)
    if n_val < MIN_VAL_ROWS:
        raise D.DataError(
            f"{train.path}: {len(train)} rows give a validation part of {n_val} (val_fraction "
            f"{cfg.val_fraction}); thresholds need at least {MIN_VAL_ROWS} validation rows"
        )
    train_ids = set(train.ids)
    for split in ("dev", "test"):
        if source.has(split, cfg.data_name):
            d = source.load(split, cfg.data_name)  # other label columns than train's are refused here
            if leaked := [i for i in d.ids if i in train_ids]:
                raise D.DataError(
                    f"{d.path}: {len(leaked)} id(s) also in the training file {train.path} (e.g. "
                    f"{leaked[0]!r}): a {split} row that was trained on scores nothing"
                )


def check_members(cfg: Config) -> None:
    """The runs building this run trains beside it (the run graph: stack members, held-out runs, a profile's
    teacher), before this run writes anything: each one's own settings (its encoder found), and a folder of its
    name that is not an emotionlib run of these settings is refused."""
    check_teacher_folder(cfg)
    for what, member in G.further_runs(cfg):
        try:
            check(member, members=what.startswith("config field 'teacher'"))
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"{what}: {exc}") from None
        folder = member.run_dir
        if (
            folder.is_symlink()
            or (folder.exists() and not folder.is_dir())
            or (folder.is_dir() and kind_of(folder) != "run" and any(folder.iterdir()))
        ):
            raise NotOurs(
                f"{folder}: this run would train a member run there, and it exists and was not made by "
                "emotionlib as a run; choose another run_id or move that folder"
            )
        check_config(member, folder)  # an earlier member run with other settings is refused now, not after training


def check_teacher_folder(cfg: Config) -> None:
    """A distilled run's teacher given as a folder, before anything is written: a finished run, split as this run
    will be, with every label of this run. (A profile's teacher is a run of the graph, checked as the others.)"""
    if not cfg.teacher or G.teacher_config(cfg) is not None:
        return
    folder = RunLayout(Path(cfg.teacher).expanduser())
    if not folder.metadata.is_file():
        raise ConfigError(
            f"config field 'teacher': {cfg.teacher} is not a trained emotionlib run (no "
            f"{folder.metadata.name} in its model folder); train it first, or give profile:<name>"
        )
    split = folder.split
    record = read_json(split) if split.is_file() else {}
    made = (record.get("seed"), record.get("val_fraction"))
    if made != (cfg.split_seed, cfg.val_fraction) or set(D.train_languages(cfg)) - set(record.get("languages", {})):
        raise ConfigError(
            f"config field 'teacher': {cfg.teacher} was not split as this run will be (its "
            f"{split.name}: split_seed {made[0]}, val_fraction {made[1]}, languages "
            f"{', '.join(record.get('languages', {})) or 'none'}); its training rows would include "
            "this run's validation rows. Give both the same split"
        )
    from emotionlib.metadata import read_finished

    try:
        meta = read_finished(folder.root)  # finished, and its files as training wrote them
    except ValueError as exc:
        raise ConfigError(f"config field 'teacher': {exc}") from None
    missing = [lab for lab in label_space(cfg, D.source_for(cfg)) if lab not in meta["labels"]]
    if missing:
        raise ConfigError(
            f"config field 'teacher': {cfg.teacher} has no label {', '.join(missing)} of this run "
            f"(its labels: {', '.join(meta['labels'])})"
        )


def encoder_positions(config: dict) -> int:
    """Token positions the encoder can take (RoBERTa-style models reserve padding_idx + 1 of theirs)."""
    offset = config.get("pad_token_id", 0) + 1 if config.get("model_type") in ("roberta", "xlm-roberta") else 0
    return int(config.get("max_position_embeddings", 512)) - offset


def prepare(cfg: Config) -> dict:
    """The data step (notebook 01): every setting checked, then the run's split written once."""
    check(cfg)
    return prepare_data(cfg)


def check_graph(cfg: Config) -> None:
    """The preflight of every run the graph will train: the run's own network(s), with their further runs (stack
    members, held-out runs, a profile's teacher: `preflight.check` walks them), and each k-fold estimate's folds, a
    teacher's own graph included. A bad setting anywhere is refused before the first training starts."""
    for c in G.language_configs(cfg):
        check(c)
    for step in G.needs(cfg):
        if step.kind == "kfold":
            check_estimate(step.config, step.folds)
        elif step.kind == "teacher":
            check_graph(step.config)


def check_estimate(cfg: Config, folds: int) -> None:
    """The fold runs' config, checked as training checks it (data, encoder, settings), and `folds` against the
    range and the training part's rows: before any folder exists."""
    if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= 20:
        raise ConfigError(f"--folds: from 2 to 20 folds (got {folds!r})")
    check(G.fold_config(cfg, folds, 0))
    source = D.source_for(cfg)
    rows = sum(len(source.load("train", lang).ids) for lang in D.train_languages(cfg))
    part = int(rows * (1 - cfg.val_fraction))
    if folds * 2 > part:
        raise ConfigError(
            f"--folds {folds}: the training part holds about {part} texts, too few for {folds} folds "
            "of at least two texts each"
        )


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU. Imported here, not at the top: the preflight runs before the trainer loads
    (`emotionlib train` refuses a bad setting in a second, not after importing torch), and only this check asks."""
    import torch

    return torch.cuda.is_available()
