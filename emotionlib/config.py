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
from typing import Any, Mapping

import yaml

from emotionlib.runs import atomic_write_text, claim_run_dir



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
PATH_FIELDS = ("data_dir", "train_csv", "dev_csv", "test_csv")
CASE_STUDY = "I can't believe how happy I feel!"
RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._=-]{0,127}")  # one safe path component
MIN_LENGTH = 8


def _f(default: Any, help: str):
    """A config field with its help text, the one place it is written."""
    return field(default=default, metadata={"help": help})


class ConfigError(ValueError):
    """A profile, override or field value that cannot make a valid run configuration."""


@dataclass(frozen=True)
class Config:
    """Every setting of a run, each with its help (`emotionlib profiles --fields`, `emotionlib train --help`)."""

    profile: str = _f("quick", "the profile (configs/<name>.yaml) the other fields came from")
    run_id: str = _f("", "the run's folder name under runs_dir; empty: <profile>-<timestamp>")
    runs_dir: str = _f("runs", "where run folders go")
    data_dir: str = _f("", "the BRIGHTER files; empty: $EMOTIONLIB_DATA_DIR, then the cache, then the pinned download")
    train_csv: str = _f("", "your own data instead of BRIGHTER: a train CSV (or a folder with train.csv, dev.csv, "
                            "test.csv) with id, text and 0/1 label columns")
    dev_csv: str = _f("", "your own dev CSV (with train_csv)")
    test_csv: str = _f("", "your own test CSV (with train_csv)")
    data_name: str = _f("custom", "the name `languages` takes for your own data set")
    labels: tuple[str, ...] = _f((), "your own data's label columns; empty: every column but id, text and "
                                     "ignore_columns")
    ignore_columns: tuple[str, ...] = _f((), "columns of your own data that are neither text nor labels")
    languages: tuple[str, ...] = _f(("eng",), "BRIGHTER language codes to train on, or all")
    eval_languages: tuple[str, ...] = _f((), "languages to score; empty: the training languages (others are "
                                             "scored zero-shot)")
    multilingual: str = _f("joint", "joint: one model on all languages; per_language: one run per language")
    holdout_languages: tuple[str, ...] = _f((), "cross-lingual runs: each is held out of a run "
                                                "<run_id>-without-<lang> and scored on zero-shot")
    model: str = _f("xlm-roberta-base", "the encoder: xlm-roberta-base, minilm, mpnet, me5-small, embeddinggemma, "
                                        "tiny-xlmr, tiny-gemma, a folder or a Hugging Face id")
    head: str = _f("linear", "linear: the seed's one layer on the pooled encoder output; auto: the encoder's own "
                             "sequence-classification head")
    pooling: str = _f("cls", "what the linear head reads: the first token (cls, the seed's) or the mean of the "
                             "tokens (mean)")
    head_per_language: str = _f("none", "parts of the linear head per training language, trained jointly with "
                                        "the shared head: none, bias (each language's own label priors) or head "
                                        "(its own linear layer too); other languages get the shared head")
    language_temperature: float = _f(1.0, "language-balanced sampling in a joint run: an epoch draws each "
                                          "language's rows in proportion to n ** (1 / T); 1: every row once, "
                                          "larger evens the languages out")
    freeze_layers: int = _f(0, "0 fine-tunes every weight; k freezes the embeddings and the lowest k layers; -1 "
                               "freezes the whole encoder (features computed once and cached, the head alone trains)")
    stack: tuple[str, ...] = _f((), "per-language stacking after training, members among network, features_lr, "
                                    "tfidf_lr; weights and thresholds fitted per language on its validation part; "
                                    "empty: none")
    stack_runs: tuple[str, ...] = _f((), "further networks in the stack, each a run of this config with some "
                                         "fields changed, as space-separated key=value (e.g. 'seed=43' or 'model=minilm "
                                         "learning_rate=1e-4'); trained beside this run as <run_id>-m1, -m2, ...")
    feature_model: str = _f("", "the encoder whose frozen layers the features_lr member reads (e.g. embeddinggemma, "
                                "with its own classification prompt); empty: the run's model")
    feature_layers: tuple[int, ...] = _f((-1,), "the features_lr member's encoder layers, mean-pooled side by side "
                                                "(0 the embeddings, -1 the last)")
    stack_folds: int = _f(5, "cross-fitting folds of the validation part (the stack's out-of-sample figure)")
    stack_min_val: int = _f(100, "a language with fewer validation rows gets equal weights and thresholds 0.5")
    teacher: str = _f("", "distillation: the run whose probabilities on the training texts this network learns "
                          "beside the gold labels: a run folder, or profile:<name> (a run of that profile on this "
                          "run's data and split, trained first as <run_id>-teacher); empty: none")
    distill_weight: float = _f(0.5, "distillation: the teacher's share of each training target (the gold label "
                                    "has the rest)")
    distill_folds: int = _f(5, "distillation: folds of the training part over which a stacked teacher's fitted "
                               "members (logistic regression, TF-IDF) are refitted, to score its rows out of fold")
    augment: str = _f("none", "offline augmentation of the training part: none, eda (random swap, deletion, "
                              "insertion of words) or neighbours (words replaced by nearest neighbours in the "
                              "encoder's input embeddings)")
    augment_strength: float = _f(0.1, "the share of a text's words an augmentation changes (at least one)")
    augment_labels: tuple[str, ...] = _f((), "augment the rows carrying one of these labels; empty: every row")
    augment_copies: int = _f(1, "augmented rows per source row")
    max_length: int = _f(128, "tokens per text, the special tokens included")
    pad_to_max_length: bool = _f(False, "pad every text to max_length (the seed's); dynamic padding otherwise")
    group_by_length: bool = _f(False, "batch texts of similar length together (less padding)")
    max_train_rows: int = _f(0, "at most this many training rows per language; 0: all")
    val_fraction: float = _f(0.2, "the validation part of each training file (iterative stratification)")
    split_seed: int = _f(42, "the split's own seed: runs of several seeds share one validation part")
    loss: str = _f("bce", "bce or focal")
    focal_alpha: float = _f(1.0, "focal loss alpha")
    focal_gamma: float = _f(2.0, "focal loss gamma")
    pos_weight: bool = _f(False, "BCE positive-class weights, negatives/positives per label")
    loss_weighting: str = _f("none", "per-label loss weights (mean 1): static from the effective number of positives "
                                     "(Cui et al., 2019) or dynamic from each epoch's validation F1 (Sinha et al., "
                                     "2020)")
    class_balance_beta: float = _f(0.999, "beta of the static weights")
    difficulty_tau: float = _f(1.0, "tau of the dynamic weights, (1 - F1)^tau")
    learning_rate: float = _f(2e-5, "AdamW learning rate")
    weight_decay: float = _f(0.01, "AdamW weight decay")
    batch_size: int = _f(16, "training texts per step")
    eval_batch_size: int = _f(64, "texts per forward pass when predicting")
    epochs: int = _f(3, "at most this many epochs")
    patience: int = _f(2, "epochs without validation macro-F1 gain before stopping (counted once an epoch beats the "
                          "all-negative predictor); 0 disables")
    warmup_ratio: float = _f(0.0, "the share of steps the learning rate warms up over")
    lr_schedule: str = _f("linear", "linear warm-up then linear decay, cosine decay, or constant after warm-up")
    ema_decay: float = _f(0.0, "validate and keep an exponential moving average of the weights with this decay "
                                "per step (warmed up as min(decay, (1+t)/(10+t))); 0: the weights themselves")
    layer_lr_decay: float = _f(1.0, "layer-wise learning-rate decay: each encoder layer learns at the rate of the "
                                    "layer above times this (the embeddings lowest); 1: one rate for all")
    max_grad_norm: float = _f(1.0, "gradient clipping norm")
    checkpoint_every: int = _f(0, "optimiser steps between mid-epoch checkpoints; 0: epoch ends only")
    mixed_precision: str = _f("no", "no, fp16, bf16, or auto: bf16 where the GPU or CPU computes it natively "
                                    "(oneDNN), else fp32")
    num_threads: int = _f(0, "torch threads; 0: torch's default")
    torch_compile: bool = _f(False, "compile the training steps with torch.compile (inductor; one encoder layer "
                             "compiled and reused for every layer, dynamic shapes); compilation counts in the "
                             "training time")
    seed: int = _f(42, "the training seed")
    n_bootstrap: int = _f(1000, "bootstrap resamples of each scored set's 95% interval")
    lime_num_samples: int = _f(1000, "LIME perturbations per explanation")
    lime_num_features: int = _f(10, "LIME tokens shown per emotion (the seed's top 10)")
    lime_backend: str = _f("torch", "what scores LIME's perturbations: torch, or onnx (the run's network exported "
                                    "to ONNX with ONNX Runtime's fusions; probabilities within 1e-4 of PyTorch's)")
    agreement_sentences: int = _f(20, "sentences of the LIME-attention agreement")
    case_study: str = _f(CASE_STUDY, "the sentence the report explains")
    case_study_label: str = _f("joy", "the label whose LIME ranking of case_study_word the report states")
    case_study_word: str = _f("happy", "the word whose LIME rank the report states")

    def __post_init__(self) -> None:
        self._normalise()
        self._check_data()
        for name, ok, why in RULES:
            if not ok(self):
                self._fail(name, why)

    def _fail(self, name: str, why: str) -> None:
        raise ConfigError(f"config field {name!r}: {why} (got {getattr(self, name)!r})")

    def _normalise(self) -> None:
        """Lists from a comma-separated string, whole layer numbers, absolute data paths."""
        for name in LIST_FIELDS:
            value = getattr(self, name)
            if isinstance(value, (str, int)):
                value = tuple(v.strip() for v in str(value).split(",") if v.strip())
            object.__setattr__(self, name, tuple(str(v) for v in value))
        try:
            object.__setattr__(self, "feature_layers", tuple(int(v) for v in self.feature_layers))
        except ValueError:
            self._fail("feature_layers", "whole numbers: encoder layers (0 the embeddings, -1 the last)")
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


