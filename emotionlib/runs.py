"""The run directory: what emotionlib made (markers and their file lists), writes that fail whole, the layout of a
run folder and its lock. The provenance every result carries is `provenance`'s; what a run records of its files
(the step cache, the seal) is `run_records`'."""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


# --- what emotionlib made, and may therefore replace or remove ----------------------------------------------
# Every folder emotionlib makes (a run, a model, a checkpoint, an export, a report, a cached encoder) holds a
# marker naming its kind; a folder without it, or of another kind, is never written over or removed. Temporary
# folders are named `.<target>.emotionlib-<random>.tmp` (and `.old` for a folder being replaced) and carry a
# marker: `temporary` with the process writing, then the target's own kind. A file being written lies inside such a
# folder (a file can carry no record of its own). So a killed write's debris is known by its record, a folder of
# that name with emotionlib's marker, and removed only then (`_ours_to_remove`); a user's file or folder of the same
# shape is never taken for it.
MARKER = ".emotionlib"
TEMP_RE = re.compile(r"\..+\.emotionlib-[a-z0-9_]{8}\.(tmp|old)")


class NotOurs(ValueError):
    """A folder emotionlib did not make (or made as something else): it is not written over or removed."""


def temporary_name(target: Path, suffix: str = ".tmp") -> Path:
    """A fresh temporary name beside `target`, of the form `remove_temporaries` recognises."""
    target = Path(target)
    return target.with_name(f".{target.name}.emotionlib-{secrets.token_hex(4)}{suffix}")


MAX_MARKER_BYTES = 1 << 20  # a marker is a kind and a list of names; a larger file is not one of ours


def read_marker(folder: Path) -> dict | None:
    """The marker record of `folder`, or None: no marker, a marker that is a link or not a regular file, one larger
    than a marker can be, or not emotionlib's record. Read without following links and never whole when large."""
    path = Path(folder) / MARKER
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_MARKER_BYTES:
            return None
        with open(path, "rb") as f:
            record = json.loads(f.read(MAX_MARKER_BYTES + 1))
    except (OSError, ValueError):
        return None
    if not (isinstance(record, dict) and record.get("made_by") == "emotionlib" and isinstance(record.get("kind"), str)):
        return None
    files = record.get("files")
    if files is not None and not (isinstance(files, list) and all(isinstance(f, str) for f in files)):
        return None
    return record


def mark(folder: Path, kind: str, files: list[str] | None = None) -> None:
    """Mark `folder` as emotionlib's `kind`, with `files`, the list of what emotionlib wrote there: the only files
    any removal or replacement of the folder touches (a file a user added is never lost). Written atomically."""
    record = {"made_by": "emotionlib", "kind": kind} | ({"files": sorted(set(files))} if files is not None else {})
    target = Path(folder) / MARKER
    with temporary_folder(target) as tmp:
        (tmp / "record").write_text(json.dumps(record) + "\n", encoding="utf-8")
        os.replace(tmp / "record", target)


@contextmanager
def temporary_folder(target: Path) -> Iterator[Path]:
    """A new folder beside `target`, named by `temporary_name`'s pattern and marked `temporary` with this process,
    removed when the block ends: a write killed inside it leaves a folder known as emotionlib's by that record."""
    tmp = new_temporary(Path(target))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # made by new_temporary above, in this process


