"""Every setting a run needs, checked before its first write: languages, data, encoder, lengths, layers."""
from __future__ import annotations

from pathlib import Path

from emotionlib import data as D
from emotionlib.config import Config, ConfigError
from emotionlib.model import resolve_encoder
from emotionlib.runs import read_json


def check(cfg: Config) -> Path:
    """Fail, with what to fix, before any file is written; return the encoder's folder."""
    if cfg.multilingual == "per_language" and len(D.train_languages(cfg)) > 1:
        raise ValueError("multilingual=per_language trains one run per language: use train_all() or "
                         "`python -m emotionlib train`, or give one language")
    D.train_languages(cfg), D.eval_languages(cfg)  # unknown codes fail here
    source = D.source_for(cfg)
    for lang in D.train_languages(cfg):
        # BRIGHTER files are checked against their manifest; your own are read (and their size checked against
        # the split) now, so that a bad row is named before a run folder exists
        if cfg.own_data:
            D.check_splittable(source.load("train", lang), cfg.val_fraction)
        else:
            source.path("train", lang)
    encoder_dir = resolve_encoder(cfg.model)
    config = read_json(Path(encoder_dir) / "config.json")
    positions = encoder_positions(config)
    if cfg.max_length > positions:
        raise ConfigError(f"config field 'max_length': {cfg.max_length} exceeds the {positions} positions of "
                          f"encoder {cfg.model!r}")
    layers = config.get("num_hidden_layers")
    if layers is not None and cfg.freeze_layers > layers:
        raise ConfigError(f"config field 'freeze_layers': {cfg.freeze_layers} exceeds the {layers} layers of "
                          f"encoder {cfg.model!r}")
    return encoder_dir


def encoder_positions(config: dict) -> int:
    """Token positions the encoder can take (RoBERTa-style models reserve padding_idx + 1 of theirs)."""
    offset = config.get("pad_token_id", 0) + 1 if config.get("model_type") in ("roberta", "xlm-roberta") else 0
    return int(config.get("max_position_embeddings", 512)) - offset


def prepare(cfg: Config) -> dict:
    """The data step (notebook 01): every setting checked, then the run's split written once."""
    check(cfg)
    return D.prepare_data(cfg)
