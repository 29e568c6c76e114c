"""What a run records of its own files: the step cache (the inputs each step's outputs were made from, so that a
step whose inputs are unchanged is skipped) and the seal (the manifest of every file that decides the run's
predictions, checked by every load)."""

from __future__ import annotations

import json
from pathlib import Path

from emotionlib.runs import RunLayout, files_in, read_json, sha256_of, write_json


def step_inputs(layout: RunLayout, paths: list[Path]) -> dict[str, str]:
    """sha256 of each input file of a step, keyed by its path in the run; a missing one is recorded as missing."""
    return {layout.relative(p): sha256_of(p) if p.is_file() else "missing" for p in paths}


def step_is_current(layout: RunLayout, step: str, inputs: dict[str, str], outputs: list[Path]) -> bool:
    """True when the step ran on exactly these inputs and all its outputs are still there."""
    record = layout.steps / f"{step}.json"
    return record.is_file() and read_json(record).get("inputs") == inputs and all(Path(p).exists() for p in outputs)


def record_step(layout: RunLayout, step: str, inputs: dict[str, str], outputs: list[Path]) -> None:
    write_json(layout.steps / f"{step}.json", {"inputs": inputs, "outputs": [layout.relative(p) for p in outputs]})


# --- a run's files that decide its predictions, as one signed whole -----------------------------------------


class RunChanged(ValueError):
    """A file that decides a run's predictions is not the one emotionlib wrote (edited, replaced, added, removed)."""


def sealed_files(layout: RunLayout) -> dict[str, str]:
    """sha256 of every file of the run that decides what it predicts, keyed by its path in the run."""
    # the settings, the split, the summary; every file of the model (weights, metadata, encoder config, tokenizer)
    # and of the stack
    names = [layout.relative(p) for p in (layout.config, layout.split, layout.train_summary) if p.is_file()]
    for folder in (layout.model, layout.stack):
        if folder.is_dir():
            names += [layout.relative(folder / f) for f in files_in(folder)]
    return {name: sha256_of(layout.root / name) for name in sorted(names)}


def seal(layout: RunLayout) -> None:
    """Write the run's manifest (last, after every file it names): every later load checks the run against it."""
    write_json(layout.manifest, {"made_by": "emotionlib", "sha256": sealed_files(layout)})


def check_sealed(layout: RunLayout, hint: str) -> None:
    """Refuse a run whose deciding files differ from its manifest: one line naming the first changed file and
    `hint` (the command that retrains it). A finished run without its manifest is refused too: removing the
    manifest is no way out of the check."""
    try:
        recorded = json.loads(layout.manifest.read_text(encoding="utf-8"))["sha256"]
        if not (isinstance(recorded, dict) and all(isinstance(v, str) for v in recorded.values())):
            raise ValueError
    except FileNotFoundError:
        raise RunChanged(
            f"{layout.manifest}: missing (the record of the files that decide the run's predictions; "
            f"a run made before emotionlib recorded it, or one whose record was removed); {hint}"
        ) from None
    except (OSError, ValueError, KeyError, TypeError):
        raise RunChanged(f"{layout.manifest}: not readable; the run is damaged: {hint}") from None
    now = sealed_files(layout)
    for name in sorted(set(recorded) | set(now)):
        if name not in now:
            raise RunChanged(f"{layout.root / name}: missing since the run was made (the run is damaged); {hint}")
        if name not in recorded:
            raise RunChanged(
                f"{layout.root / name}: not a file emotionlib wrote there, and it would change what the "
                f"run predicts; move it out, or {hint}"
            )
        if now[name] != recorded[name]:
            raise RunChanged(
                f"{layout.root / name}: damaged or changed since the run was made (sha256 {now[name][:12]}, recorded "
                f"{recorded[name][:12]} in {layout.manifest.name}); {hint}"
            )
