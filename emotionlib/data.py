"""SemEval-2025 Task 11 / BRIGHTER Track A data: sources, checksums, loading, labels, splits, datasets."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from emotionlib.runs import atomic_path, sha256_of

log = logging.getLogger(__name__)

LABELS = ("anger", "disgust", "fear", "joy", "sadness", "surprise")  # canonical order
LANGUAGES = (
    "afr",
    "amh",
    "arq",
    "ary",
    "chn",
    "deu",
    "eng",
    "esp",
    "hau",
    "hin",
    "ibo",
    "kin",
    "mar",
    "orm",
    "pcm",
    "ptbr",
    "ptmz",
    "ron",
    "rus",
    "som",
    "sun",
    "swa",
    "swe",
    "tat",
    "tir",
    "ukr",
    "vmw",
    "yor",
)
SPLITS = ("train", "dev", "test")
PINNED_COMMIT = "513a7e8bef7ef6370ac416ced97efba338c47c97"
BASE_URL = (
    "https://raw.githubusercontent.com/emotion-analysis-project/SemEval2025-Task11/"
    f"{PINNED_COMMIT}/task-dataset/semeval-2025-task11-dataset/track_a"
)
DATASET = "semeval2025-task11"


class DataError(ValueError):
    """Input data that cannot be used as it is; the message names the file and the row or column."""


# --- sources and checksums -------------------------------------------------------------------------


@lru_cache(maxsize=1)
def manifest() -> dict[str, str]:
    """The shipped SHA256 manifest: relative path (track_a/<split>/<lang>.csv) -> sha256."""
    text = resources.files("emotionlib").joinpath("resources/SHA256SUMS").read_text(encoding="utf-8")
    pairs = (line.split(maxsplit=1) for line in text.splitlines() if line.strip())
    return {path.strip(): digest for digest, path in pairs}


def relpath(split: str, lang: str) -> str:
    check_language(lang)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    return f"track_a/{split}/{lang}.csv"


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise DataError(f"unknown language code {lang!r}; known codes: {' '.join(LANGUAGES)}")
    return lang


def expand_languages(languages: Iterable[str]) -> list[str]:
    langs = list(languages)
    if langs == ["all"]:
        return list(LANGUAGES)
    return [check_language(lang) for lang in langs]


def cache_dir() -> Path:
    return Path(os.environ.get("EMOTIONLIB_CACHE", Path.home() / ".cache" / "emotionlib"))


def protected_folders() -> tuple[Path, ...]:
    """The data folder and emotionlib's cache: no run, report, export or prediction file is made inside them."""
    return tuple(Path(p) for p in (os.environ.get("EMOTIONLIB_DATA_DIR"), cache_dir()) if p)


def download_file(url: str, dest: Path, expected_sha256: str, timeout: float = 60) -> Path:
    """Stream `url` to `dest`, verifying its sha256; an interrupted or corrupt download leaves nothing behind."""
    new_folders = [p for p in Path(dest).parents if not p.exists()]  # made for this file: removed if it fails
    try:
        _download(url, Path(dest), expected_sha256, timeout)
    except DataError:
        for folder in new_folders:  # deepest first, and only while empty
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    return dest


def _download(url: str, dest: Path, expected_sha256: str, timeout: float) -> None:
    h = hashlib.sha256()
    with atomic_path(dest) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    out.write(chunk)
                    h.update(chunk)
        except (urllib.error.URLError, OSError, EOFError) as exc:
            raise DataError(f"download of {url} failed: {exc}; nothing was written to {dest}") from exc
        except Exception as exc:  # http.client.IncompleteRead and friends
            raise DataError(f"download of {url} was interrupted: {exc!r}; nothing was written") from exc
        if h.hexdigest() != expected_sha256:
            raise DataError(
                f"checksum mismatch for {url}: got {h.hexdigest()}, expected {expected_sha256}; "
                f"nothing was written to {dest}"
            )