LIST_FIELDS = ("languages", "eval_languages", "holdout_languages", "labels", "ignore_columns", "stack", "feature_layers",
               "augment_labels", "stack_runs")
# what a stack's further runs may not change: they share this run's data, split and labels, and have no stack
MEMBER_FIXED = ("run_id", "runs_dir", "data_dir", "train_csv", "dev_csv", "test_csv", "data_name", "labels",
                "ignore_columns", "languages", "eval_languages", "holdout_languages", "multilingual", "max_train_rows",
                "val_fraction", "split_seed", "stack", "stack_runs", "stack_folds", "stack_min_val", "feature_layers",
                "feature_model", "teacher", "distill_weight", "distill_folds")
POSITIVE = ("max_length", "batch_size", "eval_batch_size", "epochs", "lime_num_samples", "lime_num_features",
            "agreement_sentences", "augment_copies")
NON_NEGATIVE = ("max_train_rows", "patience", "checkpoint_every", "num_threads", "stack_min_val")
INT_LIMIT = 2**31 - 1  # every whole-number field: larger values are typos, and overflow torch and numpy later
CHOICES = {"head": HEADS, "pooling": ("cls", "mean"), "loss": LOSSES, "loss_weighting": LOSS_WEIGHTINGS,
           "multilingual": MULTILINGUAL_MODES, "lr_schedule": ("linear", "cosine", "constant"), "mixed_precision": PRECISIONS,
           "augment": ("none", "eda", "neighbours"), "head_per_language": ("none", "bias", "head"),
           "lime_backend": ("torch", "onnx")}
