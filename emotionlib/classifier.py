"""Loading a trained run (a network or an ensemble of runs), and the `Classifier` behind `emotionlib.load` and
`python -m emotionlib predict`: a trained run, ready for use."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from emotionlib.baseline import SavedBaseline
from emotionlib.data import LANGUAGES, from_vector, read_texts
from emotionlib.combine.weights import BASELINE, Ensemble, EnsembleError
from emotionlib.export import ensure_onnx
from emotionlib.combine.langstack import LanguageStack
from emotionlib.metadata import is_ensemble, read_finished, read_metadata
from emotionlib.model import load_model, load_tokenizer
from emotionlib.predict import OnnxForward, batched_proba, decide, torch_forward
from emotionlib.prediction_files import check_prediction_paths, write_predictions
from emotionlib.runs import RunLayout, sha256_of

BACKENDS = ("torch", "onnx", "onnx-int8")


def load_run(run_dir: Path, attn_implementation: str = "sdpa", stack: bool = True):
    """(model in eval mode, tokenizer, metadata) of a finished run. An ensemble's model averages its members'
    probabilities (each member a Classifier with its own tokenizer; the tokenizer returned is None). A run with a
    per-language stack gives its `LanguageStack` (the network alone with `stack=False`)."""
    meta = read_finished(run_dir)
    layout = RunLayout(run_dir)
    if not is_ensemble(meta):
        network, tokenizer, meta = load_model(layout.model, attn_implementation)
        if stack and layout.stack_meta.is_file():
            return LanguageStack(layout.root, network, tokenizer, meta), tokenizer, meta
        return network, tokenizer, meta
    members = []
    for m in meta["members"]:
        if m["name"] == BASELINE:
            members.append(SavedBaseline(layout.baseline_model))
            continue
        run = find_member(layout.root, m)
        if sha256_of(RunLayout(run).weights) != m["weights_sha256"]:
            raise EnsembleError(
                f"{run}: its weights changed since the ensemble {layout.root} was fitted; fit the ensemble again"
            )
        members.append(Classifier(run))
    return Ensemble(meta, members, [m["weight"] for m in meta["members"]]), None, meta


def find_member(ensemble_dir: Path, member: dict) -> Path:
    """A member beside the ensemble (runs moved together) or where it was when the ensemble was fitted."""
    for candidate in (Path(ensemble_dir).parent / member["name"], Path(member["run"])):
        if RunLayout(candidate).metadata.is_file():
            return candidate
    raise EnsembleError(f"ensemble {ensemble_dir}: member {member['name']} not found beside it nor at {member['run']}")


class Classifier:
    """A trained run ready for use: `clf = emotionlib.load("runs/<id>")`, then `clf.predict(["..."])`.

    `backend="onnx"` runs the ONNX export of the run through onnxruntime (made under runs/<id>/onnx/ on first
    use); `"onnx-int8"` its dynamic-int8 version, made there too and refused if it costs more than 0.5 validation
    macro-F1 points. The labels, tuned thresholds and maximum length are the run's either way.
    """

    def __init__(self, run_dir: str | Path, backend: str = "torch"):
        if not isinstance(run_dir, (str, os.PathLike)) or isinstance(run_dir, bytes):
            raise TypeError(
                f"run_dir must be a run folder's path, a str or a Path (got {type(run_dir).__name__} "
                f"{run_dir!r:.40})"
            )
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r}: must be one of {BACKENDS}")
        self.run_dir, self.backend = Path(run_dir), backend
        model_dir = RunLayout(self.run_dir).model
        # a finished run with the weights training saved: load_run checks that for torch (hashing the weights once)
        meta = read_metadata(model_dir) if backend == "torch" else read_finished(self.run_dir)
        ensemble = is_ensemble(meta) or RunLayout(self.run_dir).stack_meta.is_file()
        if backend == "torch":
            self.model, self.tokenizer, self.meta = load_run(self.run_dir)
            # as the run trained: bf16 autocast for a bf16 run
            self._forward = None if ensemble else torch_forward(self.model, self.meta.get("mixed_precision", "no"))
        elif ensemble:
            raise ValueError(
                f"{self.run_dir}: an ensemble or a per-language stack predicts with backend 'torch' "
                "(the ONNX export holds one network)"
            )
        else:
            self.model = None  # the network runs in onnxruntime
            self.meta, self.tokenizer = read_metadata(model_dir), load_tokenizer(model_dir)
            self._forward = OnnxForward(ensure_onnx(self.run_dir, int8=backend == "onnx-int8"))
        self._labels: tuple[str, ...] = tuple(self.meta["labels"])
        self._thresholds = np.asarray(self.meta["thresholds"], dtype=float)
        self._thresholds.flags.writeable = False
        self.max_length: int = self.meta["max_length"]

    @property
    def labels(self) -> list[str]:
        """The run's labels, in the order of every probability column (the run's own: not settable)."""
        return list(self._labels)

    @labels.setter
    def labels(self, value) -> None:
        raise AttributeError(
            "labels are the run's own (they name its output columns in order); they cannot be "
            "changed on a loaded classifier"
        )

    @property
    def thresholds(self) -> np.ndarray:
        """The per-label decision thresholds (tuned on validation); settable to numbers strictly between 0 and 1."""
        return self._thresholds

    @thresholds.setter
    def thresholds(self, value) -> None:
        try:
            new = np.asarray(value, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(
                f"thresholds: {len(self._labels)} numbers, one per label, expected (got {value!r:.60})"
            ) from None
        if len(new) != len(self._labels) or not np.all((new > 0) & (new < 1)):
            raise ValueError(
                f"thresholds: {len(self._labels)} numbers strictly between 0 and 1, one per label "
                f"({', '.join(self._labels)}), expected (got {value!r:.80})"
            )
        new.flags.writeable = False
        self._thresholds = new

    def __repr__(self) -> str:
        return f"Classifier({str(self.run_dir)!r}, backend={self.backend!r}, labels={self.labels})"

    def predict_proba(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False, lang: str | None = None
    ) -> np.ndarray:
        """Probabilities (n, labels), columns in the order of `self.labels`. `lang` (a BRIGHTER code) is needed by
        a run stacked per language on several languages."""
        texts = self.check_texts(texts)
        self.check_language(lang)
        if getattr(self.model, "by_language", False):
            return self.model.predict_proba(list(texts), batch_size, progress, lang=lang)
        if self._forward is None:  # an ensemble: each member with its own tokenizer
            return self.model.predict_proba(list(texts), batch_size, progress)
        forward = self._forward
        if getattr(self.model, "languages", None):  # a head with parts per language: those of the texts' language
            forward = torch_forward(self.model, self.meta.get("mixed_precision", "no"), self.language(lang))
        return batched_proba(
            forward, self.tokenizer, texts, len(self.labels), self.max_length, batch_size, progress=progress
        )

    @staticmethod
    def check_texts(texts) -> list[str]:
        """A string or a sequence of strings (a list, a tuple, a numpy array or a pandas Series of them), as a
        list; anything else (bytes included) is one TypeError saying so."""
        if isinstance(texts, str):
            return [texts]
        if isinstance(texts, (bytes, bytearray)):
            raise TypeError(
                f"texts must be a string or a list of strings (got {type(texts).__name__} "
                f"{bytes(texts)!r:.40}: decode it first, e.g. .decode('utf-8'))"
            )
        if hasattr(texts, "tolist") and getattr(texts, "ndim", 1) == 1:  # a numpy array or a pandas Series
            texts = texts.tolist()
        if not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
            bad = texts if not isinstance(texts, Sequence) else next(t for t in texts if not isinstance(t, str))
            raise TypeError(f"texts must be a string or a list of strings (got {type(bad).__name__} {bad!r:.40})")
        return list(texts)

    def check_language(self, lang: str | None) -> None:
        """`lang` must be a BRIGHTER code or one of the run's own languages (its data name for your own data)."""
        known = set(LANGUAGES) | set(self.meta.get("languages") or [])
        if lang is not None and lang not in known:
            raise ValueError(
                f"language {lang!r}: not a BRIGHTER code nor one of the run's languages "
                f"({', '.join(self.meta.get('languages') or []) or 'none'})"
            )

    def language(self, lang: str | None) -> str:
        """The texts' language for a head with parts per language (needed when it has several)."""
        languages = self.model.languages
        if lang is None and len(languages) == 1:
            return languages[0]
        if lang is None:
            raise ValueError(
                f"{self.run_dir}: its head has parts per language ({', '.join(languages)}): give the "
                "texts' language (lang=... or --lang); another language gets the shared head"
            )
        return lang

    def thresholds_for(self, lang: str | None = None) -> np.ndarray:
        """The tuned thresholds; a per-language stack's are those fitted for `lang`."""
        return self.model.thresholds_for(lang) if getattr(self.model, "by_language", False) else self.thresholds

    def predict(self, texts: Sequence[str], batch_size: int = 64, lang: str | None = None) -> list[dict]:
        """Per text: the labels over their tuned thresholds and every label's probability."""
        probs = self.predict_proba(texts, batch_size, lang=lang)
        return [
            {
                "labels": from_vector(row, self.labels),
                "probabilities": {lab: round(float(p), 6) for lab, p in zip(self.labels, prob)},
            }
            for prob, row in zip(probs, decide(probs, self.thresholds_for(lang)))
        ]

    def predict_file(
        self, input_csv: str | Path, output_csv: str | Path, batch_size: int = 64, lang: str | None = None
    ) -> Path:
        """SemEval Track A submission format: id plus one 0/1 column per label; written atomically."""
        input_csv, output_csv = Path(input_csv), Path(output_csv)
        check_prediction_paths(input_csv, output_csv, batch_size)
        self.check_language(lang)
        existed = output_csv.exists()
        ids, texts = read_texts(input_csv)
        pred = decide(self.predict_proba(texts, batch_size, progress=True, lang=lang), self.thresholds_for(lang))
        rows = [["id", *self.labels]] + [[rid, *row.tolist()] for rid, row in zip(ids, pred)]
        write_predictions(
            output_csv,
            rows,
            existed,
            {
                "run": str(self.run_dir.resolve()),
                "backend": self.backend,
                "lang": lang,
                "input": str(input_csv.resolve()),
            },
        )
        return output_csv
