"""The one run configuration: a frozen dataclass loaded from YAML profiles plus key=value overrides.

Its fields are the papermill parameters of the notebooks, one to one.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, get_args, get_origin, get_type_hints

import yaml


def shipped(name: str, repo_folder: str) -> Path:
    """A folder the wheel ships as `emotionlib/<name>/` (pyproject maps the repository's top-level folder there);
    in a checkout, the top-level folder itself."""
    installed = Path(__file__).resolve().parent / name
    return installed if installed.is_dir() else Path(__file__).resolve().parent.parent / repo_folder


PROFILES_DIR = shipped("profiles", "configs")
LOSSES = ("bce", "focal")
LOSS_WEIGHTINGS = ("none", "static", "dynamic")
MULTILINGUAL_MODES = ("joint", "per_language")
PRECISIONS = ("no", "fp16", "bf16", "auto")
HEADS = ("linear", "auto")
STACK_MEMBERS = ("network", "features_lr", "tfidf_lr")
LABELS_KNOWN = ("anger", "disgust", "fear", "joy", "sadness", "surprise")  # BRIGHTER's (data.LABELS)
CASE_STUDY = "I can't believe how happy I feel!"
RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._=-]{0,127}")  # one safe path component
MIN_LENGTH = 8


# The groups a field belongs to, by concern. Which fields a derived run shares or may change, which may differ when a
# run is continued, which are paths: each is a union of groups (below the class), never a list kept by hand.
RUN = "run"  # which run this is and where its folder goes
SOURCE = "source"  # where the BRIGHTER files are read from (checked by their checksums, so not part of the result)
FILES = "files"  # your own data's files
DATA = "data"  # which rows, languages and labels
RUNS = "runs"  # how the run is divided into runs (per language, held-out languages)
SPLIT = "split"  # the validation part and the k-fold folds of the training part
MODEL = "model"  # the encoder and the head on it
TRAINING = "training"  # the recipe: seed, sampling, augmentation, loss, optimiser, schedule, precision
MACHINE = "machine"  # how it runs on this machine, not what it computes
DISTILL = "distill"  # a teacher's probabilities as training targets
STACK = "stack"  # the per-language stack fitted after training
EVALUATION = "evaluation"  # scoring and interpretation
GROUPS = (RUN, SOURCE, FILES, DATA, RUNS, SPLIT, MODEL, TRAINING, MACHINE, DISTILL, STACK, EVALUATION)


def _f(group: str, default: Any, help: str, *rules: tuple[Callable[[Any, "Config"], Any], str]):
    """A config field: its group, its default, its help and the rules its value must keep, side by side. A rule is
    (test of the value and the whole config, what is wrong when it fails); a Literal field's values are a rule of
    their own."""
    if group not in GROUPS:
        raise ValueError(f"unknown config group {group!r}")
    return field(default=default, metadata={"group": group, "help": help, "rules": rules})


def _several_brighter_languages(c: "Config") -> bool:
    return not c.train_csv and (c.languages == ("all",) or len(c.languages) > 1)


INT_LIMIT = 2**31 - 1  # every whole-number field: larger values are typos, and overflow torch and numpy later
AT_LEAST_1 = (lambda v, c: v >= 1, "must be a positive integer")
AT_LEAST_0 = (lambda v, c: v >= 0, "must be >= 0")


class ConfigError(ValueError):
    """A profile, override or field value that cannot make a valid run configuration."""


@dataclass(frozen=True)
class Config:
    """Every setting of a run, each with its help (`emotionlib profiles --fields`, `emotionlib train --help`)."""

    # --- the run ------------------------------------------------------------------------------------------------------
    profile: str = _f(RUN, "quick", "the profile (configs/<name>.yaml) the other fields came from")
    run_id: str = _f(
        RUN,
        "",
        "the run's folder name under runs_dir; empty: <profile>-<timestamp>",
        (
            lambda v, c: not v or RUN_ID.fullmatch(v),
            "one folder name of at most 128 letters, digits, "
            "'.', '_', '=', '-', beginning with a letter, digit "
            "or '_' (so never '.', '..' or a hidden name)",
        ),
    )
    runs_dir: str = _f(
        RUN,
        "runs",
        "where run folders go",
        (lambda v, c: bool(v.strip()), "must name a folder (empty would write runs into the current directory)"),
    )
    # --- data: the files, the languages, the validation part ----------------------------------------------------------
    data_dir: str = _f(
        SOURCE, "", "the BRIGHTER files; empty: $EMOTIONLIB_DATA_DIR, then the cache, then the pinned download"
    )
    train_csv: str = _f(
        FILES,
        "",
        "your own data instead of BRIGHTER: a train CSV (or a folder with train.csv, dev.csv, "
        "test.csv) with id, text and 0/1 label columns",
    )
    dev_csv: str = _f(FILES, "", "your own dev CSV (with train_csv)")
    test_csv: str = _f(FILES, "", "your own test CSV (with train_csv)")
    data_name: str = _f(DATA, "custom", "the name `languages` takes for your own data set")
    labels: tuple[str, ...] = _f(
        DATA,
        (),
        "your own data's label columns; empty: every column but id, text and ignore_columns",
        (lambda v, c: len(set(v)) == len(v), "a label is named twice"),
        (lambda v, c: not set(v) & {"id", "text"}, "'id' and 'text' are the id and text columns, not labels"),
    )
    ignore_columns: tuple[str, ...] = _f(DATA, (), "columns of your own data that are neither text nor labels")
    languages: tuple[str, ...] = _f(
        DATA,
        ("eng",),
        "BRIGHTER language codes to train on, or all",
        (lambda v, c: bool(v), "at least one language, or 'all'"),
    )
    eval_languages: tuple[str, ...] = _f(
        DATA, (), "languages to score; empty: the training languages (others are scored zero-shot)"
    )
    multilingual: Literal["joint", "per_language"] = _f(
        RUNS, "joint", "joint: one model on all languages; per_language: one run per language"
    )
    holdout_languages: tuple[str, ...] = _f(
        RUNS, (), "cross-lingual runs: each is held out of a run <run_id>-without-<lang> and scored on zero-shot"
    )
    max_train_rows: int = _f(DATA, 0, "at most this many training rows per language; 0: all", AT_LEAST_0)
    val_fraction: float = _f(
        SPLIT,
        0.2,
        "the validation part of each training file (iterative stratification)",
        (lambda v, c: 0 < v < 1, "must lie strictly between 0 and 1"),
    )
    split_seed: int = _f(
        SPLIT,
        42,
        "the split's own seed: runs of several seeds share one validation part",
        (lambda v, c: 0 <= v <= INT_LIMIT, f"must be from 0 to {INT_LIMIT}"),
    )
    cv_folds: int = _f(
        SPLIT,
        0,
        "k-fold estimates over the training part (`python -m emotionlib kfold`): the training "
        "part split into this many folds (multi-label stratified, split_seed), fold cv_fold held out "
        "of training; 0: off (the whole training part trains)",
        (lambda v, c: v == 0 or 2 <= v <= 20, "0 (off) or from 2 to 20 folds"),
    )
    cv_fold: int = _f(
        SPLIT,
        0,
        "with cv_folds: the fold of the training part held out of training (0 to cv_folds - 1)",
        (lambda v, c: 0 <= v < max(c.cv_folds, 1), "must be from 0 to cv_folds - 1 (0 when cv_folds is 0)"),
    )
    # --- model: the encoder and the head on it ------------------------------------------------------------------------
    model: str = _f(
        MODEL,
        "xlm-roberta-base",
        "the encoder: xlm-roberta-base, minilm, mpnet, me5-small, embeddinggemma, "
        "tiny-xlmr, tiny-gemma, a folder or a Hugging Face id",
    )
    head: Literal["linear", "auto"] = _f(
        MODEL,
        "linear",
        "linear: the seed's one layer on the pooled encoder output; auto: "
        "the encoder's own sequence-classification head",
    )
    pooling: Literal["cls", "mean"] = _f(
        MODEL,
        "cls",
        "what the linear head reads: the first token (cls, the seed's) or the mean of the tokens (mean)",
        (
            lambda v, c: not (v == "mean" and c.head == "auto"),
            "mean pooling is for head: linear (the encoder's own head reads the first token)",
        ),
    )
    head_per_language: Literal["none", "bias", "head"] = _f(
        MODEL,
        "none",
        "parts of the linear head per training language, trained jointly with the shared head: none, bias "
        "(each language's own label priors) or head (its own linear layer too); other languages get the "
        "shared head",
        (
            lambda v, c: v == "none" or c.head == "linear",
            "parts per language extend the seed's linear head: set head=linear",
        ),
        (
            lambda v, c: v == "none" or _several_brighter_languages(c),
            "parts per language need several BRIGHTER training languages",
        ),
    )
    freeze_layers: int = _f(
        MODEL,
        0,
        "0 fine-tunes every weight; k freezes the embeddings and the lowest k layers; -1 "
        "freezes the whole encoder (features computed once and cached, the head alone trains)",
        (lambda v, c: v >= -1, "must be -1 (the whole encoder), 0 (none) or a number of layers"),
        (
            lambda v, c: not (v == -1 and c.head != "linear"),
            "the frozen-encoder mode (-1) trains the seed's linear head: set head=linear",
        ),
    )
    freeze_word_embeddings: bool = _f(
        MODEL,
        False,
        "keep the encoder's token embedding table as pretrained (no gradient "
        "or optimiser state for it: half of MiniLM's weights)",
    )
    max_length: int = _f(
        MODEL,
        128,
        "tokens per text, the special tokens included",
        AT_LEAST_1,
        (
            lambda v, c: v >= MIN_LENGTH,
            f"must be at least {MIN_LENGTH}: two of its positions go to the special tokens, and below "
            "that the model would see almost none of the text (below 3 the tokenizer cannot truncate "
            "at all)",
        ),
    )
    pad_to_max_length: bool = _f(MODEL, False, "pad every text to max_length (the seed's); dynamic padding otherwise")
    # --- training -----------------------------------------------------------------------------------------------------
    seed: int = _f(
        TRAINING, 42, "the training seed", (lambda v, c: 0 <= v <= INT_LIMIT, f"must be from 0 to {INT_LIMIT}")
    )
    language_temperature: float = _f(
        TRAINING,
        1.0,
        "language-balanced sampling in a joint run: an epoch draws each language's "
        "rows in proportion to n ** (1 / T); 1: every row once, larger evens the "
        "languages out",
        (lambda v, c: v >= 1, "must be >= 1 (1: every row once per epoch)"),
        (
            lambda v, c: v == 1 or _several_brighter_languages(c),
            "language-balanced sampling needs several BRIGHTER training languages",
        ),
    )
    group_by_length: bool = _f(TRAINING, False, "batch texts of similar length together (less padding)")
    augment: Literal["none", "eda", "neighbours"] = _f(
        TRAINING,
        "none",
        "offline augmentation of the training part: none, eda (random swap, deletion, insertion of words) or "
        "neighbours (words replaced by nearest neighbours in the encoder's input embeddings)",
    )
    augment_strength: float = _f(
        TRAINING,
        0.1,
        "the share of a text's words an augmentation changes (at least one)",
        (lambda v, c: 0 < v <= 1, "must lie in (0, 1]"),
    )
    augment_labels: tuple[str, ...] = _f(
        TRAINING,
        (),
        "augment the rows carrying one of these labels; empty: every row",
        (lambda v, c: not set(v) - set(LABELS_KNOWN) or bool(c.train_csv), f"BRIGHTER labels among {LABELS_KNOWN}"),
    )
    augment_copies: int = _f(TRAINING, 1, "augmented rows per source row", AT_LEAST_1)
    loss: Literal["bce", "focal"] = _f(TRAINING, "bce", "bce or focal")
    focal_alpha: float = _f(TRAINING, 1.0, "focal loss alpha", (lambda v, c: v > 0, "gamma >= 0 and alpha > 0"))
    focal_gamma: float = _f(TRAINING, 2.0, "focal loss gamma", (lambda v, c: v >= 0, "gamma >= 0 and alpha > 0"))
    pos_weight: bool = _f(TRAINING, False, "BCE positive-class weights, negatives/positives per label")
    loss_weighting: Literal["none", "static", "dynamic"] = _f(
        TRAINING,
        "none",
        "per-label loss weights (mean 1): static from the effective number of positives (Cui et al., 2019) or "
        "dynamic from each epoch's validation F1 (Sinha et al., 2020)",
    )
    class_balance_beta: float = _f(
        TRAINING, 0.999, "beta of the static weights", (lambda v, c: 0 < v < 1, "must lie strictly between 0 and 1")
    )
    difficulty_tau: float = _f(
        TRAINING, 1.0, "tau of the dynamic weights, (1 - F1)^tau", (lambda v, c: v >= 0, "must be >= 0")
    )
    learning_rate: float = _f(TRAINING, 2e-5, "AdamW learning rate", (lambda v, c: v > 0, "must be positive"))
    weight_decay: float = _f(TRAINING, 0.01, "AdamW weight decay")
    batch_size: int = _f(TRAINING, 16, "training texts per step", AT_LEAST_1)
    eval_batch_size: int = _f(TRAINING, 64, "texts per forward pass when predicting", AT_LEAST_1)
    epochs: int = _f(TRAINING, 3, "at most this many epochs", AT_LEAST_1)
    patience: int = _f(
        TRAINING,
        2,
        "epochs without validation macro-F1 gain before stopping (counted once an epoch beats the "
        "all-negative predictor); 0 disables",
        AT_LEAST_0,
    )
    warmup_ratio: float = _f(
        TRAINING,
        0.0,
        "the share of steps the learning rate warms up over",
        (lambda v, c: 0 <= v < 1, "must lie in [0, 1)"),
    )
    lr_schedule: Literal["linear", "cosine", "constant"] = _f(
        TRAINING, "linear", "linear warm-up then linear decay, cosine decay, or constant after warm-up"
    )
    ema_decay: float = _f(
        TRAINING,
        0.0,
        "validate and keep an exponential moving average of the weights with this decay per "
        "step (warmed up as min(decay, (1+t)/(10+t))); 0: the weights themselves",
        (lambda v, c: 0 <= v < 1, "must lie in [0, 1) (0: no moving average)"),
    )
    layer_lr_decay: float = _f(
        TRAINING,
        1.0,
        "layer-wise learning-rate decay: each encoder layer learns at the rate of the "
        "layer above times this (the embeddings lowest); 1: one rate for all",
        (lambda v, c: 0 < v <= 1, "must lie in (0, 1]"),
    )
    max_grad_norm: float = _f(TRAINING, 1.0, "gradient clipping norm")
    checkpoint_every: int = _f(
        TRAINING, 0, "optimiser steps between mid-epoch checkpoints; 0: epoch ends only", AT_LEAST_0
    )
    mixed_precision: Literal["no", "fp16", "bf16", "auto"] = _f(
        TRAINING, "no", "no, fp16, bf16, or auto: bf16 where the GPU or CPU computes it natively (oneDNN), else fp32"
    )
    num_threads: int = _f(
        MACHINE,
        0,
        "torch threads; 0: the cores other work leaves free, decided again while training (hardware.ThreadGovernor)",
        AT_LEAST_0,
    )
    torch_compile: bool = _f(
        TRAINING,
        False,
        "compile the training steps with torch.compile (inductor; one encoder layer "
        "compiled and reused for every layer, dynamic shapes); compilation counts in the "
        "training time",
    )
    # --- distillation: a teacher's probabilities as training targets --------------------------------------------------
    teacher: str = _f(
        DISTILL,
        "",
        "distillation: the run whose probabilities on the training texts this network learns beside "
        "the gold labels: a run folder, or profile:<name> (a run of that profile on this run's data "
        "and split, trained first as <run_id>-teacher); empty: none",
        (
            lambda v, c: not v.startswith("profile:") or bool(v[len("profile:") :].strip()),
            "profile:<name> names a profile (e.g. profile:best-stack)",
        ),
        (
            lambda v, c: not v or not (c.stack or c.holdout_languages),
            "a distilled network is one network on the training texts: no stack or held-out languages "
            "(with augment, the copies learn the teacher's probabilities alone)",
        ),
        (
            lambda v, c: not v or c.multilingual == "joint",
            "distillation trains one student on the run's languages: multilingual must be joint",
        ),
    )
    distill_weight: float = _f(
        DISTILL,
        0.5,
        "distillation: the teacher's share of each training target (the gold label has the rest)",
        (lambda v, c: 0 <= v <= 1, "must lie in [0, 1] (the teacher's share)"),
    )
    distill_folds: int = _f(
        DISTILL,
        5,
        "distillation: folds of the training part over which a stacked teacher's fitted "
        "members (logistic regression, TF-IDF) are refitted, to score its rows out of fold",
        (lambda v, c: v >= 2, "must be at least 2"),
    )
    transfer_texts: str = _f(
        DISTILL,
        "",
        "distillation: unlabelled texts the teacher labels for the student beside the "
        "training part: 'goemotions' (43,410 English Reddit comments, pinned and checksum-checked) "
        "or a CSV with id and text columns; empty: none",
        (lambda v, c: not v or bool(c.teacher), "transfer texts are for a teacher to label: set `teacher` too"),
        (
            lambda v, c: not v or (len(c.languages) == 1 and c.languages != ("all",)),
            "transfer texts are of one language: train on one language",
        ),
        (
            lambda v, c: v != "goemotions" or c.languages == ("eng",) or bool(c.train_csv),
            "GoEmotions' texts are English: train on eng (or your own English data)",
        ),
    )
    transfer_max_rows: int = _f(
        DISTILL,
        0,
        "distillation: at most this many transfer texts (a sample drawn with split_seed); 0: all",
        AT_LEAST_0,
    )
    # --- combining: the per-language stack fitted after training ------------------------------------------------------
    stack: tuple[str, ...] = _f(
        STACK,
        (),
        "per-language stacking after training, members among network, features_lr, "
        "tfidf_lr; weights and thresholds fitted per language on its validation part; "
        "empty: none",
        (
            lambda v, c: not set(v) - set(STACK_MEMBERS) and len(set(v)) == len(v),
            f"members among {STACK_MEMBERS}, each once (empty: no stack)",
        ),
    )
    stack_runs: tuple[str, ...] = _f(
        STACK,
        (),
        "further networks in the stack, each a run of this config with some fields "
        "changed, as space-separated key=value (e.g. 'seed=43' or 'model=minilm "
        "learning_rate=1e-4'); trained beside this run as <run_id>-m1, -m2, ...",
        (lambda v, c: not v or bool(c.stack), "further runs are members of a stack: set `stack` too"),
        (
            lambda v, c: all(_member_error(e) is None for e in v),
            "each entry space-separated key=value of config fields a further run may "
            "change: none of the groups run, source, files, data, runs, split, stack and "
            "distill (config.MEMBER_FIXED)",
        ),
    )
    stack_network_folds: int = _f(
        STACK,
        0,
        "the stack's network member: 0, this run's network; k >= 2, the mean of k "
        "networks of this config, each trained on the training part without one of k "
        "folds (a cross-fit ensemble, trained as `emotionlib kfold` trains them, under "
        "runs/<run_id>/network-folds/)",
        (lambda v, c: v == 0 or v >= 2, "must be 0 (this run's network) or at least 2"),
        (
            lambda v, c: not v or "network" in c.stack,
            "the fold networks are the stack's network member: put network in `stack`",
        ),
        (
            lambda v, c: not v or c.multilingual == "joint",
            "the fold networks are joint ones: set multilingual: joint",
        ),
    )
    feature_model: str = _f(
        STACK,
        "",
        "the encoder whose frozen layers the features_lr member reads (e.g. embeddinggemma, "
        "with its own classification prompt); empty: the run's model",
    )
    feature_layers: tuple[int, ...] = _f(
        STACK,
        (-1,),
        "the features_lr member's encoder layers, mean-pooled side by side (0 the embeddings, -1 the last)",
        (lambda v, c: v and len(set(v)) == len(v), "at least one layer, none twice"),
    )
    feature_precision: Literal["no", "bf16", "int8", "auto"] = _f(
        STACK,
        "no",
        "the stack's frozen-feature pass: no (fp32); bf16; int8 (dynamic int8 linear layers); auto (bf16 where "
        "the CPU multiplies it natively). fp32 by default: EmbeddingGemma's bf16 features ran 2.6x faster but "
        "cost the English stack 0.5-1.0 points of cross-fitted validation (docs/results.md)",
    )
    stack_folds: int = _f(
        STACK,
        5,
        "cross-fitting folds of the validation part (the stack's out-of-sample figure)",
        (lambda v, c: v >= 2, "must be at least 2"),
    )
    stack_min_val: int = _f(
        STACK, 100, "a language with fewer validation rows gets equal weights and thresholds 0.5", AT_LEAST_0
    )
    # --- evaluation and interpretation --------------------------------------------------------------------------------
    n_bootstrap: int = _f(
        EVALUATION,
        1000,
        "bootstrap resamples of each scored set's 95% interval",
        (
            lambda v, c: v >= 40,
            "must be at least 40 (with fewer, a 2.5% tail of the 95% interval holds no resample)",
        ),
    )
    lime_num_samples: int = _f(EVALUATION, 1000, "LIME perturbations per explanation", AT_LEAST_1)
    lime_num_features: int = _f(EVALUATION, 10, "LIME tokens shown per emotion (the seed's top 10)", AT_LEAST_1)
    lime_backend: Literal["torch", "onnx"] = _f(
        EVALUATION,
        "torch",
        "what scores LIME's perturbations: torch, or onnx (the run's "
        "network exported to ONNX with ONNX Runtime's fusions; "
        "probabilities within 1e-4 of PyTorch's)",
    )
    agreement_sentences: int = _f(EVALUATION, 20, "sentences of the LIME-attention agreement", AT_LEAST_1)
    case_study: str = _f(
        EVALUATION,
        CASE_STUDY,
        "the sentence the report explains",
        (lambda v, c: bool(v.strip()), "must be a non-empty sentence"),
    )
    case_study_label: str = _f(EVALUATION, "joy", "the label whose LIME ranking of case_study_word the report states")
    case_study_word: str = _f(EVALUATION, "happy", "the word whose LIME rank the report states")

    def __post_init__(self) -> None:
        self._normalise()
        self._check_data()
        for f in fields(self):
            value = getattr(self, f.name)
            allowed = get_args(_TYPES[f.name]) if get_origin(_TYPES[f.name]) is Literal else ()
            if allowed and value not in allowed:
                self._fail(f.name, f"must be one of {allowed}")
            for test, why in f.metadata["rules"]:
                if not test(value, self):
                    self._fail(f.name, why)

    def _fail(self, name: str, why: str) -> None:
        raise ConfigError(f"config field {name!r}: {why} (got {getattr(self, name)!r})")

    def _normalise(self) -> None:
        """Lists from a comma-separated string, whole layer numbers, absolute data paths."""
        for name in LIST_FIELDS:
            value = getattr(self, name)
            if isinstance(value, (str, int)):
                value = tuple(v.strip() for v in str(value).split(",") if v.strip())
            object.__setattr__(self, name, tuple(str(v) for v in value))
        for name in LIST_FIELDS:
            if get_args(_TYPES[name])[0] is int:
                try:
                    object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
                except ValueError:
                    self._fail(name, "whole numbers: encoder layers (0 the embeddings, -1 the last)")
        for name in ("train_csv", "dev_csv", "test_csv"):
            if getattr(self, name):  # absolute, so that notebooks executed elsewhere find the same files
                object.__setattr__(self, name, str(Path(getattr(self, name)).expanduser().resolve()))

    def _check_data(self) -> None:
        """Your own data (train_csv) or BRIGHTER's: the fields that belong to the one and not the other."""
        if self.train_csv:
            if not re.fullmatch(r"[A-Za-z0-9_-]+", self.data_name):
                self._fail("data_name", "letters, digits, '_', '-' only")
            for name in ("eval_languages", "holdout_languages"):
                if getattr(self, name):
                    self._fail(name, "zero-shot languages are for the BRIGHTER data, not with train_csv")
            object.__setattr__(self, "languages", (self.data_name,))
        else:
            for name in ("dev_csv", "test_csv", "labels", "ignore_columns"):
                if getattr(self, name):
                    self._fail(name, "only used with your own data (set train_csv)")

    @property
    def own_data(self) -> bool:
        """True when the run trains on your own CSV files rather than the BRIGHTER data."""
        return bool(self.train_csv)

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.run_id

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def replace(self, **changes: Any) -> "Config":
        return load_config(self.to_dict() | changes)


def field_help() -> str:
    """One line per config field, `name = default: help`, from the fields' own help (for --help and profiles)."""
    return "\n".join(f"  {f.name} = {f.default!r}: {f.metadata['help']}" for f in fields(Config))


def field_table() -> str:
    """The fields as a Markdown table by group (docs/usage.md holds it; `python -m emotionlib profiles --fields
    --markdown` prints it), from the fields' own group, default and help."""
    rows = ["| group | field | default | what it sets |", "|---|---|---|---|"]
    for group in GROUPS:
        for f in fields(Config):
            if f.metadata["group"] == group:
                default = list(f.default) if isinstance(f.default, tuple) else f.default
                text = f.metadata["help"].replace("|", "\\|")
                rows.append(f"| {group} | `{f.name}` | `{default!r}` | {text} |")
    return "\n".join(rows) + "\n"


FIELDS = tuple(f.name for f in fields(Config))


def fields_of(*groups: str) -> tuple[str, ...]:
    """The fields of these groups, in the class's order."""
    return tuple(f.name for f in fields(Config) if f.metadata["group"] in groups)


PATH_FIELDS = fields_of(SOURCE, FILES)  # a profile's relative paths are relative to the profile's folder
STACK_FIELDS = fields_of(STACK)
# what may differ between a run's recorded settings and those it is continued or evaluated with
LOCATION_FIELDS = fields_of(RUN, SOURCE, MACHINE)
# what a stack's further runs may not change: they share this run's data, split and labels, and have no stack
MEMBER_FIXED = fields_of(RUN, SOURCE, FILES, DATA, RUNS, SPLIT, STACK, DISTILL)
_TYPES = get_type_hints(Config)  # the real types, Literal values included
LIST_FIELDS = tuple(k for k, t in _TYPES.items() if get_origin(t) is tuple)


def _type_name(kind: Any) -> str:
    return "a list" if get_origin(kind) is tuple else "text" if get_origin(kind) is Literal else kind.__name__


def _coerce(key: str, value: Any) -> Any:
    """Turn a YAML or command-line value into the field's type, with an error that names the field. A Literal
    field is read as text here; its allowed values are checked with its other rules."""
    if key not in _TYPES:
        raise ConfigError(f"unknown config field {key!r}; known fields: {', '.join(FIELDS)}")
    kind = _TYPES[key]
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if kind in (int, float) and isinstance(value, bool):
            raise ValueError(value)  # YAML's true/false are not numbers
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            if not -INT_LIMIT <= (number := int(value)) <= INT_LIMIT:
                raise ConfigError(f"config field {key!r}: {value!r} is out of range (at most {INT_LIMIT})")
            return number
        if kind is float:
            if not math.isfinite(number := float(value)):
                raise ValueError(value)
            return number
        if get_origin(kind) is tuple:
            if isinstance(value, str):
                value = parse_yaml(value, f"config field {key!r}") if value.startswith("[") else value.split(",")
            if not isinstance(value, (list, tuple)):
                raise ValueError(value)
            if any(isinstance(v, (list, tuple, dict, set)) or v is None or isinstance(v, bool) for v in value):
                raise ConfigError(
                    f"config field {key!r}: a list of plain values (names or numbers), not nested "
                    f"lists, mappings, booleans or nulls (got {value!r:.80})"
                )
            items = tuple(str(v).strip() for v in value if str(v).strip())
            if len(set(items)) != len(items):
                twice = next(v for v in items if items.count(v) > 1)
                raise ConfigError(f"config field {key!r}: {twice!r} is given twice (got {list(items)!r:.80})")
            return items
        if isinstance(value, (list, tuple, dict, set)):
            raise ValueError(value)  # a text field takes one value, not a structure
        return "" if value is None else str(value)
    except ConfigError:
        raise
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"config field {key!r}: cannot read {value!r} as {_type_name(kind)}") from None