# Every allowed-value check of a Config, in the order they run: (field, test, why it failed)
RULES = (
    ("feature_layers", lambda c: c.feature_layers and len(set(c.feature_layers)) == len(c.feature_layers),
     "at least one layer, none twice"),
    ("stack", lambda c: not set(c.stack) - set(STACK_MEMBERS) and len(set(c.stack)) == len(c.stack),
     f"members among {STACK_MEMBERS}, each once (empty: no stack)"),
    ("stack_folds", lambda c: c.stack_folds >= 2, "must be at least 2"),
    ("stack_runs", lambda c: not c.stack_runs or bool(c.stack), "further runs are members of a stack: set `stack` too"),
    ("stack_runs", lambda c: all(_member_error(e) is None for e in c.stack_runs),
     "each entry space-separated key=value of config fields other than " + ", ".join(MEMBER_FIXED)),
    ("teacher", lambda c: not c.teacher.startswith("profile:") or bool(c.teacher[len("profile:"):].strip()),
     "profile:<name> names a profile (e.g. profile:best-stack)"),
    ("teacher", lambda c: not c.teacher or not (c.stack or c.holdout_languages or c.augment != "none"),
     "a distilled network is one network on the training texts: no stack, held-out languages or augmentation"),
    ("teacher", lambda c: not c.teacher or c.multilingual == "joint",
     "distillation trains one student on the run's languages: multilingual must be joint"),
    ("distill_weight", lambda c: 0 <= c.distill_weight <= 1, "must lie in [0, 1] (the teacher's share)"),
    ("distill_folds", lambda c: c.distill_folds >= 2, "must be at least 2"),
    ("augment_strength", lambda c: 0 < c.augment_strength <= 1, "must lie in (0, 1]"),
    ("augment_labels", lambda c: not set(c.augment_labels) - set(LABELS_KNOWN) or bool(c.train_csv),
     f"BRIGHTER labels among {LABELS_KNOWN}"),
    ("labels", lambda c: len(set(c.labels)) == len(c.labels), "a label is named twice"),
    ("labels", lambda c: not set(c.labels) & {"id", "text"}, "'id' and 'text' are the id and text columns, not labels"),
    ("languages", lambda c: bool(c.languages), "at least one language, or 'all'"),
    ("runs_dir", lambda c: bool(c.runs_dir.strip()),
     "must name a folder (empty would write runs into the current directory)"),
    *((name, lambda c, name=name, ok=ok: getattr(c, name) in ok, f"must be one of {ok}") for name, ok in CHOICES.items()),
    ("pooling", lambda c: not (c.pooling == "mean" and c.head == "auto"),
     "mean pooling is for head: linear (the encoder's own head reads the first token)"),
    ("head_per_language", lambda c: c.head_per_language == "none" or c.head == "linear",
     "parts per language extend the seed's linear head: set head=linear"),
    ("head_per_language", lambda c: c.head_per_language == "none" or (
        not c.train_csv and (c.languages == ("all",) or len(c.languages) > 1)),
     "parts per language need several BRIGHTER training languages"),
    ("language_temperature", lambda c: c.language_temperature >= 1, "must be >= 1 (1: every row once per epoch)"),
    ("language_temperature", lambda c: c.language_temperature == 1 or (
        not c.train_csv and (c.languages == ("all",) or len(c.languages) > 1)),
     "language-balanced sampling needs several BRIGHTER training languages"),
    ("case_study", lambda c: bool(c.case_study.strip()), "must be a non-empty sentence"),
    ("class_balance_beta", lambda c: 0 < c.class_balance_beta < 1, "must lie strictly between 0 and 1"),
    ("difficulty_tau", lambda c: c.difficulty_tau >= 0, "must be >= 0"),
    ("freeze_layers", lambda c: c.freeze_layers >= -1, "must be -1 (the whole encoder), 0 (none) or a number of layers"),
    ("freeze_layers", lambda c: not (c.freeze_layers == -1 and c.head != "linear"),
     "the frozen-encoder mode (-1) trains the seed's linear head: set head=linear"),
    ("val_fraction", lambda c: 0 < c.val_fraction < 1, "must lie strictly between 0 and 1"),
    ("warmup_ratio", lambda c: 0 <= c.warmup_ratio < 1, "must lie in [0, 1)"),
    ("layer_lr_decay", lambda c: 0 < c.layer_lr_decay <= 1, "must lie in (0, 1]"),
    ("ema_decay", lambda c: 0 <= c.ema_decay < 1, "must lie in [0, 1) (0: no moving average)"),
    *((name, lambda c, name=name: getattr(c, name) >= 1, "must be a positive integer") for name in POSITIVE),
    *((name, lambda c, name=name: getattr(c, name) >= 0, "must be >= 0") for name in NON_NEGATIVE),
    ("learning_rate", lambda c: c.learning_rate > 0, "must be positive"),
    ("seed", lambda c: 0 <= c.seed <= INT_LIMIT, f"must be from 0 to {INT_LIMIT}"),
    ("split_seed", lambda c: 0 <= c.split_seed <= INT_LIMIT, f"must be from 0 to {INT_LIMIT}"),
    ("n_bootstrap", lambda c: c.n_bootstrap >= 40, "must be at least 40 (with fewer, a 2.5% tail of the 95% interval holds no resample)"),
    ("focal_gamma", lambda c: c.focal_gamma >= 0, "gamma >= 0 and alpha > 0"),
    ("focal_alpha", lambda c: c.focal_alpha > 0, "gamma >= 0 and alpha > 0"),
    ("run_id", lambda c: not c.run_id or RUN_ID.fullmatch(c.run_id),
     "one folder name of at most 128 letters, digits, '.', '_', '=', '-', beginning with a letter, digit or '_' "
     "(so never '.', '..' or a hidden name)"),
    ("max_length", lambda c: c.max_length >= MIN_LENGTH,
     f"must be at least {MIN_LENGTH}: two of its positions go to the special tokens, and below that the model would "
     "see almost none of the text (below 3 the tokenizer cannot truncate at all)"),
)
FIELDS = tuple(f.name for f in fields(Config))
_TYPES = {f.name: f.type for f in fields(Config)}