@dataclass(frozen=True)
class DataSource:
    """Where the files come from: a local directory, else the cache, else the pinned download.

    Every file handed out has been checked against the shipped manifest.
    """

    root: Path | None = None  # a local copy laid out as track_a/<split>/<lang>.csv
    base_url: str = BASE_URL

    @classmethod
    def resolve(cls, data_dir: str | os.PathLike | None = None) -> "DataSource":
        chosen = data_dir or os.environ.get("EMOTIONLIB_DATA_DIR") or None
        if chosen is not None and not Path(chosen).is_dir():
            raise DataError(f"data directory {chosen} does not exist (config data_dir or $EMOTIONLIB_DATA_DIR)")
        return cls(root=Path(chosen) if chosen else None, base_url=os.environ.get("EMOTIONLIB_DATA_URL", BASE_URL))

    @property
    def cache_root(self) -> Path:
        return cache_dir() / DATASET / PINNED_COMMIT

    def describe(self) -> str:
        return str(self.root) if self.root else f"{self.cache_root} (downloaded from {self.base_url})"

    def path(self, split: str, lang: str) -> Path:
        rel = relpath(split, lang)
        expected = manifest()[rel]
        if self.root is not None:
            path = self.root / rel
            if not path.is_file():
                raise DataError(f"{path}: missing from the data directory {self.root}")
        else:
            path = self.cache_root / rel
            if not path.is_file():
                log.info(f"downloading {rel} from {self.base_url}")
                return download_file(f"{self.base_url}/{split}/{lang}.csv", path, expected)
        actual = sha256_of(path)
        if actual != expected:
            raise DataError(
                f"{path}: checksum mismatch (sha256 {actual}, expected {expected}); "
                "the file is not the pinned official release"
            )
        return path

    def checksums(self, pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
        """sha256 of each (split, lang) file used, for a run's provenance (already verified)."""
        return {relpath(s, lang): manifest()[relpath(s, lang)] for s, lang in pairs}

    def load(self, split: str, lang: str) -> "LangSplit":
        return read_split(self.path(split, lang), lang=lang, split=split)

    def has(self, split: str, lang: str) -> bool:
        return relpath(split, lang) in manifest()


@dataclass(frozen=True)
class CsvSource:
    """Your own data: a train CSV and optional dev and test CSVs, with `id`, `text` and 0/1 label columns.

    It answers like DataSource, with one "language": the data set's name. Checksums are computed from the
    files (there is no manifest); a run records them and refuses files that changed after its split.
    """

    files: tuple[tuple[str, Path], ...]  # (split, path) for the splits given
    name: str = "custom"
    labels: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, cfg) -> "CsvSource":
        files = {}
        train = Path(cfg.train_csv)
        if train.is_dir():  # a folder: train.csv, and dev.csv / test.csv where present
            files = {split: train / f"{split}.csv" for split in SPLITS if (train / f"{split}.csv").is_file()}
            if "train" not in files:
                raise DataError(f"{train}: config train_csv names a folder without a train.csv")
        elif train.is_file():
            files["train"] = train
        else:
            raise DataError(f"{train}: config train_csv names no such file or folder")
        for split, given in (("dev", cfg.dev_csv), ("test", cfg.test_csv)):
            if given:
                if not Path(given).is_file():
                    raise DataError(f"{given}: config {split}_csv names no such file")
                files[split] = Path(given)
        return cls(tuple(files.items()), cfg.data_name, tuple(cfg.labels), tuple(cfg.ignore_columns))

    def describe(self) -> str:
        return ", ".join(f"{split}: {path}" for split, path in self.files)

    def has(self, split: str, lang: str) -> bool:
        return lang == self.name and split in dict(self.files)

    def path(self, split: str, lang: str) -> Path:
        if not self.has(split, lang):
            raise DataError(f"data set {self.name!r} has no {split} file (given: {self.describe()})")
        return dict(self.files)[split]

    def load(self, split: str, lang: str) -> "LangSplit":
        d = read_table(self.path(split, lang), lang=self.name, split=split, labels=self.labels, ignore=self.ignore)
        if split != "train" and self.has("train", lang):
            train = self.path("train", lang)
            with open(train, encoding="utf-8-sig", newline="") as f:  # the header is enough: train is read when used
                header = [h.strip() for h in next(csv.reader(f), [])]
            train_labels = label_columns(header, train, self.labels, self.ignore)[0]
            if d.labels != train_labels:
                raise DataError(
                    f"{d.path}: label columns {', '.join(d.labels)} differ from the train file's "
                    f"({', '.join(train_labels)})"
                )
        return d

    def checksums(self, pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
        return {str(self.path(s, lang)): sha256_of(self.path(s, lang)) for s, lang in pairs if self.has(s, lang)}


def source_for(cfg) -> "DataSource | CsvSource":
    """The run's data: your own CSV files when `train_csv` is set, else the BRIGHTER files."""
    return CsvSource.from_config(cfg) if cfg.own_data else DataSource.resolve(cfg.data_dir)


def train_languages(cfg) -> list[str]:
    return list(cfg.languages) if cfg.own_data else expand_languages(cfg.languages)


def eval_languages(cfg) -> list[str]:
    return train_languages(cfg) if cfg.own_data else expand_languages(cfg.eval_languages or cfg.languages)


# --- reading and writing one file ------------------------------------------------------------------


@dataclass
class LangSplit:
    """One language's split: ids, texts, the labels its header declares, and a 0/1 matrix (None if unlabeled)."""

    lang: str
    split: str
    ids: list[str]
    texts: list[str]
    labels: tuple[str, ...]
    y: np.ndarray | None
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def labeled(self) -> bool:
        return self.y is not None

    def subset(self, idx: Sequence[int]) -> "LangSplit":
        idx = list(idx)
        return LangSplit(
            self.lang,
            self.split,
            [self.ids[i] for i in idx],
            [self.texts[i] for i in idx],
            self.labels,
            None if self.y is None else self.y[idx],
            self.path,
        )

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame({"id": self.ids, "text": self.texts})
        for j, label in enumerate(self.labels):
            df[label] = self.y[:, j] if self.y is not None else ""
        return df


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}: not UTF-8 (byte {exc.start}, line {line}: {exc.reason})") from None