def read_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (byte {exc.start})") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml's safe loader, refusing a mapping that names a key twice (where the last one would win silently) and
    every alias (`*name`): a config needs none, and nested aliases grow exponentially ("billion laughs")."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"an alias (*{event.anchor}) is not allowed in a config", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} is given twice", key_node.start_mark
                    )
                seen.add(key)
            except TypeError:  # an unhashable key: the base class refuses it with its own message
                pass
        return super().construct_mapping(node, deep)


def parse_yaml(text: str, where: str | Path) -> Any:
    """YAML with a one-line error naming where it came from and the line: never a yaml traceback."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = " ".join((getattr(exc, "problem", None) or str(exc)).split())
        raise ConfigError(f"{where}: {at}not valid YAML ({problem})") from None
    except RecursionError:
        raise ConfigError(f"{where}: not valid YAML (nested too deeply)") from None


def member_overrides(entry: str) -> dict[str, Any]:
    """One `stack_runs` entry ('seed=43 model=minilm') as coerced field values."""
    pairs = parse_overrides(entry.split())
    if not pairs:
        raise ConfigError(f"stack_runs entry {entry!r} changes nothing")
    for key in pairs:
        if key in MEMBER_FIXED:
            raise ConfigError(f"stack_runs entry {entry!r}: {key!r} is shared with the run it extends")
    return {k: _coerce(k, v) for k, v in pairs.items()}


def _member_error(entry: str) -> str | None:
    try:
        member_overrides(entry)
    except ConfigError as exc:
        return str(exc)
    return None


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """`["epochs=4", "loss=focal"]` -> {"epochs": "4", "loss": "focal"} (coerced later)."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"override {pair!r} is not of the form key=value")
        out[key.strip()] = value.strip()
    return out