def _coerce(key: str, value: Any) -> Any:
    """Turn a YAML or command-line value into the field's type, with an error that names the field."""
    if key not in _TYPES:
        raise ConfigError(f"unknown config field {key!r}; known fields: {', '.join(FIELDS)}")
    kind = _TYPES[key]
    try:
        if kind == "bool":
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if kind in ("int", "float") and isinstance(value, bool):
            raise ValueError(value)  # YAML's true/false are not numbers
        if kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            if not -INT_LIMIT <= (number := int(value)) <= INT_LIMIT:
                raise ConfigError(f"config field {key!r}: {value!r} is out of range (at most {INT_LIMIT})")
            return number
        if kind == "float":
            if not math.isfinite(number := float(value)):
                raise ValueError(value)
            return number
        if kind.startswith("tuple"):
            if isinstance(value, str):
                value = parse_yaml(value, f"config field {key!r}") if value.startswith("[") else value.split(",")
            if not isinstance(value, (list, tuple)):
                raise ValueError(value)
            return tuple(str(v).strip() for v in value if str(v).strip())
        return "" if value is None else str(value)
    except ConfigError:
        raise
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"config field {key!r}: cannot read {value!r} as {kind}") from None


def read_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (byte {exc.start})") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml's safe loader, refusing a mapping that names a key twice (where the last one would win silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice",
                                                            key_node.start_mark)
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