def read_split(path: str | os.PathLike, lang: str | None = None, split: str = "") -> LangSplit:
    """Read and validate one Track A CSV. The header decides the labels; empty label cells mean unlabeled."""
    path = Path(path)
    return read_table(path, lang=check_language(lang or path.stem), split=split, known_labels=LABELS)


def check_csv_file(path: Path) -> None:
    """A CSV to read is a regular file that exists (said before anything slow is loaded, e.g. by `predict`)."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory; give a CSV file")
    if path.exists() and not path.is_file():
        raise DataError(f"{path}: not a regular file (a device, FIFO or socket); give a CSV file")
    if not path.exists():
        raise DataError(f"{path}: no such file")


def _rows(path: Path) -> list[list[str]]:
    check_csv_file(path)
    text = _decode(path.read_bytes(), path).removeprefix("\ufeff")
    if not text.strip():
        raise DataError(f"{path}: empty file (expected a header id,text,<labels>)")
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV: {exc}") from None
    while rows and not rows[-1]:  # trailing blank lines
        rows.pop()
    return rows


def _header(rows: list[list[str]], path: Path) -> list[str]:
    header = [h.strip() for h in rows[0]]
    for required in ("id", "text"):
        if required not in header:
            raise DataError(f"{path}: missing column {required!r} (header: {','.join(header)})")
    return header


def label_columns(
    header: Sequence[str],
    path: Path,
    labels: Sequence[str] = (),
    ignore: Sequence[str] = (),
    known_labels: Sequence[str] | None = None,
) -> tuple[tuple[str, ...], dict[str, int]]:
    """The label names a header holds, in order, and the column of each (the rules of `read_table`)."""
    if len(set(header)) != len(header):
        raise DataError(f"{path}: a column appears twice in the header ({','.join(header)})")
    label_cols = [h for h in header if h not in ("id", "text") and h not in ignore]
    if labels:
        missing = [lab for lab in labels if lab not in header]
        if missing:
            raise DataError(
                f"{path}: declared label column(s) {', '.join(map(repr, missing))} not in the header "
                f"({','.join(header)})"
            )
        extra = [h for h in label_cols if h not in labels]
        if extra:
            raise DataError(f"{path}: column {extra[0]!r} is neither a declared label nor in ignore_columns")
        label_cols = list(labels)
    if known_labels is None:
        if not label_cols:
            raise DataError(f"{path}: no label columns (header: {','.join(header)})")
        if len(label_cols) > MAX_LABELS:
            raise DataError(
                f"{path}: {len(label_cols)} label columns, more than the {MAX_LABELS} a run takes; declare "
                "the labels (labels=...) and list the other columns in ignore_columns"
            )
        return tuple(label_cols), {lab: list(header).index(lab) for lab in label_cols}
    for col in label_cols:
        if col.lower() not in known_labels:
            raise DataError(f"{path}: unknown label column {col!r}; labels are {', '.join(known_labels)}")
    if len({c.lower() for c in label_cols}) != len(label_cols):
        raise DataError(f"{path}: a label column appears twice in the header")
    by_name = {c.lower(): c for c in label_cols}
    names = tuple(lab for lab in known_labels if lab in by_name)  # canonical order
    return names, {lab: list(header).index(by_name[lab]) for lab in names}


MAX_LABELS = 100  # a run's label columns: each is a head output, a threshold and a column of every table


def read_table(
    path: str | os.PathLike,
    lang: str,
    split: str = "",
    labels: Sequence[str] = (),
    ignore: Sequence[str] = (),
    known_labels: Sequence[str] | None = None,
) -> LangSplit:
    """Read and validate a CSV with `id`, `text` and 0/1 label columns; errors name the file, row and column.

    `labels` declares the label columns (every other column must then be in `ignore`); empty means every
    column but id, text and `ignore`. With `known_labels` (BRIGHTER), label names are matched without case
    and put in that canonical order; otherwise they keep the declared or header order.
    """
    path = Path(path)
    rows = _rows(path)
    header = _header(rows, path)
    names, col_of = label_columns(header, path, labels, ignore, known_labels)
    pos = {h: i for i, h in enumerate(header)}
    body = rows[1:]
    if not body:
        raise DataError(f"{path}: no data rows below the header")
    ids, texts, cells, seen = [], [], [], {}
    for n, row in enumerate(body, start=1):
        if len(row) != len(header):
            raise DataError(f"{path}: row {n} has {len(row)} fields, the header has {len(header)}")
        rid = _row_id(row[pos["id"]], n, seen, path)
        ids.append(rid)
        texts.append(row[pos["text"]])
        values = []
        for lab in names:
            v = row[col_of[lab]].strip()
            if v not in ("0", "1", ""):
                raise DataError(f"{path}: row {n} (id {rid}), column {lab!r}: value {v!r} is not 0, 1 or empty")
            values.append(v)
        cells.append(values)
    empty = [all(v == "" for v in vals) for vals in cells]
    if names and all(empty):
        y = None  # an unlabeled prediction set, such as test/eng.csv
    else:
        for n, vals in enumerate(cells, start=1):
            if any(v == "" for v in vals):
                raise DataError(f"{path}: row {n} (id {ids[n - 1]}) has empty label cells in a labeled file")
        y = np.array(cells, dtype=np.int64).reshape(len(ids), len(names))
    return LangSplit(lang, split, ids, texts, names, y, path)


def _row_id(rid: str, n: int, seen: dict[str, int], path: Path) -> str:
    """Row n's id, refused when empty or already seen (a submission keys its rows by id)."""
    if not rid.strip():
        raise DataError(f"{path}: row {n} has an empty id")
    if rid in seen:
        raise DataError(f"{path}: duplicate id {rid!r} in rows {seen[rid]} and {n}")
    seen[rid] = n
    return rid


