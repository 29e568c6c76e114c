"""The run directory: atomic writes and the provenance every result carries."""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

TRACKED_PACKAGES = ("emotionlib", "torch", "transformers", "accelerate", "tokenizers", "scikit-learn",
                    "iterative-stratification", "lime", "numpy", "pandas", "papermill", "nbconvert")


# --- what emotionlib made, and may therefore replace or remove ----------------------------------------------
# Every folder emotionlib makes (a run, a model, a checkpoint, an export, a report, a cached encoder) holds a
# marker naming its kind; a folder without it, or of another kind, is never written over or removed. Temporary
# files and folders are named `.<target>.emotionlib-<random>.tmp` (and `.old` for a folder being replaced): no
# user makes such a name, so a killed write's debris is removed by that name and nothing else is.
MARKER = ".emotionlib"
TEMP_RE = re.compile(r"\..+\.emotionlib-[a-z0-9_]{8}\.(tmp|old)")


class NotOurs(ValueError):
    """A folder emotionlib did not make (or made as something else): it is not written over or removed."""


def temporary_name(target: Path, suffix: str = ".tmp") -> Path:
    """A fresh temporary name beside `target`, of the form `remove_temporaries` recognises."""
    target = Path(target)
    return target.with_name(f".{target.name}.emotionlib-{secrets.token_hex(4)}{suffix}")


def mark(folder: Path, kind: str, files: list[str] | None = None) -> None:
    """Mark `folder` as emotionlib's `kind`; with `files`, the manifest of what it holds (checked before the folder
    is replaced whole, so that a file a user added is never lost)."""
    record = {"made_by": "emotionlib", "kind": kind} | ({"files": sorted(files)} if files is not None else {})
    (Path(folder) / MARKER).write_text(json.dumps(record) + "\n", encoding="utf-8")


def files_in(folder: Path) -> list[str]:
    """Every file under `folder` (relative, links included, the marker and our temporaries left out)."""
    folder = Path(folder)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if (p.is_file() or p.is_symlink()) and p.name != MARKER and not TEMP_RE.fullmatch(p.name))


def add_to_manifest(folder: Path, *names: str) -> None:
    """Record files written into a marked folder after it was made (e.g. the int8 graph beside the ONNX one)."""
    record = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    if "files" in record:
        mark(folder, record["kind"], sorted(set(record["files"]) | set(names)))


def foreign_files(folder: Path) -> list[str]:
    """The files of a marked folder that emotionlib did not write there (none when it recorded no manifest)."""
    try:
        listed = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return []
    return [] if listed is None else [f for f in files_in(folder) if f not in set(listed)]


def marked_parent(path: Path) -> Path | None:
    """The nearest folder above `path` (resolved) that emotionlib marked: a run, model, report, export..."""
    for folder in Path(path).resolve().parents:
        if kind_of(folder):
            return folder
    return None


def check_output_file(path: Path, flag: str, is_ours, forbidden: tuple[Path, ...] = ()) -> None:
    """A file the user names for emotionlib to write (`flag` names the option): a new path, or an existing regular
    file that `is_ours` recognises as emotionlib's own output. Never a link, a folder, a device or a FIFO; never
    inside a folder emotionlib made (a run, a report) or one of `forbidden` (the data)."""
    path = Path(path)
    if path.is_symlink():
        raise NotOurs(f"{path}: {flag} is a symbolic link; give the path of a plain file")
    if path.is_dir():
        raise NotOurs(f"{path}: {flag} is a directory; give a file path")
    if path.exists() and not path.is_file():
        raise NotOurs(f"{path}: {flag} exists and is not a regular file (a device or FIFO); give a file path")
    inside = marked_parent(path)
    if inside is not None:
        raise NotOurs(f"{path}: {flag} lies inside {inside}, a {kind_of(inside)} emotionlib made for its own files; "
                      "write it elsewhere")
    for folder in forbidden:
        if Path(folder).resolve() in path.resolve().parents:
            raise NotOurs(f"{path}: {flag} lies inside the data folder {folder}; write it elsewhere")
    if path.exists() and not is_ours(path):
        raise NotOurs(f"{path}: {flag} exists and is not a file emotionlib wrote; nothing was written; give a new "
                      "path, or remove that file yourself")


def kind_of(folder: Path) -> str | None:
    """The kind emotionlib marked `folder` with, or None for a folder it did not make."""
    path = Path(folder) / MARKER
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("kind") if path.is_file() else None
    except (ValueError, AttributeError, OSError):
        return None


def check_replaceable(path: Path, kind: str) -> None:
    """Refuse, before any work, to replace `path` unless it is absent, empty, or a folder emotionlib made as `kind`."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_symlink() or not path.is_dir():
        raise NotOurs(f"{path}: exists and is not a folder emotionlib made; give a new path")
    found = kind_of(path)
    if found is None and not any(path.iterdir()):
        return  # an empty folder: nothing in it can be lost
    if found is None:
        raise NotOurs(f"{path}: exists and was not made by emotionlib (no {MARKER} marker in it); nothing was "
                      "written; give a new path, or remove that folder yourself")
    if found != kind:
        raise NotOurs(f"{path}: was made by emotionlib as a {found}, not a {kind}; give another path")
    if foreign := foreign_files(path):
        raise NotOurs(f"{path}: holds files emotionlib did not write ({', '.join(foreign[:5])}); it would replace the "
                      "folder whole, so nothing was written: move them out, or give another path")


def make_dir(path: Path, kind: str) -> Path:
    """A folder emotionlib owns: made and marked if absent, accepted if marked `kind`, else refused."""
    path = Path(path)
    if not path.exists():
        path.mkdir(parents=True)
        mark(path, kind)
    else:
        check_replaceable(path, kind)
    return path


def remove_owned(path: Path, kind: str) -> None:
    """Remove a folder only if emotionlib made it as `kind` (by its exact path); anything else stays."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink() and kind_of(path) == kind:
        shutil.rmtree(path)