def member_configs(cfg: "Config") -> list[tuple[str, "Config"]]:
    """The further networks of cfg's stack: (member name, its run's config), named network-m1, network-m2, ..."""
    return [(f"network-m{i}", cfg.replace(run_id=f"{cfg.run_id}-m{i}", stack=[], stack_runs=[],
                                          **member_overrides(entry)))
            for i, entry in enumerate(cfg.stack_runs, start=1)]


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
    """The Config that a notebook's papermill parameters describe.

    The notebook's `parameters` cell names every config field; `None` means "as the profile says".
    """
    values = {k: namespace[k] for k in FIELDS if k in namespace}
    if all(values.get(k) is not None for k in FIELDS):  # a whole config (as `report` passes it): no profile to read
        return load_config(values)
    overrides = {k: v for k, v in values.items() if k != "profile"}
    return load_config(namespace.get("profile") or "quick", overrides)


def save_config(cfg: Config, path: Path) -> None:
    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True))


# fields that say where things are or how fast to run, not what the run computes
LOCATION_FIELDS = ("profile", "runs_dir", "data_dir", "num_threads")


def differing_fields(recorded: Config, given: Config) -> dict[str, tuple[Any, Any]]:
    a, b = recorded.to_dict(), given.to_dict()
    return {k: (a[k], b[k]) for k in FIELDS if k not in LOCATION_FIELDS and a[k] != b[k]}


def check_config(cfg: Config, run_dir: Path) -> bool:
    """True when the run exists with these settings, False when it does not exist; other settings are refused."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return False
    diff = differing_fields(read_config(run_dir), cfg)
    if diff:
        names = "; ".join(f"{k}: {old!r} in the run, {new!r} given" for k, (old, new) in diff.items())
        raise ConfigError(f"{run_dir}: this run was made with other settings ({names}); choose another run_id "
                          "or drop the differing overrides")
    return True


def claim_config(cfg: Config, run_dir: Path) -> None:
    """Write the run's config.yaml once; a later step with other settings is refused, the fields named."""
    if not check_config(cfg, run_dir):
        claim_run_dir(run_dir)  # a folder emotionlib did not make is refused here
        save_config(cfg, Path(run_dir) / "config.yaml")


def read_config(run_dir: Path) -> Config:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no config in this run directory (run the data or train step first)")
    data = parse_yaml(read_text(path), path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a run's config must be a mapping of config fields")
    return load_config(data)


def config_of_run(run_dir: str | Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """A run's own settings, found where the run is now (moved, copied or reached through a link); overrides
    may change where and how fast it runs, not what it computes."""
    run_dir = Path(run_dir).resolve()  # a link's own name is not the run's id
    recorded = read_config(run_dir)
    cfg = load_config(recorded.to_dict() | {"runs_dir": str(run_dir.parent), "run_id": run_dir.name}
                      | dict(overrides or {}))
    check_config(cfg, run_dir)
    return cfg