def new_temporary(target: Path) -> Path:
    """A new folder beside `target` named as `TEMP_RE` matches, marked `temporary` with this process (its record)."""
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.emotionlib-", suffix=".tmp"))
    try:
        record = {"made_by": "emotionlib", "kind": "temporary", "pid": os.getpid()}
        (tmp / MARKER).write_text(json.dumps(record), encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # made just above
        raise
    return tmp


def files_in(folder: Path) -> list[str]:
    """Every file under `folder` (relative, links included; the markers and the folders our writes leave, known by
    their record, left out)."""
    folder = Path(folder)
    out = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        out += [str((here / d).relative_to(folder)) for d in dirs if (here / d).is_symlink()]
        dirs[:] = [d for d in dirs if not (here / d).is_symlink() and not left_by_a_write(here / d)]
        out += [str((here / f).relative_to(folder)) for f in files if f != MARKER]
    return sorted(out)


def left_by_a_write(folder: Path) -> bool:
    """A folder one of emotionlib's writes made beside its target, known by name and record together: named as
    `temporary_name` names them and carrying emotionlib's marker (`temporary` while the write runs, the target's
    kind once it is complete, or when a replaced folder is set aside as `.old`)."""
    folder = Path(folder)
    return (
        bool(TEMP_RE.fullmatch(folder.name))
        and folder.is_dir()
        and not folder.is_symlink()
        and (read_marker(folder) is not None)
    )


def record_written(path: Path) -> None:
    """Add `path` (a file, or a folder with a marker of its own: recorded as `name/`) to the file list of the nearest
    marked folder above it: what emotionlib recorded writing is what it may later remove. Nothing is recorded for
    a path inside one of our temporary folders (its own marker lists it when it is renamed into place)."""
    path = Path(path).absolute()
    for folder in path.parents:
        record = read_marker(folder)
        if record is None:
            continue
        rel = path.relative_to(folder)
        if record.get("files") is None or any(TEMP_RE.fullmatch(part) for part in rel.parts):
            return
        name = rel.as_posix() + ("/" if path.is_dir() and not path.is_symlink() else "")
        if name not in record["files"]:
            mark(folder, record["kind"], [*record["files"], name])
        return


def add_to_manifest(folder: Path, *names: str) -> None:
    """Record files written into a marked folder after it was made (e.g. the int8 graph beside the ONNX one)."""
    for name in names:
        record_written(Path(folder) / name)


def foreign_files(folder: Path) -> list[str]:
    """The files under a marked folder that emotionlib did not record writing there: everything, when its marker
    records no list (a marker alone is no proof). A subfolder counts as emotionlib's only when the folder's list
    names it (`model/`) and it carries a list of its own; otherwise each of its files must be listed by path."""
    folder = Path(folder)
    record = read_marker(folder)
    listed = set(record.get("files") or ()) if record and record.get("files") is not None else None
    out: list[str] = []
    for p in sorted(folder.iterdir()):
        if p.name == MARKER or left_by_a_write(p):
            continue
        if p.is_dir() and not p.is_symlink():
            sub = read_marker(p)
            if listed is not None and f"{p.name}/" in listed and sub is not None and sub.get("files") is not None:
                out += [f"{p.name}/{f}" for f in foreign_files(p)]
            else:
                out += [f"{p.name}/{f}" for f in files_in(p) if listed is None or f"{p.name}/{f}" not in listed]
        elif listed is None or p.name not in listed:
            out.append(p.name)
    return out


def _inside_without_links(folder: Path, rel: str) -> Path | None:
    """`folder/rel` when `rel` is a plain relative name whose parent folders are real folders (no link, no `..`)."""
    parts = Path(rel).parts
    if not parts or Path(rel).is_absolute() or ".." in parts:
        return None
    at = folder
    for part in parts[:-1]:
        at = at / part
        if at.is_symlink() or not at.is_dir():
            return None
    return at / parts[-1]


def remove_recorded(folder: Path) -> list[str]:
    """Remove what emotionlib recorded writing in a marked folder (its marked subfolders likewise), the folders
    left empty, and the folder itself when nothing else is in it. Returns the files it kept: those it did not
    write. A folder whose marker records no list is refused (NotOurs): nothing is removed."""
    folder = Path(folder)
    record = read_marker(folder)
    if folder.is_symlink() or record is None or record.get("files") is None:
        raise NotOurs(f"{folder}: its marker records no list of the files emotionlib wrote; nothing was removed")
    for name in record["files"]:
        path = _inside_without_links(folder, name.rstrip("/"))
        if path is None:
            continue
        if name.endswith("/"):
            if path.is_dir() and not path.is_symlink() and (read_marker(path) or {}).get("files") is not None:
                remove_recorded(path)
        elif path.is_symlink() or path.is_file():
            path.unlink()
    kept = foreign_files(folder)
    for p in sorted((p for p in folder.rglob("*") if p.is_dir() and not p.is_symlink()), key=lambda p: -len(p.parts)):
        if not any(p.iterdir()):
            p.rmdir()
    # never a removal by a name pattern over a tree: a temporary left here is kept and named, like a user's file
    kept += [p.name for p in folder.iterdir() if p.name != MARKER and p.name not in {k.split("/")[0] for k in kept}]
    if kept:
        mark(folder, record["kind"], [])  # what it listed is gone; what stays is not ours
    else:
        (folder / MARKER).unlink()
        folder.rmdir()
    return kept


def check_removable(path: Path, kind: str) -> None:
    """Refuse, before any work, a removal of `path` that would leave files emotionlib did not write (named)."""
    path = Path(path)
    if not path.exists() or read_marker(path) is None or read_marker(path)["kind"] != kind:
        return
    if path.is_symlink() or read_marker(path).get("files") is None:
        raise NotOurs(
            f"{path}: its marker records no list of the files emotionlib wrote there, so nothing in it is "
            "removed; move what you want to keep out and remove the folder yourself"
        )
    if foreign := foreign_files(path):
        raise NotOurs(
            f"{path}: holds files emotionlib did not write ({', '.join(foreign[:5])}); nothing was "
            "removed or written: move them out first"
        )


def marked_parent(path: Path) -> Path | None:
    """The nearest folder above `path` (resolved) that emotionlib marked: a run, model, report, export..."""
    for folder in Path(path).resolve().parents:
        if kind_of(folder):
            return folder
    return None


def check_location(path: Path, flag: str, forbidden: tuple[Path, ...] = ()) -> None:
    """A folder the user names for emotionlib to make things in (`runs_dir`, `--reports-dir`, an export's
    `--out`): never a folder emotionlib made for its own files (a run, a model, an export, a report...) nor inside
    one, nor inside the data folder or emotionlib's cache (`forbidden`)."""
    path = Path(path).resolve()
    for folder in (path, *path.parents):
        if kind_of(folder):
            raise NotOurs(
                f"{flag} {path}: {'is' if folder == path else 'lies inside'} {folder}, a {kind_of(folder)} "
                "emotionlib made for its own files; give a folder of your own"
            )
    for folder in forbidden:
        folder = Path(folder).resolve()
        if folder == path or folder in path.parents:
            raise NotOurs(f"{flag} {path}: lies inside {folder} (the data or emotionlib's cache); give another folder")


def check_output_file(path: Path, flag: str, is_ours, forbidden: tuple[Path, ...] = ()) -> None:
    """A file the user names for emotionlib to write (`flag` names the option): a new path, or an existing regular
    file that `is_ours` finds emotionlib recorded writing. Never a link, a folder, a device or a FIFO; never
    inside a folder emotionlib made (a run, a report) or one of `forbidden` (the data, the cache)."""
    path = Path(path)
    if path.is_symlink():
        raise NotOurs(f"{path}: {flag} is a symbolic link; give the path of a plain file")
    if path.is_dir():
        raise NotOurs(f"{path}: {flag} is a directory; give a file path")
    if path.exists() and not path.is_file():
        raise NotOurs(f"{path}: {flag} exists and is not a regular file (a device or FIFO); give a file path")
    inside = marked_parent(path)
    if inside is not None:
        raise NotOurs(
            f"{path}: {flag} lies inside {inside}, a {kind_of(inside)} emotionlib made for its own files; "
            "write it elsewhere"
        )
    for folder in forbidden:
        if Path(folder).resolve() in path.resolve().parents:
            raise NotOurs(f"{path}: {flag} lies inside the data folder {folder}; write it elsewhere")
    if path.exists() and not is_ours(path):
        raise NotOurs(
            f"{path}: {flag} exists and emotionlib has no record of writing it; nothing was written; give "
            "a new path, or remove that file yourself"
        )


def kind_of(folder: Path) -> str | None:
    """The kind emotionlib marked `folder` with, or None for a folder it did not make."""
    record = read_marker(folder)
    return None if record is None else record["kind"]


def check_replaceable(path: Path, kind: str) -> None:
    """Refuse, before any work, to replace `path` unless it is absent, empty, or a folder emotionlib made as `kind`
    holding only the files it recorded writing there (a marker without that list is no proof)."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_symlink() or not path.is_dir():
        raise NotOurs(f"{path}: exists and is not a folder emotionlib made; give a new path")
    found = kind_of(path)
    if found is None and not any(path.iterdir()):
        return  # an empty folder: nothing in it can be lost
    if found is None:
        raise NotOurs(
            f"{path}: exists and was not made by emotionlib (no {MARKER} marker in it); nothing was "
            "written; give a new path, or remove that folder yourself"
        )
    if found != kind:
        raise NotOurs(f"{path}: was made by emotionlib as a {found}, not a {kind}; give another path")
    if foreign := foreign_files(path):
        what = (
            "its marker records no list of the files emotionlib wrote, so none of them is known to be emotionlib's"
            if read_marker(path).get("files") is None
            else f"holds files emotionlib did not write ({', '.join(foreign[:5])})"
        )
        raise NotOurs(
            f"{path}: {what}; it would replace the folder whole, so nothing was written: move them out, "
            "or give another path"
        )


def make_dir(path: Path, kind: str) -> Path:
    """A folder emotionlib owns, listing what is written into it: made and marked if absent (and recorded in the
    marked folder above it), accepted if marked `kind` with its list, else refused."""
    path = Path(path)
    if not path.exists():
        path.mkdir(parents=True)
        mark(path, kind, [])
        record_written(path)
    elif kind_of(path) is None and path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        mark(path, kind, [])  # an empty folder: nothing in it can be lost
        record_written(path)
    elif kind_of(path) != kind or read_marker(path).get("files") is None:
        check_replaceable(path, kind)  # the refusal, with its reason
        raise NotOurs(
            f"{path}: its marker records no list of the files emotionlib wrote there; it was made by "
            "an earlier emotionlib or not by it: give another path, or remove it yourself"
        )
    return path


def remove_owned(path: Path, kind: str) -> None:
    """Remove what emotionlib recorded writing in a folder it made as `kind` (by its exact path); a folder of
    another kind, or one with files emotionlib did not write, is refused before anything goes (NotOurs)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink() and kind_of(path) == kind:
        check_removable(path, kind)
        remove_recorded(path)


def clean(
    root: Path, parents: tuple[str, ...] = ("runs", "reports"), own: tuple[str, ...] = ("bench",)
) -> tuple[list[Path], dict[Path, str]]:
    """`make clean`: under `root`, what emotionlib recorded writing in each marked folder of `parents` (runs/,
    reports/) and in each folder of `own` (bench/); never through a link (a linked folder, or a linked parent,
    stays), never an unmarked folder or a file it did not record writing. An emptied parent goes too. Returns the
    folders removed, and those kept with the reason (the files a user added, named)."""
    root, removed, kept = Path(root), [], {}

    def take(folder: Path) -> None:
        if folder.is_symlink() or not folder.is_dir() or kind_of(folder) is None:
            return
        if read_marker(folder).get("files") is None:
            kept[folder] = "its marker records no list of the files emotionlib wrote (an earlier emotionlib's)"
            return
        left = remove_recorded(folder)
        if left:
            kept[folder] = f"emotionlib's own files removed; kept what it did not write: {', '.join(left[:5])}"
        else:
            removed.append(folder)

    for name in own:
        take(root / name)
    for name in parents:
        parent = root / name
        if parent.is_symlink() or not parent.is_dir():
            continue
        for child in sorted(parent.iterdir()):
            take(child)
        if not any(parent.iterdir()):
            parent.rmdir()
    return removed, kept


def claim_run_dir(root: Path) -> Path:
    """The run folder, made and marked if absent. An existing folder is written into only if emotionlib made it
    as a run, with its list of files (or if it is empty: nothing in it can be lost)."""
    root = Path(root)
    if (found := kind_of(root)) not in (None, "run"):
        raise NotOurs(f"{root}: was made by emotionlib as a {found}, not a run; choose another run_id or runs_dir")
    try:
        return make_dir(root, "run")
    except NotOurs:
        raise NotOurs(
            f"{root}: exists and was not made by emotionlib as a run (no {MARKER} run marker with the "
            "list of its files); refusing to write into it: choose another run_id or runs_dir"
        ) from None


# --- writes that fail whole, with the file named -----------------------------------------------------------
WRITE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EIO)
WRITE_WORDS = ("No space left", "File too large", "Read-only file system", "Disk quota", "Permission denied")