def profile_summary(path: Path) -> tuple[str, str, str]:
    """(name, 'profile' or 'sweep', the first line of its leading comment) of a YAML file of configs/."""
    text = read_text(path)
    first = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")), "")
    data = parse_yaml(text, path) or {}
    return path.stem, "sweep" if isinstance(data, dict) and "grids" in data else "profile", first


def load_profile(profile: str) -> dict[str, Any]:
    """Read `configs/<profile>.yaml` (or a YAML path) as a dict."""
    path = Path(profile)
    if not path.suffix:
        path = PROFILES_DIR / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
        raise ConfigError(f"no profile {profile!r} ({path}); known profiles: {', '.join(known)}")
    data = parse_yaml(read_text(path), path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a profile must be a mapping of config fields")
    for key in PATH_FIELDS:  # a profile's relative data paths are relative to the profile's own folder
        if data.get(key) and not Path(str(data[key])).expanduser().is_absolute():
            data[key] = str(path.resolve().parent / str(data[key]))
    data.setdefault("profile", path.stem)
    return data


def load_config(profile: str | Mapping[str, Any] = "quick", overrides: Mapping[str, Any] | None = None) -> Config:
    """A validated Config from a profile name, YAML path or mapping, then overrides on top."""
    values = dict(profile) if isinstance(profile, Mapping) else load_profile(profile)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    values = {k: _coerce(k, v) for k, v in values.items()}
    if not values.get("run_id"):
        values["run_id"] = f"{values.get('profile', 'run')}-{time.strftime('%Y%m%d-%H%M%S')}"
    return Config(**values)


def from_parameters(namespace: Mapping[str, Any]) -> Config:
    """The Config that notebook 01's papermill parameters describe: `profile`, `run_id`, `runs_dir` and a dict
    `overrides` of any other fields (a whole config, as `report` passes it, needs no profile)."""
    values = dict(namespace.get("overrides") or {})
    if unknown := sorted(set(values) - set(FIELDS)):
        raise ConfigError(f"notebook parameter 'overrides': unknown config field(s) {', '.join(unknown)}")
    values |= {k: namespace[k] for k in ("run_id", "runs_dir") if namespace.get(k) is not None}
    if set(values) >= set(FIELDS) - {"profile"}:  # a whole config: no profile to read
        return load_config(values | {"profile": namespace.get("profile") or values.get("profile") or "quick"})
    return load_config(namespace.get("profile") or "quick", {k: v for k, v in values.items() if k != "profile"})
