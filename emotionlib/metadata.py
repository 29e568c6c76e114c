"""A saved model's metadata.json and whether a run's model is finished and sealed: all that loading, checking or
rendering a run asks of its model folder without multiplying anything, so it needs no torch (model.py loads the
network itself). The preflight and `make report`'s runner read runs through this module before the trainer loads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from emotionlib.runs import RunLayout, write_json
from emotionlib.run_records import check_sealed


def read_metadata(model_dir: Path) -> dict[str, Any]:
    """A saved model's metadata.json, its labels, thresholds and length checked: a bad value is refused on load
    rather than turned into silent all-0 or all-1 predictions."""
    path = Path(model_dir) / "metadata.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no saved model here (train first)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: must be a JSON object")
    labels, thresholds = meta.get("labels"), meta.get("thresholds", [0.5] * len(meta.get("labels") or []))

    def bad(field: str, why: str) -> ValueError:
        return ValueError(f"{path}: field {field!r} {why} (got {meta.get(field)!r}); the run's model is damaged")

    if not (
        isinstance(labels, list)
        and labels
        and all(isinstance(x, str) and x for x in labels)
        and len(set(labels)) == len(labels)
    ):
        raise bad("labels", "must be a list of distinct label names")
    if not (isinstance(thresholds, list) and len(thresholds) == len(labels)):
        raise bad("thresholds", f"must be a list of {len(labels)} numbers, one per label")
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t < 1 for t in thresholds):
        raise bad("thresholds", "must each lie strictly between 0 and 1")
    if not (isinstance(meta.get("max_length"), int) and meta["max_length"] >= 3):
        raise bad("max_length", "must be an integer of at least 3")
    return meta


def read_finished(run_dir: Path) -> dict:
    """The metadata of a run whose training finished (its thresholds tuned); an unfinished run is refused."""
    layout = RunLayout(run_dir)
    meta = read_metadata(layout.model)
    if not layout.train_summary.is_file():
        raise ValueError(
            f"{run_dir}: training did not finish (no {layout.train_summary.name}): its weights are "
            "those of an unfinished run and its thresholds are untuned; finish it with `python -m "
            "emotionlib train ... --resume` (or `make report RUN_ID=...`) first"
        )
    check_weights(layout)
    return meta


def retrain_hint(layout: RunLayout) -> str:
    return f"retrain it in place with `python -m emotionlib train --run {layout.root} --retrain`"


def check_weights(layout: RunLayout) -> None:
    """Refuse a run whose files that decide its predictions (weights, metadata, encoder config, tokenizer, stack,
    config.yaml, split) are not those emotionlib wrote: the run's manifest records their sha256 (run_records.seal)."""
    check_sealed(layout, retrain_hint(layout))


def is_ensemble(meta: dict[str, Any]) -> bool:
    """The one test of whether a saved model is an ensemble (a weighted average of other runs)."""
    return meta.get("kind") == "ensemble"


def update_metadata(model_dir: Path, **changes: Any) -> dict[str, Any]:
    meta = read_metadata(model_dir) | changes
    write_json(Path(model_dir) / "metadata.json", meta)
    return meta
