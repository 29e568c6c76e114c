"""The one run configuration: a frozen dataclass loaded from YAML profiles plus key=value overrides.

Its fields are the papermill parameters of the notebooks, one to one.
"""
from __future__ import annotations

import dataclasses
import math
import re
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from emotionlib.runs import atomic_write_text, claim_run_dir

PROFILES_DIR = Path(__file__).resolve().parent.parent / "configs"
LOSSES = ("bce", "focal")
LOSS_WEIGHTINGS = ("none", "static", "dynamic")
MULTILINGUAL_MODES = ("joint", "per_language")
PRECISIONS = ("no", "fp16", "bf16", "auto")
HEADS = ("linear", "auto")
STACK_MEMBERS = ("network", "features_lr", "tfidf_lr")
PATH_FIELDS = ("data_dir", "train_csv", "dev_csv", "test_csv")
CASE_STUDY = "I can't believe how happy I feel!"
RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._=-]{0,127}")  # one safe path component
MIN_LENGTH = 8


class ConfigError(ValueError):
    """A profile, override or field value that cannot make a valid run configuration."""


@dataclass(frozen=True)
class Config:
    profile: str = "quick"
    run_id: str = ""  # empty: <profile>-<timestamp>
    runs_dir: str = "runs"
    data_dir: str = ""  # empty: $EMOTIONLIB_DATA_DIR, then the cache, then the pinned download
    # your own data instead of BRIGHTER: a train CSV (or a folder with train.csv, dev.csv, test.csv) with
    # id, text and 0/1 label columns; `languages` then names this one data set (data_name)
    train_csv: str = ""
    dev_csv: str = ""
    test_csv: str = ""
    data_name: str = "custom"
    labels: tuple[str, ...] = ()  # empty: every header column other than id, text and ignore_columns
    ignore_columns: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("eng",)  # or ("all",)
    eval_languages: tuple[str, ...] = ()  # empty: the training languages; others are scored zero-shot
    multilingual: str = "joint"  # joint: one model on all languages; per_language: one run per language
    # cross-lingual runs (Track C's spirit): each language here is also held out of a run `<run_id>-without-<lang>`
    # trained on the other languages and scored on it zero-shot (evaluate step; table in the report)
    holdout_languages: tuple[str, ...] = ()
    model: str = "xlm-roberta-base"
    head: str = "linear"  # linear: the seed's one layer on the raw first token; auto: the encoder's own head
    pooling: str = "cls"  # what the linear head reads: the first token (the seed's) or the mean of the tokens
    # 0 fine-tunes every weight; k freezes the embeddings and the lowest k layers (no gradient below them);
    # -1 freezes the whole encoder: each text's pooled features are computed once (and cached), then only the
    # head trains (the frozen-encoder mode, `head: linear` only)
    freeze_layers: int = 0
    # per-language stacking after training (langstack): members among network, features_lr (a logistic regression
    # per label on the mean-pooled hidden states of `feature_layers` of the pretrained encoder) and tfidf_lr,
    # combined per language with weights and thresholds fitted on that language's validation part; empty: none
    stack: tuple[str, ...] = ()
    feature_layers: tuple[int, ...] = (-1,)  # 1.. the encoder's layers, 0 its embeddings, -1 the last
    stack_folds: int = 5  # cross-fitting folds of the validation part (the stack's out-of-sample figure)
    stack_min_val: int = 100  # fewer validation rows: equal weights and thresholds 0.5 for that language
    max_length: int = 128
    pad_to_max_length: bool = False  # the seed's fixed padding; dynamic padding otherwise
    group_by_length: bool = False
    max_train_rows: int = 0  # 0: all rows (smoke runs use a slice)
    val_fraction: float = 0.2
    # the 80/20 split's own seed, apart from `seed`: runs of several seeds share one validation part, so their
    # scores compare pairwise and they can be ensembled
    split_seed: int = 42
    loss: str = "bce"
    focal_alpha: float = 1.0
    focal_gamma: float = 2.0
    pos_weight: bool = False
    # per-label loss weights (mean 1): static from each label's effective number of positives (Cui et al., 2019);
    # dynamic re-set after every epoch from the validation F1 of each label, (1 - F1)^tau (Sinha et al., 2020)
    loss_weighting: str = "none"
    class_balance_beta: float = 0.999
    difficulty_tau: float = 1.0
    learning_rate: float = 2e-5
    weight_decay: float = 0.01
    batch_size: int = 16
    eval_batch_size: int = 64
    epochs: int = 3
    # epochs without validation macro-F1 gain before stopping, counted once an epoch beats the all-negative
    # predictor (macro-F1 0: an encoder may sit there an epoch or two before it learns); 0 disables
    patience: int = 2
    warmup_ratio: float = 0.0
    lr_schedule: str = "linear"  # linear warm-up then linear decay, or constant after warm-up
    max_grad_norm: float = 1.0
    checkpoint_every: int = 0  # optimiser steps between mid-epoch checkpoints; 0: epoch ends only
    mixed_precision: str = "no"  # auto: bf16 where the GPU or CPU computes it natively (oneDNN), else fp32
    num_threads: int = 0  # 0: torch's default
    seed: int = 42
    n_bootstrap: int = 1000
    lime_num_samples: int = 1000
    lime_num_features: int = 10
    agreement_sentences: int = 20
    case_study: str = CASE_STUDY
    case_study_label: str = "joy"  # the label whose LIME ranking of case_study_word the report states
    case_study_word: str = "happy"

    def __post_init__(self) -> None:
        def fail(field: str, why: str) -> None:
            raise ConfigError(f"config field {field!r}: {why} (got {getattr(self, field)!r})")

        for name in ("languages", "eval_languages", "holdout_languages", "labels", "ignore_columns", "stack",
                     "feature_layers"):
            value = getattr(self, name)
            if isinstance(value, (str, int)):
                value = tuple(v.strip() for v in str(value).split(",") if v.strip())
            object.__setattr__(self, name, tuple(str(v) for v in value))
        try:
            object.__setattr__(self, "feature_layers", tuple(int(v) for v in self.feature_layers))
        except ValueError:
            fail("feature_layers", "whole numbers: encoder layers (0 the embeddings, -1 the last)")
        if not self.feature_layers or len(set(self.feature_layers)) != len(self.feature_layers):
            fail("feature_layers", "at least one layer, none twice")
        if set(self.stack) - set(STACK_MEMBERS) or len(set(self.stack)) != len(self.stack):
            fail("stack", f"members among {STACK_MEMBERS}, each once (empty: no stack)")
        if self.stack_folds < 2:
            fail("stack_folds", "must be at least 2")
        for name in ("train_csv", "dev_csv", "test_csv"):
            if getattr(self, name):  # absolute, so that notebooks executed elsewhere find the same files
                object.__setattr__(self, name, str(Path(getattr(self, name)).expanduser().resolve()))
        if self.train_csv:
            if not re.fullmatch(r"[A-Za-z0-9_-]+", self.data_name):
                fail("data_name", "letters, digits, '_', '-' only")
            for name in ("eval_languages", "holdout_languages"):
                if getattr(self, name):
                    fail(name, "zero-shot languages are for the BRIGHTER data, not with train_csv")
            object.__setattr__(self, "languages", (self.data_name,))
        else:
            for name in ("dev_csv", "test_csv", "labels", "ignore_columns"):
                if getattr(self, name):
                    fail(name, "only used with your own data (set train_csv)")
        if len(set(self.labels)) != len(self.labels):
            fail("labels", "a label is named twice")
        if set(self.labels) & {"id", "text"}:
            fail("labels", "'id' and 'text' are the id and text columns, not labels")
        if not self.languages:
            fail("languages", "at least one language, or 'all'")
        if not self.runs_dir.strip():
            fail("runs_dir", "must name a folder (empty would write runs into the current directory)")
        if self.head not in HEADS:
            fail("head", f"must be one of {HEADS}")
        if self.pooling not in ("cls", "mean"):
            fail("pooling", "must be 'cls' or 'mean'")
        if self.pooling == "mean" and self.head == "auto":
            fail("pooling", "mean pooling is for head: linear (the encoder's own head reads the first token)")
        if not self.case_study.strip():
            fail("case_study", "must be a non-empty sentence")
        if self.loss not in LOSSES:
            fail("loss", f"must be one of {LOSSES}")
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            fail("loss_weighting", f"must be one of {LOSS_WEIGHTINGS}")
        if not 0 < self.class_balance_beta < 1:
            fail("class_balance_beta", "must lie strictly between 0 and 1")
        if self.difficulty_tau < 0:
            fail("difficulty_tau", "must be >= 0")
        if self.multilingual not in MULTILINGUAL_MODES:
            fail("multilingual", f"must be one of {MULTILINGUAL_MODES}")
        if self.lr_schedule not in ("linear", "constant"):
            fail("lr_schedule", "must be 'linear' or 'constant'")
        if self.mixed_precision not in PRECISIONS:
            fail("mixed_precision", f"must be one of {PRECISIONS}")
        if self.freeze_layers < -1:
            fail("freeze_layers", "must be -1 (the whole encoder), 0 (none) or a number of layers")
        if self.freeze_layers == -1 and self.head != "linear":
            fail("freeze_layers", "the frozen-encoder mode (-1) trains the seed's linear head: set head=linear")
        if not 0 < self.val_fraction < 1:
            fail("val_fraction", "must lie strictly between 0 and 1")
        if not 0 <= self.warmup_ratio < 1:
            fail("warmup_ratio", "must lie in [0, 1)")
        for name in ("max_length", "batch_size", "eval_batch_size", "epochs", "lime_num_samples",
                     "lime_num_features", "agreement_sentences"):
            if getattr(self, name) < 1:
                fail(name, "must be a positive integer")
        for name in ("max_train_rows", "patience", "checkpoint_every", "num_threads", "n_bootstrap", "stack_min_val"):
            if getattr(self, name) < 0:
                fail(name, "must be >= 0")
        if self.learning_rate <= 0:
            fail("learning_rate", "must be positive")
        if self.focal_gamma < 0 or self.focal_alpha <= 0:
            fail("focal_gamma" if self.focal_gamma < 0 else "focal_alpha", "gamma >= 0 and alpha > 0")
        if self.run_id and not RUN_ID.fullmatch(self.run_id):
            fail("run_id", "one folder name of at most 128 letters, digits, '.', '_', '=', '-', beginning with a "
                           "letter, digit or '_' (so never '.', '..' or a hidden name)")
        if self.max_length < MIN_LENGTH:
            fail("max_length", f"must be at least {MIN_LENGTH}: two of its positions go to the special tokens, and "
                               "below that the model would see almost none of the text (below 3 the tokenizer "
                               "cannot truncate at all)")

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
        if kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
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


def parse_yaml(text: str, where: str | Path) -> Any:
    """YAML with a one-line error naming where it came from and the line: never a yaml traceback."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = " ".join((getattr(exc, "problem", None) or str(exc)).split())
        raise ConfigError(f"{where}: {at}not valid YAML ({problem})") from None
    except RecursionError:
        raise ConfigError(f"{where}: not valid YAML (nested too deeply)") from None


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """`["epochs=4", "loss=focal"]` -> {"epochs": "4", "loss": "focal"} (coerced later)."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"override {pair!r} is not of the form key=value")
        out[key.strip()] = value.strip()
    return out


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
