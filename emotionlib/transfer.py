"""Transfer texts: unlabelled texts that a teacher labels for its student (distillation), beside the training part.

`goemotions`: the 43,410 English Reddit comments of GoEmotions' train split (Demszky et al., 2020, ACL; CC BY 4.0,
Google), as the Ekman-grouped copy of monologg/GoEmotions-pytorch publishes them at a pinned commit. Its labels are
not read: they are not BRIGHTER's (broader groupings, other raters and instructions), and as training rows they
lowered macro-F1 on held-out English labels (docs/results.md). Found in $EMOTIONLIB_TRANSFER_DIR, else in
`goemotions-ekman/` beside the BRIGHTER data folder, else in the cache, else downloaded there; every file is checked
against its pinned sha256 before a row is read.

Or your own texts: a CSV with an `id` and a `text` column (any other column is ignored), ids unique, no text blank.

A transfer text that is also a validation text of the run is dropped: the student would learn the teacher's
probabilities on the rows its early stopping and thresholds are fitted on.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from emotionlib import data as D
from emotionlib.runs import sha256_of

GOEMOTIONS = "goemotions"
GOEMOTIONS_DIR = "goemotions-ekman"
GOEMOTIONS_COMMIT = "b75f9d3a8b76bc1060687925b04ca98a1b8ea66b"
GOEMOTIONS_URL = f"https://raw.githubusercontent.com/monologg/GoEmotions-pytorch/{GOEMOTIONS_COMMIT}/data/ekman"
GOEMOTIONS_FILE = "train.tsv"  # the dataset's own train split; its dev and test are left to whoever needs them
GOEMOTIONS_SHA256 = {
    "train.tsv": "bb74d10aec0975674c665205741ba9fe644cd70f682214624997f3770fd9e53f",
    "dev.tsv": "011e6579adc4d9bb2ffd908879b99e1594e7647b262cbb2e1c5c9c1c4d7d8bcc",
    "test.tsv": "f9f9b91827fe134259469368b93abddc2a52e2e2a87beab661023b06cf490baa",
    "labels.txt": "5ecd91c315ebf550ac798f06549e35a6ee1fb90866608fd640c24d520dc6aa0c",
}


@dataclass(frozen=True)
class TransferTexts:
    """The transfer texts of a run, in file order after sampling and dropping: where they came from (`path`, its
    sha256) and what was left out."""

    name: str
    path: Path
    sha256: str
    ids: tuple[str, ...]
    texts: tuple[str, ...]
    dropped_as_validation: int = 0

    @property
    def texts_sha256(self) -> str:
        return hashlib.sha256("\n".join(self.texts).encode("utf-8")).hexdigest()


def goemotions_file(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """GoEmotions' train.tsv, checked against its pinned sha256: from $EMOTIONLIB_TRANSFER_DIR, else beside the
    BRIGHTER folder, else the cache (downloaded there from the pinned commit when missing)."""
    places = [Path(p) for p in (os.environ.get("EMOTIONLIB_TRANSFER_DIR"),) if p]
    brighter = data_dir or os.environ.get("EMOTIONLIB_DATA_DIR")
    if brighter:
        places.append(Path(brighter).parent / GOEMOTIONS_DIR)
    cached = D.cache_dir() / GOEMOTIONS_DIR / GOEMOTIONS_COMMIT
    for folder in [*places, cached]:
        path = folder / GOEMOTIONS_FILE
        if path.is_file():
            return check_sha256(path, GOEMOTIONS_SHA256[GOEMOTIONS_FILE])
    if not download:
        raise D.DataError(
            f"GoEmotions' {GOEMOTIONS_FILE} is in none of {', '.join(map(str, [*places, cached]))}; "
            "`python -m emotionlib data download --transfer goemotions` fetches it"
        )
    return D.download_file(
        f"{GOEMOTIONS_URL}/{GOEMOTIONS_FILE}", cached / GOEMOTIONS_FILE, GOEMOTIONS_SHA256[GOEMOTIONS_FILE]
    )


def check_sha256(path: Path, expected: str) -> Path:
    got = sha256_of(path)
    if got != expected:
        raise D.DataError(
            f"{path}: sha256 {got} is not the pinned {expected}; the file was changed or is another "
            "version; remove it (it is downloaded again) or restore it"
        )
    return path


def read_goemotions(path: Path) -> tuple[list[str], list[str]]:
    """(ids, texts) of a GoEmotions TSV: text, label ids, comment id a row, no header; the labels are not read."""
    ids, texts = [], []
    with open(path, encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if len(row) != 3:
                raise D.DataError(f"{path}:{n}: {len(row)} tab-separated fields, expected text, labels and id")
            texts.append(row[0])
            ids.append(row[2])
    return ids, texts


def read_transfer_csv(path: Path) -> tuple[list[str], list[str]]:
    """(ids, texts) of your own transfer CSV: columns id and text (others ignored)."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("id", "text") if c not in (reader.fieldnames or [])]
            if missing:
                raise D.DataError(
                    f"{path}: no column {' or '.join(missing)} (a transfer CSV needs id and text; its "
                    f"columns: {', '.join(reader.fieldnames or []) or 'none'})"
                )
            rows = [(n, r["id"], r["text"]) for n, r in enumerate(reader, start=2)]
    except UnicodeDecodeError as exc:
        raise D.DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return [i for _, i, _ in rows], [t for _, _, t in rows]


def check_rows(path: Path, ids: list[str], texts: list[str], first_row: int) -> None:
    """Ids present and unique, texts not blank; the first bad row is named (file:row)."""
    seen: dict[str, int] = {}
    for n, (i, t) in enumerate(zip(ids, texts), start=first_row):
        if i is None or not str(i).strip():
            raise D.DataError(f"{path}:{n}: empty id")
        if i in seen:
            raise D.DataError(f"{path}:{n}: id {i!r} also on row {seen[i]}; transfer ids must be unique")
        seen[i] = n
        if t is None or not t.strip():
            raise D.DataError(f"{path}:{n}: id {i!r} has a blank text")
    if not ids:
        raise D.DataError(f"{path}: no rows")


def read_transfer(
    spec: str, data_dir: str = "", max_rows: int = 0, seed: int = 0, exclude: Iterable[str] = ()
) -> TransferTexts:
    """The transfer texts `spec` names (`goemotions` or a CSV path), checked; at most `max_rows` of them (a sample
    drawn with `seed`, in file order), those in `exclude` (the run's validation texts) dropped."""
    if spec == GOEMOTIONS:
        path = goemotions_file(data_dir)
        ids, texts = read_goemotions(path)
        first, digest = 1, GOEMOTIONS_SHA256[GOEMOTIONS_FILE]  # goemotions_file checked the file against it
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise D.DataError(
                f"config field 'transfer_texts': {spec} is not a file (give a CSV with id and text "
                f"columns, or {GOEMOTIONS!r})"
            )
        ids, texts = read_transfer_csv(path)
        first, digest = 2, sha256_of(path)
    check_rows(path, ids, texts, first)
    keep = np.arange(len(ids))
    if max_rows and max_rows < len(ids):
        keep = np.sort(np.random.default_rng(seed).choice(len(ids), size=max_rows, replace=False))
    excluded = {t.strip() for t in exclude}
    kept = [i for i in keep if texts[i].strip() not in excluded]
    return TransferTexts(
        spec if spec == GOEMOTIONS else str(path),
        path,
        digest,
        tuple(ids[i] for i in kept),
        tuple(texts[i] for i in kept),
        len(keep) - len(kept),
    )