def write_failure(exc: BaseException, path: Path) -> OSError | None:
    """One OSError naming `path` for a failed write (a full disk, a file-size limit, a read-only folder) from
    any library (safetensors and tokenizers raise their own types with the system's words); None otherwise."""
    if isinstance(exc, NotOurs):
        return None
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
        reason = exc.strerror or text
    elif any(word in text for word in WRITE_WORDS):
        reason = next(word for word in WRITE_WORDS if word in text)
    else:
        return None
    return OSError(f"{path}: could not be written ({reason}); nothing was replaced: what was there before is as it was")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds, and record it in
    the marked folder it lies in. A failed write (a full disk) is one OSError naming `path`."""
    path = Path(path)
    with contextlib.ExitStack() as stack:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = stack.enter_context(temporary_folder(path)) / path.name  # the target's name: its suffix kept
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # made with the usual mode
        except OSError as exc:
            raise (write_failure(exc, path) or exc) from None
        try:
            yield tmp
            os.replace(tmp, path)
            record_written(path)
        except Exception as exc:
            if (failure := write_failure(exc, path)) is not None:
                raise failure from None
            raise


def _ours_to_remove(folder: Path) -> bool:
    """A folder a killed write left, by its record (`left_by_a_write`): marked `temporary` by a process now gone, or
    already marked with the target's kind (complete but not renamed into place, or the replaced folder set aside)."""
    if not left_by_a_write(folder):
        return False
    record = read_marker(folder)
    if record["kind"] != "temporary":
        return True  # complete but not renamed into place, or the replaced folder set aside: the write is over
    if not isinstance(record.get("pid"), int):
        return False
    try:
        os.kill(record["pid"], 0)
        return False  # still running: its write is in progress
    except ProcessLookupError:
        return True
    except OSError:
        return False


