"""A per-language stack, as inference reads it: on top of a trained run's network, for each of the run's languages,
a frozen-feature member (a logistic regression per label on mean-pooled hidden states of several pretrained-encoder
layers) and the TF-IDF baseline, mixed with member weights and per-label thresholds fitted on that language's
validation part (`combine.stack_fit` fits and writes it; this module never trains or fits anything).

With `stack_network_folds` = k the network member is a cross-fit ensemble: the mean of k fold networks under
runs/<run_id>/network-folds/. Read from runs/<run_id>/stack/ (JSON and safetensors, no pickles); `classifier.load_run`
loads it, and `evaluate`, `predict` and `emotionlib.load` then use it, with the language of the texts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from emotionlib import baseline as B
from emotionlib.combine.weights import BASELINE, Combined
from emotionlib.encoders import resolve_encoder
from emotionlib.features import LayerFeatures
from emotionlib.predict import predict_proba
from emotionlib.metadata import read_finished
from emotionlib.model import load_model
from emotionlib.runs import RunLayout, read_json, sha256_of

MEMBERS = ("network", "features_lr", BASELINE)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))).astype(np.float32)


def network_proba(
    network,
    tokenizer,
    meta: dict,
    texts: Sequence[str],
    feats: np.ndarray | None,
    block: int | None,
    lang: str,
    batch_size: int = 64,
) -> np.ndarray:
    """The network's probabilities (run label order) for texts of `lang`. A frozen-encoder network reads the same
    mean-pooled last layer that the features hold (`block`): its head is applied to them rather than encoding the
    texts again."""
    import torch

    if block is not None and feats is not None:
        width = network.head.in_features
        ids = network.language_ids([lang] * len(feats)) if network.languages else None
        with torch.inference_mode():
            logits = network.logits(torch.from_numpy(feats[:, block * width : (block + 1) * width]), ids)
        return torch.sigmoid(logits).numpy().astype(np.float32)
    return predict_proba(
        network,
        tokenizer,
        texts,
        meta["max_length"],
        batch_size,
        precision=meta.get("mixed_precision", "no"),
        langs=[lang] * len(texts),
    )


def folds_proba(folds: list, texts: Sequence[str], lang: str, batch_size: int = 64) -> np.ndarray:
    """The cross-fit ensemble's probabilities (run label order): the mean of the fold networks'."""
    return np.mean(
        [network_proba(net, tok, m, texts, None, None, lang, batch_size) for net, tok, m in folds], axis=0
    ).astype(np.float32)


def load_member(run_dir: Path, member: Path, labels: list[str]):
    """(network, tokenizer, metadata) of a further run of the stack; its labels must be the run's."""
    network, tokenizer, meta = load_model(RunLayout(member).model)
    if meta["labels"] != list(labels):
        raise ValueError(f"{member}: labels {meta['labels']} differ from {list(labels)} of {run_dir}")
    return network, tokenizer, meta


def stack_table(stack: dict) -> pd.DataFrame:
    """One row per language: validation figures (cross-fitted) of the stack and of each member, and the weights."""
    rows = []
    for lang, f in stack["languages"].items():
        row = {"lang": lang, "n_val": f["n_val"], "stack_val_oof": f["val_oof"]}
        row |= {f"{n}_val_oof": v for n, v in f["members_val_oof"].items()}
        row |= {f"w_{n}": w for n, w in f["weights"].items()} | {"features_lr_c": f["features_lr_c"]}
        rows.append(row)
    return pd.DataFrame(rows).round(4)


def stack_table_of(run_dir: Path) -> pd.DataFrame | None:
    """The stack table of a run (None when it has no stack), checked as every load checks it."""
    layout = RunLayout(run_dir)
    if not layout.stack_meta.is_file():
        return None
    read_finished(layout.root)
    return stack_table(read_json(layout.stack_meta))


def check_stack(stack, path: Path, labels: list[str]) -> dict:
    """stack.json as fit_stack writes it: per language, thresholds strictly between 0 and 1 (one a label), weights
    of known members that are finite, not negative and sum to 1. Anything else is one line naming the file."""

    def bad(why: str) -> ValueError:
        return ValueError(
            f"{path}: {why}; the run's stack is damaged: fit it again (`python -m emotionlib run "
            "--run <run>` after removing the stack, or train the run again)"
        )

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
            if (
                not all(
                    isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0
                    for w in values
                )
                or abs(sum(values) - 1) > 1e-6
            ):
                raise bad(f"language {lang!r}: weights must be finite, not negative and sum to 1 (got {weights})")
        return stack
    except (KeyError, TypeError, AttributeError) as exc:
        raise bad(f"not a stack record (field {exc} missing or of the wrong type)") from None