def clean(root: Path, parents: tuple[str, ...] = ("runs", "reports"), own: tuple[str, ...] = ("bench",)) -> list[Path]:
    """`make clean`: remove, under `root`, each folder of `parents` (runs/, reports/) that emotionlib marked, and
    each folder of `own` (bench/) when marked; by exact name, never through a link (a linked folder, or a linked
    parent, stays as it is), never an unmarked folder. An emptied parent goes too. Returns what was removed."""
    root, removed = Path(root), []
    for name in own:
        if (root / name).is_dir() and not (root / name).is_symlink() and kind_of(root / name):
            shutil.rmtree(root / name)
            removed.append(root / name)
    for name in parents:
        parent = root / name
        if parent.is_symlink() or not parent.is_dir():
            continue
        for child in sorted(parent.iterdir()):
            if child.is_dir() and not child.is_symlink() and kind_of(child):
                shutil.rmtree(child)  # rmtree unlinks links inside the folder; it never follows them
                removed.append(child)
        if not any(parent.iterdir()):
            parent.rmdir()
    return removed


def claim_run_dir(root: Path) -> Path:
    """The run folder, made and marked if absent. An existing folder is written into only if emotionlib made it
    as a run (or if it is empty: nothing in it can be lost)."""
    root = Path(root)
    if root.is_dir() and not root.is_symlink() and kind_of(root) is None and not any(root.iterdir()):
        mark(root, "run")  # an empty folder: nothing in it can be lost
    try:
        return make_dir(root, "run")
    except NotOurs:
        raise NotOurs(f"{root}: exists and was not made by emotionlib as a run (no {MARKER} run marker); "
                      "refusing to write into it: choose another run_id or runs_dir") from None


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.emotionlib-", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_dir(path: Path, kind: str) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; marked as `kind`, it replaces `path` (whole) only if the block
    succeeds. An existing `path` that emotionlib did not make as `kind` is refused before the block runs."""
    path = Path(path)
    check_replaceable(path, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.emotionlib-", suffix=".tmp"))
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
    return json.loads(path.read_text(encoding="utf-8"))


def git_commit(cwd: Path | None = None) -> str:
    """The commit of the emotionlib checkout, with '+dirty' when there are uncommitted changes; 'unknown' for an
    installed wheel (whose folder may lie inside somebody else's git repository) or outside git."""
    checkout = Path(__file__).resolve().parent.parent
    if cwd is None and not ((checkout / ".git").exists() and (checkout / "pyproject.toml").is_file()):
        return "unknown"
    cwd = cwd or checkout
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def hardware() -> dict[str, Any]:
    import torch

    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu in (platform.processor(), platform.machine()):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    # what decides the ceiling of a speed figure: the vector units and the native low-precision arithmetic
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    return {"cpu": cpu, "cpu_features": [f for f in wanted if f in flags],
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "platform": platform.platform()}


def provenance(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"commit": git_commit(), "libraries": library_versions(), "hardware": hardware(), **(extra or {})}


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
    train_log = property(lambda self: self.root / "train_log.jsonl")
    train_summary = property(lambda self: self.root / "train_summary.json")
    training_curves = property(lambda self: self.root / "training_curves.png")
    teacher = property(lambda self: self.root / "teacher.json")  # a distilled run's teacher (distill)
    teacher_targets = property(lambda self: self.root / "teacher_targets.safetensors")
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
        return [self.root, self.split.parent, self.model, self.checkpoint, self.eval, self.eval_sets,
                self.predictions("val", "x").parent, self.interpret, self.onnx, self.steps]

    def remove_temporaries(self) -> None:
        """Remove what a killed write left: the temporaries named `.<name>.emotionlib-<random>.tmp|.old` in the
        run's own folders (not below them), and only in a folder emotionlib made as a run."""
        if kind_of(self.root) != "run":
            return
        for folder in self.folders():
            for p in folder.iterdir() if folder.is_dir() and not folder.is_symlink() else ():
                if not TEMP_RE.fullmatch(p.name) or p.is_symlink():
                    continue
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink(missing_ok=True)


class RunBusy(RuntimeError):
    """Another process holds the run directory's lock."""


@contextmanager
def run_lock(layout: RunLayout) -> Iterator[None]:
    """An exclusive lock on the run directory while a step writes; a second writer is refused at once."""
    import fcntl

    claim_run_dir(layout.root)
    fd = os.open(layout.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusy(f"{layout.root}: in use by another process (a training, evaluation or interpretation); "
                          "wait for it to finish or choose another run_id") from None
        layout.remove_temporaries()  # no other writer holds the run: what a killed one left half-written goes
        yield
    finally:
        os.close(fd)  # closing releases the lock


def step_inputs(layout: RunLayout, paths: list[Path]) -> dict[str, str]:
    """sha256 of each input file of a step, keyed by its path in the run; a missing one is recorded as missing."""
    return {layout.relative(p): sha256_of(p) if p.is_file() else "missing" for p in paths}


def step_is_current(layout: RunLayout, step: str, inputs: dict[str, str], outputs: list[Path]) -> bool:
    """True when the step ran on exactly these inputs and all its outputs are still there."""
    record = layout.steps / f"{step}.json"
    return (record.is_file() and read_json(record).get("inputs") == inputs and all(Path(p).exists() for p in outputs))


def record_step(layout: RunLayout, step: str, inputs: dict[str, str], outputs: list[Path]) -> None:
    write_json(layout.steps / f"{step}.json", {"inputs": inputs, "outputs": [layout.relative(p) for p in outputs]})