def _remove_stale_temporaries(path: Path) -> None:
    """The temporary folders a killed write of `path` left beside it: each was marked `temporary` with the process
    that made it, and is removed only when that process is gone (never another's write in progress)."""
    for p in path.parent.glob(f".{glob.escape(path.name)}.emotionlib-*"):
        if _ours_to_remove(p):
            shutil.rmtree(p)


@contextmanager
def atomic_dir(path: Path, kind: str) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; marked as `kind` with the list of its files, it replaces `path`
    (whole) only if the block succeeds. An existing `path` that emotionlib did not make as `kind` (or that holds a
    file it did not write) is refused before the block runs; a killed earlier write's folder is removed first."""
    path = Path(path)
    check_replaceable(path, kind)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(path)
        tmp = new_temporary(path)
    except OSError as exc:
        raise (write_failure(exc, path) or exc) from None
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700
    try:
        yield tmp
        mark(tmp, kind, files_in(tmp))
        if path.exists():
            check_replaceable(path, kind)  # still ours after the block
            old = tmp.with_suffix(".old")
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old)  # the folder checked above, under our own temporary name
        else:
            os.rename(tmp, path)
        record_written(path)
    except Exception as exc:
        if (failure := write_failure(exc, path)) is not None:
            raise failure from None
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)  # made by mkdtemp above


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_csv(table, path: Path, **kwargs: Any) -> None:
    """A pandas table as CSV, written atomically (and recorded in the run it lies in)."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, **kwargs)


def finite(obj: Any) -> Any:
    """`obj` with every NaN or infinite float (numpy's too) as None: JSON has no NaN, and a bare one makes the
    file unreadable to strict parsers."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, float) or type(obj).__name__ in ("float32", "float64"):
        return float(obj) if math.isfinite(obj) else None
    return obj


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(finite(obj), indent=2, ensure_ascii=False, default=str, allow_nan=False) + "\n")