def read_texts(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """(ids, texts) of a prediction input: `id` and `text` are needed, other columns are ignored."""
    path = Path(path)
    rows = _rows(path)
    header = _header(rows, path)
    i, t = header.index("id"), header.index("text")
    ids, texts, seen = [], [], {}
    for n, row in enumerate(rows[1:], start=1):
        if len(row) != len(header):
            raise DataError(f"{path}: row {n} has {len(row)} fields, the header has {len(header)}")
        ids.append(_row_id(row[i], n, seen, path))
        texts.append(row[t])
    if not ids:
        raise DataError(f"{path}: no data rows below the header")
    return ids, texts


# --- label vectorisation ---------------------------------------------------------------------------


def from_vector(vec: Sequence[int], labels: Sequence[str] = LABELS) -> list[str]:
    """A 0/1 vector over `labels` -> the names of the labels that are on (what `Classifier.predict` reports)."""
    if len(vec) != len(labels):
        raise DataError(f"label vector of length {len(vec)} for {len(labels)} labels")
    return [lab for lab, v in zip(labels, vec) if int(v) == 1]


# --- summary -------------------------------------------------------------------------------------------


def summary(source: "DataSource | CsvSource", languages: Iterable[str] = LANGUAGES) -> pd.DataFrame:
    """Per language: rows per split, label frequencies in train, and whether test is labeled."""
    records, label_names = [], list(LABELS)
    langs = list(languages) if isinstance(source, CsvSource) else expand_languages(languages)
    for lang in langs:
        rec: dict[str, object] = {"lang": lang}
        for split in SPLITS:
            if not source.has(split, lang):
                rec[split] = 0
                continue
            d = source.load(split, lang)
            rec[split] = len(d)
            if split == "train":
                rec["labels"] = " ".join(d.labels)
                label_names += [lab for lab in d.labels if lab not in label_names]
                for j, lab in enumerate(d.labels):
                    rec[f"train_{lab}"] = round(float(d.y[:, j].mean()), 3)
            if split == "test":
                rec["test_labeled"] = d.labeled
        records.append(rec)
    cols = ["lang", *SPLITS, "test_labeled", "labels", *(f"train_{lab}" for lab in label_names)]
    return pd.DataFrame(records).reindex(columns=cols).dropna(axis=1, how="all")


def summary_for(cfg) -> pd.DataFrame:
    """The data summary a run's notebook shows: all 28 BRIGHTER languages, or your own data set."""
    source = source_for(cfg)
    log.info(f"source: {source.describe()}")
    return summary(source, train_languages(cfg) if cfg.own_data else LANGUAGES)