# --- the stack -------------------------------------------------------------------------------------------------


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
            raise ValueError(
                f"{layout.stack_meta}: labels {self.stack['labels']} differ from the model's "
                f"{self.labels}; fit the stack again"
            )
        self.languages = list(self.stack["languages"])
        self.features = LayerFeatures(
            resolve_encoder(self.stack["encoder"]),
            self.stack["feature_layers"],
            self.stack["max_length"],
            precision=self.stack.get("feature_precision", "no"),
            prompt=self.stack.get("feature_prompt", ""),
        )
        if self.features.fingerprint != self.stack["encoder_fingerprint"]:
            raise ValueError(
                f"{layout.stack_meta}: the encoder {self.stack['encoder']!r} is not the one the stack "
                "was fitted with (its weights or tokenizer changed); fit the stack again"
            )
        self._members: dict[str, dict] = {}
        self._runs: dict[str, tuple] = {}
        self._folds: list[tuple] | None = None
        self.cache_root: Path | None = None  # set to cache the features of the texts it scores (evaluate does)

    def run_member(self, name: str):
        """(network, tokenizer, metadata) of a further run of the stack, found beside this run, loaded once; its
        weights must be those the stack was fitted with."""
        if name not in self._runs:
            info = self.stack["runs"][name]
            self._runs[name] = self.load_checked(
                self.folder.parent.parent / info["run_id"], info["weights_sha256"], f"member {name}"
            )
        return self._runs[name]

    def load_checked(self, member: Path, sha: str, what: str):
        """(network, tokenizer, metadata) of a run the stack uses, refused unless its weights are those the stack
        was fitted with."""
        weights = RunLayout(member).weights
        if not weights.is_file() or sha256_of(weights) != sha:
            raise ValueError(
                f"{member}: the stack's {what} is missing or its weights changed since the stack was "
                "fitted; fit the stack again"
            )
        read_finished(member)  # every file that decides its predictions, against its own manifest
        return load_member(self.folder.parent, member, self.labels)

    def fold_networks(self) -> list[tuple]:
        """The cross-fit ensemble's networks (config `stack_network_folds`), loaded once; each one's weights must
        be those the stack was fitted with."""
        if self._folds is None:
            info = self.stack["network_folds"]
            root = self.folder.parent / info["folder"]
            self._folds = [
                self.load_checked(root / name, sha, "fold network")
                for name, sha in zip(info["runs"], info["weights_sha256"])
            ]
        return self._folds

    def language(self, lang: str | None) -> str | None:
        if lang is None and len(self.languages) == 1:
            return self.languages[0]
        if lang is None:
            raise ValueError(
                f"this run stacks per language ({', '.join(self.languages)}): give the texts' language "
                "(lang=... or --lang)"
            )
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

    def member_proba(
        self, texts: Sequence[str], lang: str, batch_size: int = 64, progress: bool = False, weighted_only: bool = False
    ) -> dict[str, np.ndarray]:
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
                out[name] = network_proba(
                    self.network, self.tokenizer, self.meta, texts, feats, self.stack["network_block"], lang, batch_size
                )[:, cols]
            elif name == "features_lr":
                out[name] = sigmoid(feats @ saved[name]["coef"].T + saved[name]["intercept"])
            elif name in self.stack.get("runs", {}):
                net, tok, meta = self.run_member(name)
                out[name] = network_proba(net, tok, meta, texts, None, None, lang, batch_size)[:, cols]
            else:
                out[name] = saved[name].predict_proba(texts)
        return out

    def predict_proba(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False, lang: str | None = None
    ) -> np.ndarray:
        lang, texts = self.language(lang), list(texts)
        if lang not in self.stack["languages"]:
            return predict_proba(
                self.network,
                self.tokenizer,
                texts,
                self.meta["max_length"],
                batch_size,
                precision=self.meta.get("mixed_precision", "no"),
                progress=progress,
                langs=[lang] * len(texts),
            )
        return self.mix(self.member_proba(texts, lang, batch_size, progress, weighted_only=True), lang)

    def mix(self, probs: dict[str, np.ndarray], lang: str) -> np.ndarray:
        """The weighted sum of members' probabilities of `lang`, in the run's label order (0 for labels it lacks)."""
        f = self.stack["languages"][lang]
        out = np.zeros((len(next(iter(probs.values()))), len(self.labels)), dtype=np.float32)
        out[:, [self.labels.index(lab) for lab in f["labels"]]] = sum(f["weights"][n] * probs[n] for n in probs)
        return out