def read_json(path: Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (has the step that writes it run?)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({' '.join(str(exc).split())[:120]}); the file is damaged") from None


# --- the layout of a run directory ---------------------------------------------------------------------


class RunLayout:
    """Every file of runs/<run_id>/, named once. Steps read and write through it; nothing else names them."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunLayout({str(self.root)!r})"

    # 01 prepare
    config = property(lambda self: self.root / "config.yaml")
    split = property(lambda self: self.root / "data" / "split.json")
    label_proportions = property(lambda self: self.root / "data" / "label_proportions.csv")
    # 02 train
    model = property(lambda self: self.root / "model")
    weights = property(lambda self: self.root / "model" / "model.safetensors")
    metadata = property(lambda self: self.root / "model" / "metadata.json")
    baseline_model = property(lambda self: self.root / "model" / "baseline")  # an ensemble's TF-IDF member
    checkpoint = property(lambda self: self.root / "checkpoint")
    stack = property(lambda self: self.root / "stack")  # the per-language stack on top of the network (langstack)
    stack_meta = property(lambda self: self.root / "stack" / "stack.json")
    provenance = property(lambda self: self.root / "provenance.json")
    manifest = property(
        lambda self: self.root / "manifest.json"
    )  # written last: the sha256 of what decides a prediction
    train_log = property(lambda self: self.root / "train_log.jsonl")
    train_summary = property(lambda self: self.root / "train_summary.json")
    training_curves = property(lambda self: self.root / "training_curves.png")
    teacher = property(lambda self: self.root / "teacher.json")  # a distilled run's teacher (distill)
    teacher_targets = property(lambda self: self.root / "teacher_targets.safetensors")
    transfer = property(lambda self: self.root / "transfer.json")  # the transfer texts the teacher labelled
    transfer_targets = property(lambda self: self.root / "transfer_targets.safetensors")
    # 03 evaluate
    metrics = property(lambda self: self.root / "metrics.json")
    eval = property(lambda self: self.root / "eval")
    eval_sets = property(lambda self: self.root / "eval" / "sets")
    eval_summary = property(lambda self: self.root / "eval" / "summary.csv")
    per_label = property(lambda self: self.root / "eval" / "per_label.csv")
    comparison = property(lambda self: self.root / "eval" / "published_comparison.csv")
    languages_png = property(lambda self: self.root / "eval" / "languages.png")
    stack_languages = property(lambda self: self.root / "eval" / "stack_languages.csv")  # per-language stack
    stack_minus_best_png = property(lambda self: self.root / "eval" / "stack_minus_best.png")
    crosslingual = property(lambda self: self.root / "eval" / "crosslingual.csv")
    crosslingual_png = property(lambda self: self.root / "eval" / "crosslingual.png")
    # 04 interpret
    interpret = property(lambda self: self.root / "interpret")
    interpret_summary = property(lambda self: self.root / "interpret" / "summary.json")
    lime_case = property(lambda self: self.root / "interpret" / "lime_case.csv")
    lime_case_png = property(lambda self: self.root / "interpret" / "lime_case_label.png")
    examples = property(lambda self: self.root / "interpret" / "examples.csv")
    lime_examples = property(lambda self: self.root / "interpret" / "lime_examples.csv")
    attention_case = property(lambda self: self.root / "interpret" / "attention_case.csv")
    attention_case_png = property(lambda self: self.root / "interpret" / "attention_case.png")
    layer_head = property(lambda self: self.root / "interpret" / "layer_head.csv")
    layer_head_png = property(lambda self: self.root / "interpret" / "layer_head.png")
    rollout_case = property(lambda self: self.root / "interpret" / "rollout_case.csv")
    rollout_case_png = property(lambda self: self.root / "interpret" / "rollout_case.png")
    agreement = property(lambda self: self.root / "interpret" / "agreement.csv")
    # other
    onnx = property(lambda self: self.root / "onnx")
    steps = property(lambda self: self.root / "steps")
    lock_file = property(lambda self: self.root / ".lock")

    def set_metrics(self, split: str, lang: str) -> Path:
        return self.eval_sets / f"{split}_{lang}.json"

    def predictions(self, split: str, lang: str) -> Path:
        return self.eval / "predictions" / f"{split}_{lang}.csv"

    def eval_figure(self, kind: str, split: str, lang: str) -> Path:
        """kind: confusion, cooccurrence or per_label."""
        return self.eval / f"{kind}_{split}_{lang}.png"

    def relative(self, path: Path) -> str:
        return str(Path(path).relative_to(self.root))

    def folders(self) -> list[Path]:
        """Every folder of the run that emotionlib writes files into."""
        return [
            self.root,
            self.split.parent,
            self.model,
            self.checkpoint,
            self.eval,
            self.eval_sets,
            self.predictions("val", "x").parent,
            self.interpret,
            self.onnx,
            self.steps,
        ]

    def remove_temporaries(self) -> None:
        """Remove what a killed write left in the run's own folders (not below them), only in a folder emotionlib
        made as a run: the folders its record shows a write left (`_ours_to_remove`), and empty ones of that name.
        Nothing is removed for its name alone: a user's file or folder of that shape, with files in it, stays."""
        if kind_of(self.root) != "run":
            return
        for folder in self.folders():
            for p in folder.iterdir() if folder.is_dir() and not folder.is_symlink() else ():
                if _ours_to_remove(p):
                    shutil.rmtree(p)
                elif TEMP_RE.fullmatch(p.name) and p.is_dir() and not p.is_symlink():
                    with contextlib.suppress(OSError):
                        p.rmdir()  # empty (killed before its marker was written): nothing in it can be lost


class RunBusy(RuntimeError):
    """Another process holds the run directory's lock."""


_HELD: dict[str, int] = {}  # the run folders whose lock this process holds (a step inside a step reuses it)


@contextmanager
def run_lock(layout: RunLayout) -> Iterator[None]:
    """An exclusive lock on the run directory while a step writes; a second writer (another process) is refused
    at once. Re-entrant within a process: a step that builds something inside another's lock keeps it."""
    import fcntl

    key = str(Path(layout.root).resolve())
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    claim_run_dir(layout.root)
    fd = os.open(layout.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    record_written(layout.lock_file)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusy(
                f"{layout.root}: in use by another process (a training, evaluation, interpretation or "
                "ONNX build); wait for it to finish or choose another run_id"
            ) from None
        layout.remove_temporaries()  # no other writer holds the run: what a killed one left half-written goes
        _HELD[key] = 1
        try:
            yield
        finally:
            _HELD.pop(key, None)
    finally:
        os.close(fd)  # closing releases the lock
