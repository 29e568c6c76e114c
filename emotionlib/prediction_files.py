"""Prediction files: emotionlib's by its record, never by their shape. What `predict` writes, and the checks of
its paths and arguments, made before a network loads (this module needs no torch: a bad --output is refused in a
second)."""

from __future__ import annotations

import csv
import json
import os
import stat
import time
from pathlib import Path

from emotionlib.data import check_csv_file, protected_folders
from emotionlib.provenance import package_version as version
from emotionlib.runs import NotOurs, atomic_path, check_output_file, sha256_of, temporary_name, write_failure

# A prediction file is emotionlib's when the record beside it, `<name>.emotionlib.json`, says emotionlib wrote it
# and holds the sha256 of its bytes as they are now. A file that merely looks like one (an `id` column and 0/1
# cells) is not; nor is one edited since: replacing either is refused.
RECORD_SUFFIX = ".emotionlib.json"
MAX_RECORD_BYTES = 64 << 10


def record_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + RECORD_SUFFIX)


def read_record(path: Path) -> dict | None:
    """The record of prediction file `path`, or None (no record, a link, a large or foreign file)."""
    rec = record_path(path)
    try:
        st = os.lstat(rec)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_RECORD_BYTES:
            return None
        data = json.loads(rec.read_bytes())
    except (OSError, ValueError):
        return None
    ok = (
        isinstance(data, dict)
        and data.get("made_by") == "emotionlib"
        and data.get("kind") == "predictions"
        and data.get("file") == Path(path).name
        and isinstance(data.get("sha256"), str)
    )
    return data if ok else None


def is_prediction_file(path: Path) -> bool:
    """Whether emotionlib recorded writing `path` as it is now (its record beside it, with its sha256)."""
    record = read_record(path)
    return record is not None and Path(path).is_file() and sha256_of(path) == record["sha256"]


def check_record_path(path: Path) -> None:
    """The record's own path: absent, or emotionlib's record of this file (never a user's file of that name)."""
    rec = record_path(path)
    if (rec.exists() or rec.is_symlink()) and read_record(path) is None:
        raise NotOurs(
            f"{rec}: exists and is not emotionlib's record of {Path(path).name}; nothing was written; give "
            "another --output, or move that file"
        )


def write_predictions(path: Path, rows: list[list], existed: bool, about: dict) -> None:
    """Write the prediction file and its record. The output is checked again at the end: a file that appeared at
    the path meanwhile (or one changed since the start) is never replaced; a new file is linked into place, which
    fails rather than replace anything there."""
    tmp = temporary_name(path)
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)
        os.chmod(tmp, 0o666 & ~_umask())
        digest = sha256_of(tmp)
        check_output_file(path, "--output", is_prediction_file, data_folders())
        check_record_path(path)
        if existed:
            os.replace(tmp, path)  # checked just above as emotionlib's, unchanged
        else:
            try:
                os.link(tmp, path)  # atomic, and never over a file that appeared meanwhile
            except FileExistsError:
                raise NotOurs(
                    f"{path}: --output was created by something else while emotionlib predicted; nothing "
                    "was written over it; give a new path"
                ) from None
        record = {
            "made_by": "emotionlib",
            "kind": "predictions",
            "file": path.name,
            "sha256": digest,
            "rows": len(rows) - 1,
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "emotionlib": version(),
        }
        with atomic_path(record_path(path)) as rec:
            rec.write_text(json.dumps(record | about, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise (write_failure(exc, path) or exc) from None
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def data_folders() -> tuple[Path, ...]:
    """Where the data and emotionlib's cache lie: never written into by predict."""
    return protected_folders()


def check_prediction_paths(input_csv: Path, output_csv: Path, batch_size: int) -> None:
    """`predict`'s arguments: a positive batch size, an input that is a file, and an output that is not the input,
    not in the data or the cache, and either new or a prediction file emotionlib wrote (with no foreign file where
    its record goes)."""
    if batch_size < 1:
        raise ValueError(f"--batch-size must be a positive integer (got {batch_size})")
    check_csv_file(Path(input_csv))
    if Path(output_csv).resolve() == Path(input_csv).resolve():
        raise ValueError(f"{output_csv}: --output equals --input; the input would be overwritten")
    check_output_file(Path(output_csv), "--output", is_prediction_file, data_folders())
    check_record_path(Path(output_csv))
